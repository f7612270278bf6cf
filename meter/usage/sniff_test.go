package usage

import (
	"bytes"
	"context"
	"encoding/base64"
	"mime/multipart"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/creditgate/creditgate/meter"
)

// Marks are found wherever the writes split them.
func TestMarkScanSplits(t *testing.T) {
	body := []byte(strings.Repeat("x", 100) + "%PDF-1.7 ... startxref")
	for size := 1; size <= 12; size++ {
		s := newMarkScan()
		for i := 0; i < len(body); i += size {
			s.Write(body[i:min(i+size, len(body))])
		}
		if s.pdfAt != 100 || s.n != int64(len(body)) {
			t.Errorf("writes of %d: pdfAt %d, n %d", size, s.pdfAt, s.n)
		}
	}
	for size := 1; size <= 12; size++ {
		s := newMarkScan()
		b := []byte("abc startxref def")
		for i := 0; i < len(b); i += size {
			s.Write(b[i:min(i+size, len(b))])
		}
		if !s.structure || s.pdfAt != -1 {
			t.Errorf("writes of %d: structure %v pdfAt %d", size, s.structure, s.pdfAt)
		}
	}
}

func TestIsImage(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"\x89PNG\r\n\x1a\n\x00\x00", true},
		{"\xff\xd8\xff\xe0", true},
		{"GIF89a", true},
		{"II*\x00\x08", true},
		{"RIFF\x10\x00\x00\x00WEBPVP8 ", true},
		{"RIFF\x10\x00\x00\x00WAVEfmt ", false},
		{"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00", true},
		{"BMW is a car brand, not a bitmap", false},
		{"\x00\x00\x00\x18ftypheic", true},
		{"%PDF-1.7", false},
		{"", false},
	} {
		if got := isImage([]byte(tc.head)); got != tc.want {
			t.Errorf("isImage(%q) = %v", tc.head, got)
		}
	}
}

func TestDecodeBase64Doc(t *testing.T) {
	for _, s := range []string{
		"JVBERi0xLjc=", "JVBERi0xLjc", "JVBE\r\nRi0x Ljc=", "data:application/pdf;base64,JVBERi0xLjc=",
	} {
		if b, ok := decodeBase64Doc(s); !ok || string(b) != "%PDF-1.7" {
			t.Errorf("%q: %q %v", s, b, ok)
		}
	}
	for _, s := range []string{"not base64!", "data:text/plain,JVBERi0xLjc=", ""} {
		if _, ok := decodeBase64Doc(s); ok {
			t.Errorf("%q decoded", s)
		}
	}
}

func TestWalkJSONStrings(t *testing.T) {
	var got []string
	err := walkJSONStrings(strings.NewReader(`{"a":"x","b":[1,"y",{"c d":"z"}],"e":{"f":["w"]},"g":null}`), func(p, s string) error {
		got = append(got, p+"="+s)
		return nil
	})
	want := []string{`$.a=x`, `$.b[1]=y`, `$.b[2]["c d"]=z`, `$.e.f[0]=w`}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
}

// A PDF after junk is read from its header; the file's size stays the
// whole body's.
func TestMeasureJunkBeforePDF(t *testing.T) {
	pdf := newDoc(7, 50).bytes(1)
	body := append(bytes.Repeat([]byte("junk\n"), 2000), pdf...)
	got, err := measureBytes(t, "text/plain", body, Options{})
	want := Usage{Files: []File{{ContentType: "text/plain", Kind: KindPDF, Size: int64(len(body)), Pages: 7}}, Pages: 7}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v, %v\nwant    %+v", got, err, want)
	}
}

// Structure without a header is tried as a PDF; what cannot be read
// keeps the kind its bytes or label give.
func TestMeasureStructureOnly(t *testing.T) {
	got, err := measureBytes(t, "image/png", []byte("looks like startxref but is not"), Options{})
	want := Usage{Files: []File{{ContentType: "image/png", Kind: KindImage, Size: 31, Pages: 1}}, Pages: 1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v, %v\nwant    %+v", got, err, want)
	}
	got, err = measureBytes(t, "text/plain", []byte("the /Catalog of a library"), Options{})
	want = Usage{Files: []File{{ContentType: "text/plain", Kind: KindOther, Size: 25}}, Unpriced: 1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v, %v\nwant    %+v", got, err, want)
	}
}

