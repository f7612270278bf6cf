package usage

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/textproto"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

func TestJSONPart(t *testing.T) {
	type p struct{ name, filename, cte, body string }
	form := func(parts ...p) (string, *Body) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, x := range parts {
			h := textproto.MIMEHeader{}
			cd := `form-data; name="` + x.name + `"`
			if x.filename != "" {
				cd += `; filename="` + x.filename + `"`
			}
			h.Set("Content-Disposition", cd)
			if x.cte != "" {
				h.Set("Content-Transfer-Encoding", x.cte)
			}
			w, _ := mw.CreatePart(h)
			w.Write([]byte(x.body))
		}
		mw.Close()
		b, err := Spool(&buf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return mw.FormDataContentType(), b
	}
	pdf := string(pdftest.Pages(3))
	for _, tt := range []struct {
		name     string
		parts    []p
		partOnly bool
		json     string // "" : none
		pages    int
		code     string
	}{
		{"read, files counted", []p{{name: "instructions", body: `{"a":1}`}, {name: "f", filename: "a.pdf", body: pdf}}, false, `{"a":1}`, 3, ""},
		{"part only: files not read", []p{{name: "f", filename: "a.pdf", body: pdf}, {name: "instructions", body: `{}`}}, true, `{}`, 0, ""},
		{"base64", []p{{name: "instructions", cte: "base64", body: "eyJhIjoxfQ=="}}, true, `{"a":1}`, 0, ""},
		{"a file named instructions", []p{{name: "instructions", filename: "i.json", body: `[]`}}, true, `[]`, 0, ""},
		{"absent", []p{{name: "f", filename: "a.pdf", body: pdf}}, false, "", 3, ""},
		{"twice", []p{{name: "instructions", body: `{}`}, {name: "instructions", body: `{}`}}, true, "", 0, meter.ECodeBadRequest},
		{"name is case-sensitive", []p{{name: "Instructions", body: `{}`}}, true, "", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct, b := form(tt.parts...)
			u, err := Measure(context.Background(), ct, b, Options{JSONPart: "instructions", PartOnly: tt.partOnly, Budget: NewBudget(64<<20, 0)})
			defer u.Release()
			if tt.code != "" {
				if meter.ErrorCode(err) != tt.code {
					t.Fatalf("err %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil || string(u.JSONPart) != tt.json || (tt.json == "") != (u.JSONPart == nil) || u.Pages != tt.pages {
				t.Fatalf("JSONPart %q, pages %d, %v; want %q, %d", u.JSONPart, u.Pages, err, tt.json, tt.pages)
			}
		})
	}
}
