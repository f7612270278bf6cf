package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// quoteSite prices pages and the JSON of an `instructions` part, and
// quotes the route on /quote.
const quoteSite = `
http://{SITE} {
	handle /convert {
		meter {
			route convert
			per_page 1
			json ocr 2 part instructions "$..actions[?@.type == 'ocr']"
		}
		reverse_proxy {UPSTREAM}
	}
	handle /quote {
		meter_quote convert
	}
}
`

// A route priced by pages and by its instructions: the file parts'
// pages are counted, the instructions part is read as JSON and is not a
// file; the quote answers the same price without the upstream or a
// charge. Both stores.
func TestQuoteOfAMultipartRoute(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		var hits atomic.Int64
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		defer up.Close()
		g := startGateway(t, global+strings.ReplaceAll(quoteSite, "{UPSTREAM}", strings.TrimPrefix(up.URL, "http://")))
		key := g.newAccount("quote_mp", 50, meter.ModeLive)
		instr := []byte(`{"actions":[{"type":"ocr"},{"type":"rotate"}]}`)
		ct, body := formBody(t,
			formPart{name: "instructions", contentType: "application/json", body: instr},
			formPart{name: "a", filename: "a.pdf", contentType: "application/pdf", body: pdftest.Pages(3)},
			formPart{name: "b", filename: "b.pdf", body: pdftest.Pages(2)})

		resp, raw := g.post("/quote", key, ct, body)
		var dr dryRunResponse
		if err := json.Unmarshal(raw, &dr); err != nil || resp.StatusCode != 200 || dr.Total != credits(7) ||
			dr.Pages != 5 || len(dr.Files) != 2 || hits.Load() != 0 {
			t.Fatalf("quote: HTTP %d %s (upstream hit %d times)", resp.StatusCode, raw, hits.Load())
		}
		assertMoney(t, resp, "0", "50")
		g.assertBalance("quote_mp", 50, 0)
		if n := len(g.ledger("quote_mp")); n != 1 {
			t.Fatalf("the quote wrote the ledger: %d entries", n)
		}
		expect(t, g, "/convert", key, ct, body, 200, "7", "43")
		if hits.Load() != 1 {
			t.Fatalf("upstream hit %d times, want 1", hits.Load())
		}
		// A refusal of the route is the quote's refusal.
		resp, raw = g.post("/quote", key, "application/pdf", []byte("not a pdf"))
		if resp.StatusCode < 400 || hits.Load() != 1 {
			t.Fatalf("quote of unpriced content: HTTP %d %s", resp.StatusCode, raw)
		}
	})
}

func TestQuoteCaddyfile(t *testing.T) {
	m, err := adapt(t, ":8080 {\n\tmeter_quote build\n}")
	if err != nil {
		t.Fatal(err)
	}
	if q := find(m, "meter_quote"); q == nil || q["route"] != "build" {
		t.Fatalf("adapted %v", m)
	}
	for _, tt := range []struct{ in, want string }{
		{"meter_quote", "expected `meter_quote <route>`"},
		{"meter_quote a b", `one route only, got extra "b"`},
		{"meter_quote a {\n\t\tx\n\t}", `takes no block`},
	} {
		if _, err := adapt(t, ":8080 {\n\t"+tt.in+"\n}"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
}

// A quote must name exactly one route: the config is refused at load.
func TestQuoteRouteMustExistOnce(t *testing.T) {
	for _, tt := range []struct{ site, want string }{
		{"http://{SITE} {\n\tmeter_quote nowhere\n}", "no meter handler has `route nowhere`"},
		{"http://{SITE} {\n\thandle /a {\n\t\tmeter {\n\t\t\troute x\n\t\t\tper_call 1\n\t\t}\n\t}\n\thandle /b {\n\t\tmeter {\n\t\t\troute x\n\t\t\tper_call 2\n\t\t}\n\t}\n\thandle /q {\n\t\tmeter_quote x\n\t}\n}",
			"2 meter handlers have `route x`"},
	} {
		caddyMu.Lock()
		err := loadCaddyfile(t, globalBlock+tt.site, freeAddr(t), freeAddr(t), testRedisURL(t))
		caddyMu.Unlock()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("load: %v, want %q", err, tt.want)
		}
	}
}
