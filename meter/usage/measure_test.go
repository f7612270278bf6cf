package usage

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

func measureBytes(t *testing.T, contentType string, body []byte, opts Options) (Usage, error) {
	t.Helper()
	opts.TempDir = t.TempDir()
	b, err := Spool(bytes.NewReader(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	u, err := Measure(context.Background(), contentType, b, opts)
	// The body is still forwardable, byte for byte, after measuring.
	if got, _ := readAll(b); !bytes.Equal(got, body) {
		t.Error("body changed by Measure")
	}
	// Every PDF page has its box; TestMeasurePageSizes checks their values,
	// the other tests compare the rest.
	for i := range u.Files {
		if f := &u.Files[i]; sized(f.PageSizes) != f.Pages && f.Kind == KindPDF {
			t.Errorf("%s: %d page sizes for %d pages", f.Name, sized(f.PageSizes), f.Pages)
		}
		u.Files[i].PageSizes = nil
	}
	return u, err
}

func readAll(b *Body) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(b.Reader())
	return buf.Bytes(), err
}

func TestMeasureRawBody(t *testing.T) {
	pdf3 := newDoc(3, 50).bytes(1)
	prefixed := append([]byte("junk before the header\n"), pdf3...)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        Usage
		code        string
	}{
		{"empty body", "application/pdf", nil, Usage{}, ""},
		{"application/pdf", "application/pdf", pdf3,
			Usage{Files: []File{{ContentType: "application/pdf", Kind: KindPDF, Size: int64(len(pdf3)), Pages: 3}}, Pages: 3}, ""},
		{"pdf with parameters", "application/pdf; name=x.pdf", pdf3,
			Usage{Files: []File{{ContentType: "application/pdf", Kind: KindPDF, Size: int64(len(pdf3)), Pages: 3}}, Pages: 3}, ""},
		{"no content type, sniffed", "", pdf3,
			Usage{Files: []File{{Kind: KindPDF, Size: int64(len(pdf3)), Pages: 3}}, Pages: 3}, ""},
		{"octet-stream, header after junk", "application/octet-stream", prefixed,
			Usage{Files: []File{{ContentType: "application/octet-stream", Kind: KindPDF, Size: int64(len(prefixed)), Pages: 3}}, Pages: 3}, ""},
		{"octet-stream, not a PDF", "application/octet-stream", []byte("zip zip"),
			Usage{Files: []File{{ContentType: "application/octet-stream", Kind: KindOther, Size: 7}}, Unpriced: 1}, ""},
		{"image counts one page", "image/png", []byte("\x89PNG...."),
			Usage{Files: []File{{ContentType: "image/png", Kind: KindImage, Size: 8, Pages: 1}}, Pages: 1}, ""},
		{"json counts nothing", "application/json", []byte(`{"a":1}`),
			Usage{Files: []File{{ContentType: "application/json", Kind: KindOther, Size: 7}}, Unpriced: 1}, ""},
		{"declared pdf that is not one", "application/pdf", []byte("not a pdf"), Usage{}, meter.ECodeUnreadableDocument},
		{"malformed content type", "application/pdf/x; ;", pdf3, Usage{}, meter.ECodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := measureBytes(t, tc.contentType, tc.body, Options{})
			if tc.code != "" {
				if meter.ErrorCode(err) != tc.code {
					t.Fatalf("err = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("usage = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

// part is one part of a multipart body built for a test.
type part struct {
	field, filename, contentType string
	body                         []byte
}

func multipartBody(t *testing.T, parts []part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.body)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func TestMeasureMultipart(t *testing.T) {
	pdf2 := newDoc(2, 50).bytes(1)
	pdf5 := pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 5})
	skia := readTestdata(t, "skia.pdf")
	big := newDoc(40, 2000).bytes(1) // over the 16 KiB threshold: spooled to disk

	ct, body := multipartBody(t, []part{
		{"note", "", "", []byte("please OCR")},
		{"a", "a.pdf", "application/pdf", pdf2},
		{"b", "b.pdf", "application/octet-stream", pdf5},
		{"c", "scan", "", skia},
		{"d", "d.png", "image/png", []byte("png")},
		{"e", "e.jpg", "image/jpeg", []byte("jpeg")},
		{"f", "notes.txt", "text/plain", []byte("text file")},
		{"meta", "", "application/json", []byte(`{"x":1}`)},
		{"g", "big.pdf", "application/pdf", big},
	})
	got, err := measureBytes(t, ct, body, Options{MemoryThreshold: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{Files: []File{
		{Name: "a.pdf", Field: "a", ContentType: "application/pdf", Kind: KindPDF, Size: int64(len(pdf2)), Pages: 2},
		{Name: "b.pdf", Field: "b", ContentType: "application/octet-stream", Kind: KindPDF, Size: int64(len(pdf5)), Pages: 5},
		{Name: "scan", Field: "c", Kind: KindPDF, Size: int64(len(skia)), Pages: 64},
		{Name: "d.png", Field: "d", ContentType: "image/png", Kind: KindImage, Size: 3, Pages: 1},
		{Name: "e.jpg", Field: "e", ContentType: "image/jpeg", Kind: KindImage, Size: 4, Pages: 1},
		{Name: "notes.txt", Field: "f", ContentType: "text/plain", Kind: KindOther, Size: 9},
		{Name: "meta", Field: "meta", ContentType: "application/json", Kind: KindOther, Size: 7},
		{Name: "big.pdf", Field: "g", ContentType: "application/pdf", Kind: KindPDF, Size: int64(len(big)), Pages: 40},
	}, Pages: 2 + 5 + 64 + 1 + 1 + 40, Unpriced: 1} // notes.txt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v\nwant    %+v", got, want)
	}
}

func TestMeasureMultipartErrors(t *testing.T) {
	ct, body := multipartBody(t, []part{
		{"a", "a.pdf", "application/pdf", newDoc(1, 50).bytes(1)},
		{"b", "b.pdf", "application/pdf", newDoc(1, 50).bytes(1)},
	})
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	brokenCT, broken := multipartBody(t, []part{{"x", "x.pdf", "application/pdf", []byte("%PDF-1.7 nothing else")}})
	manyCT, many := multipartBody(t, make([]part, 101))

	tests := []struct {
		name        string
		contentType string
		body        []byte
		opts        Options
		code        string
		details     map[string]any
	}{
		{"no boundary", "multipart/form-data", body, Options{}, meter.ECodeBadRequest, nil},
		{"invalid boundary", "multipart/form-data; boundary=" + strings.Repeat("x", 71), body, Options{}, meter.ECodeBadRequest, nil},
		{"wrong boundary", "multipart/form-data; boundary=other", body, Options{}, meter.ECodeBadRequest, nil},
		{"truncated in a part", ct, body[:len(body)/2], Options{}, meter.ECodeBadRequest, nil},
		{"truncated before the close", ct, body[:len(body)-len(boundary)-8], Options{}, meter.ECodeBadRequest, nil},
		{"malformed part headers", ct, []byte("--" + boundary + "\r\nno colon here\r\n\r\nx\r\n--" + boundary + "--\r\n"), Options{}, meter.ECodeBadRequest, nil},
		{"more than MaxFiles parts", manyCT, many, Options{}, meter.ECodeBadRequest, map[string]any{"max_files": 100}},
		{"more than custom MaxFiles", ct, body, Options{MaxFiles: 1}, meter.ECodeBadRequest, map[string]any{"max_files": 1}},
		{"unreadable declared PDF names the file", brokenCT, broken, Options{}, meter.ECodeUnreadableDocument,
			map[string]any{"file": "x.pdf", "reason": ReasonDamaged}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := measureBytes(t, tc.contentType, tc.body, tc.opts)
			e, ok := err.(*meter.Error)
			if !ok || e.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			if tc.details != nil && !reflect.DeepEqual(e.Details, tc.details) {
				t.Errorf("details = %v, want %v", e.Details, tc.details)
			}
		})
	}
}

// Measure carries the box of every page, for page classes by size.
func TestMeasurePageSizes(t *testing.T) {
	d := &pdfDoc{}
	d.add("<</Type /Catalog /Pages 2 0 R>>")
	d.add("<</Type /Pages /Kids [3 0 R 4 0 R] /MediaBox [0 0 612 792] /Rotate 90>>")
	d.add("<</Type /Page /Parent 2 0 R>>")
	d.add("<</Type /Page /Parent 2 0 R /MediaBox [0 0 1224 1584] /CropBox [0 0 1224 792]>>")
	pdf := d.bytes(1)
	opts := Options{TempDir: t.TempDir(), MemoryThreshold: 100} // spooled to disk
	b, err := Spool(bytes.NewReader(pdf), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	u, err := Measure(context.Background(), "application/pdf", b, opts)
	if err != nil {
		t.Fatal(err)
	}
	letter := [4]float32{0, 0, 612, 792}
	want := []PageSize{
		{Box: PageBox{MediaBox: letter, CropBox: letter, Rotate: 90}, Pages: 1},
		{Box: PageBox{MediaBox: [4]float32{0, 0, 1224, 1584}, CropBox: [4]float32{0, 0, 1224, 792}, Rotate: 90}, Pages: 1},
	}
	if got := u.Files[0].PageSizes; !reflect.DeepEqual(got, want) {
		t.Errorf("PageSizes = %+v\nwant        %+v", got, want)
	}
}

// The application/pdf fast path gives what mime.ParseMediaType gives.
func TestParseContentTypePDF(t *testing.T) {
	for _, ct := range []string{"application/pdf", "Application/PDF", "APPLICATION/pdf"} {
		got, params, err := parseContentType(ct)
		want, wparams, werr := mime.ParseMediaType(ct)
		if got != want || len(params) != len(wparams) || err != nil || werr != nil {
			t.Errorf("%q: %q %v %v, want %q %v %v", ct, got, params, err, want, wparams, werr)
		}
	}
}

// TestOptionsDefaults: the measuring defaults, written once here and shown
// by the gateway's config (max_body, memory_threshold, max_files,
// max_pages, count_timeout in the README).
func TestOptionsDefaults(t *testing.T) {
	d := Options{}.WithDefaults()
	if d.MaxBody != 100<<20 || d.MemoryThreshold != 1<<20 || d.MaxFiles != 100 || d.MaxPages != 100_000 ||
		d.CountTimeout != 10*time.Second || d.PDF.Timeout != 10*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	set := Options{MaxBody: 5, MemoryThreshold: 4, MaxFiles: 3, MaxPages: 2, CountTimeout: time.Second}.WithDefaults()
	if set.MaxBody != 5 || set.MemoryThreshold != 4 || set.MaxFiles != 3 || set.MaxPages != 2 || set.CountTimeout != time.Second {
		t.Fatalf("set values changed: %+v", set)
	}
}