func measureEncoded(t *testing.T, ce string, body []byte, opts Options) (Usage, error) {
	t.Helper()
	b, err := Spool(bytes.NewReader(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return MeasureEncoded(context.Background(), "", ce, b, opts)
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestMeasureContentEncoding(t *testing.T) {
	pdf := newDoc(3, 50).bytes(1)
	u, err := measureEncoded(t, "identity, gzip", gzipped(pdf), Options{})
	if err != nil || u.Pages != 3 || u.Files[0].Size != int64(len(pdf)) {
		t.Errorf("gzip: %+v %v", u, err)
	}
	for _, tc := range []struct {
		name, ce string
		body     []byte
		opts     Options
		code     string
		details  map[string]any
	}{
		{"unknown", "compress", pdf, Options{}, meter.ECodeUnsupportedEncoding, nil},
		{"three codings", "gzip, gzip, gzip", pdf, Options{}, meter.ECodeUnsupportedEncoding, nil},
		{"not gzip", "gzip", pdf, Options{}, meter.ECodeBadRequest, nil},
		{"ratio", "gzip", gzipped(make([]byte, 2<<20)), Options{}, meter.ECodeBodyTooLarge, map[string]any{"max_ratio": 100}},
		{"max_body", "gzip", gzipped(bytes.Repeat(pdf, 100)), Options{MaxBody: 64 << 10}, meter.ECodeBodyTooLarge, map[string]any{"max_body": int64(64 << 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := measureEncoded(t, tc.ce, tc.body, tc.opts)
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

// Decoding draws from the budget: a body that cannot get its share in
// time is server_busy, and what it took is given back after.
func TestContentEncodingBudget(t *testing.T) {
	pdf := newDoc(3, 50).bytes(1)
	budget := NewBudget(32<<20, 50*time.Millisecond)
	release, err := budget.Hold(context.Background(), 30<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = measureEncoded(t, "zstd", pdf, Options{Budget: budget})
	if meter.ErrorCode(err) != meter.ECodeServerBusy {
		t.Fatalf("err = %v, want server_busy", err)
	}
	release()
	if _, err := measureEncoded(t, "gzip", gzipped(pdf), Options{Budget: budget}); err != nil {
		t.Fatal(err)
	}
	if budget.InUse() != 0 {
		t.Errorf("%d bytes still held", budget.InUse())
	}
}

// Parts are classified by their content once decoded; a nested or base64
// part that is not what it says is classified as sent.
func TestMeasureMultipartContent(t *testing.T) {
	pdf := newDoc(2, 50).bytes(1)
	ct, body := multipartBody(t, []part{
		{"field", "", "", pdf},                          // an untyped field holding a PDF
		{"text", "", "text/plain", []byte("just text")}, // a field: free
		{"mixed", "", "multipart/mixed", pdf},           // no boundary: a file after all
		{"b", "b.bin", "application/octet-stream", []byte("not base64 %%%")},
	})
	body = bytes.Replace(body, []byte("Content-Disposition: form-data; name=\"b\""),
		[]byte("Content-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"b\""), 1)
	got, err := measureBytes(t, ct, body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{Files: []File{
		{Name: "field", Field: "field", Kind: KindPDF, Size: int64(len(pdf)), Pages: 2},
		{Name: "mixed", Field: "mixed", ContentType: "multipart/mixed", Kind: KindPDF, Size: int64(len(pdf)), Pages: 2},
		{Name: "b.bin", Field: "b", ContentType: "application/octet-stream", Kind: KindOther, Size: 14},
	}, Pages: 4, Unpriced: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("usage = %+v\nwant    %+v", got, want)
	}
}

// The bytes win over every label: an image named a.pdf is an image, a
// declared PDF that is neither is unreadable.
func TestDecide(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for _, tc := range []struct {
		name, body, mediaType, filename string
		want                            verdict
	}{
		{"pdf labelled png", "%PDF-1.7", "image/png", "", verdict{kind: KindPDF, strict: true}},
		{"pdf after junk", "junk %PDF-1.7", "", "", verdict{kind: KindPDF, pdfAt: 5, strict: true}},
		{"png named a.pdf", string(png), "application/pdf", "a.pdf", verdict{kind: KindImage}},
		{"declared pdf, text", "hello", "application/pdf", "", verdict{kind: KindPDF, strict: true}},
		{"named a.pdf, text", "hello", "", "A.PDF", verdict{kind: KindPDF, strict: true}},
		{"structure only", "x startxref 9", "", "", verdict{kind: KindPDF, otherwise: KindOther}},
		{"structure, declared pdf", "x startxref 9", "application/pdf", "", verdict{kind: KindPDF, strict: true, otherwise: KindOther}},
		{"structure after png", string(png) + "startxref", "", "", verdict{kind: KindPDF, otherwise: KindImage}},
		{"image labelled text", string(png), "text/plain", "", verdict{kind: KindImage}},
		{"text labelled image", "hello", "image/jpeg", "", verdict{kind: KindImage}},
		{"text", "hello", "text/plain", "a.txt", verdict{kind: KindOther}},
	} {
		s := newMarkScan()
		s.Write([]byte(tc.body))
		head := []byte(tc.body)[:min(len(tc.body), 18)]
		if got := decide(s, head, tc.mediaType, tc.filename); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMeasureLimits(t *testing.T) {
	pdf := newDoc(1, 50).bytes(1)
	nest := func(levels int) (string, []byte) {
		ct, body := "application/pdf", pdf
		for i := 0; i < levels; i++ {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {ct}, "Content-Disposition": {`form-data; name="x"`}})
			w.Write(body)
			mw.Close()
			ct, body = "multipart/mixed; boundary="+mw.Boundary(), b.Bytes()
		}
		return ct, body
	}
	// The body and four levels inside it are opened; one more is refused.
	ct, body := nest(5)
	if u, err := measureBytes(t, ct, body, Options{}); err != nil || u.Pages != 1 {
		t.Errorf("five levels: %+v %v", u, err)
	}
	ct, body = nest(6)
	_, err := measureBytes(t, ct, body, Options{})
	if e, ok := err.(*meter.Error); !ok || e.Code != meter.ECodeBadRequest || e.Details["max_nesting"] != maxNesting {
		t.Errorf("six levels: %v", err)
	}

	doc := `"` + base64.StdEncoding.EncodeToString(pdf) + `"`
	three := []byte("[" + doc + "," + doc + "," + doc + "]")
	if _, err := measureBytes(t, "application/json", three, Options{MaxFiles: 2}); meter.ErrorCode(err) != meter.ECodeBadRequest {
		t.Errorf("three JSON documents, MaxFiles 2: %v", err)
	}
	if u, err := measureBytes(t, "application/json", three, Options{MaxFiles: 3}); err != nil || u.Pages != 3 {
		t.Errorf("three JSON documents, MaxFiles 3: %+v %v", u, err)
	}
}
