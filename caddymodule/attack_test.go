package caddymodule

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// The adversarial suite of issue 14 for labels and encodings: a client
// that wants to pay less sends a 100-page PDF under every disguise, raw
// and inside multipart parts. Each attack is charged exactly the 100
// pages a reader sees (per_page 1), or refused with nothing forwarded.
// Run on both stores.

const attackSite = `
http://{SITE} {
	route /v1/* {
		meter {
			per_page 1
			max_body 4MB
			memory_threshold 64KB
		}
		reverse_proxy {UPSTREAM}
	}
	route /charge/* {
		meter {
			per_page 1
			unpriced charge 5
		}
		reverse_proxy {UPSTREAM}
	}
	route /field/* {
		meter {
			per_page 1
			json_documents $.document $.files[*].content
		}
		reverse_proxy {UPSTREAM}
	}
	route /nojson/* {
		meter {
			per_page 1
			json_documents off
		}
		reverse_proxy {UPSTREAM}
	}
	route /action/* {
		meter {
			per_call 2
		}
		reverse_proxy {UPSTREAM}
	}
}
`

// mpart is one part of a multipart body: its headers and content. A part
// whose content is nested is a multipart/mixed of those parts.
type mpart struct {
	hdr    []string // name, value pairs
	body   []byte
	nested []mpart
}

func buildMultipart(t *testing.T, subtype string, parts []mpart) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		for i := 0; i+1 < len(p.hdr); i += 2 {
			h.Set(p.hdr[i], p.hdr[i+1])
		}
		body := p.body
		if p.nested != nil {
			var ct string
			body, ct = buildMultipart(t, "mixed", p.nested)
			h.Set("Content-Type", ct)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	mw.Close()
	return b.Bytes(), "multipart/" + subtype + "; boundary=" + mw.Boundary()
}

// file is the header of a form-data file part.
func file(name, filename, ctype string) []string {
	h := []string{"Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, filename)}
	if ctype != "" {
		h = append(h, "Content-Type", ctype)
	}
	return h
}

func field(name string) []string {
	return []string{"Content-Disposition", fmt.Sprintf(`form-data; name=%q`, name)}
}

func gz(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func junk(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return bytes.ReplaceAll(b, []byte("%"), []byte("*")) // no stray %PDF-
}

type attack struct {
	name    string
	path    string
	ctype   string
	hdr     []string
	body    []byte
	status  int
	code    string  // error code of a refusal
	charged float64 // credits taken from the balance
}

func attacks(t *testing.T) []attack {
	pdf := pdftest.Pages(100)
	b64 := base64.StdEncoding.EncodeToString(pdf)
	withJunk := append(junk(1100, 1), pdf...)
	bigJunk := append(junk(1<<20, 2), pdf...) // spooled to disk
	pngThenPDF := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), pdf...)
	noHeader := bytes.Replace(pdf, []byte("%PDF-1.7"), []byte("%XYZ-1.7"), 1)
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), junk(200, 3)...)

	var zl, br, zs bytes.Buffer
	zw := zlib.NewWriter(&zl)
	zw.Write(pdf)
	zw.Close()
	bw := brotli.NewWriter(&br)
	bw.Write(pdf)
	bw.Close()
	zsw, _ := zstd.NewWriter(&zs)
	zsw.Write(pdf)
	zsw.Close()
	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	qw.Write(pdf)
	qw.Close()
	b64Lines := func() []byte {
		var out bytes.Buffer
		for s := b64; len(s) > 0; {
			n := min(76, len(s))
			out.WriteString(s[:n] + "\r\n")
			s = s[n:]
		}
		return out.Bytes()
	}()

	mp := func(subtype string, parts ...mpart) ([]byte, string) { return buildMultipart(t, subtype, parts) }
	form := func(parts ...mpart) ([]byte, string) { return mp("form-data", parts...) }

	const ok, charged100 = http.StatusOK, 100
	rows := []attack{
		// Raw bodies: the label never lowers the charge.
		{name: "raw/labelled image/png", ctype: "image/png", body: pdf, status: ok, charged: charged100},
		{name: "raw/labelled text/plain", ctype: "text/plain", body: pdf, status: ok, charged: charged100},
		{name: "raw/labelled application/json", ctype: "application/json", body: pdf, status: ok, charged: charged100},
		{name: "raw/labelled application/x-foo", ctype: "application/x-foo", body: pdf, status: ok, charged: charged100},
		{name: "raw/curl's default form type", ctype: "application/x-www-form-urlencoded", body: pdf, status: ok, charged: charged100},
		{name: "raw/no content type", body: pdf, status: ok, charged: charged100},
		{name: "raw/after 1,100 junk bytes, octet-stream", ctype: "application/octet-stream", body: withJunk, status: ok, charged: charged100},
		{name: "raw/after 1 MB of junk, spooled", ctype: "application/octet-stream", body: bigJunk, status: ok, charged: charged100},
		{name: "raw/after a PNG signature, image/png", ctype: "image/png", body: pngThenPDF, status: ok, charged: charged100},
		{name: "raw/%PDF- header overwritten", ctype: "application/octet-stream", body: noHeader, status: ok, charged: charged100},
		{name: "raw/a real image is one page", ctype: "image/png", body: png, status: ok, charged: 1},
		{name: "raw/an image labelled text/plain", ctype: "text/plain", body: png, status: ok, charged: 1},
		// Content-Encoding: decoded for counting, forwarded as sent.
		{name: "encoding/gzip, octet-stream", ctype: "application/octet-stream", hdr: []string{"Content-Encoding", "gzip"}, body: gz(t, pdf), status: ok, charged: charged100},
		{name: "encoding/gzip, no type", hdr: []string{"Content-Encoding", "gzip"}, body: gz(t, pdf), status: ok, charged: charged100},
		{name: "encoding/gzip of junk and the PDF", ctype: "text/plain", hdr: []string{"Content-Encoding", "gzip"}, body: gz(t, withJunk), status: ok, charged: charged100},
		{name: "encoding/deflate (zlib)", hdr: []string{"Content-Encoding", "deflate"}, body: zl.Bytes(), status: ok, charged: charged100},
		{name: "encoding/br", hdr: []string{"Content-Encoding", "br"}, body: br.Bytes(), status: ok, charged: charged100},
		{name: "encoding/zstd", hdr: []string{"Content-Encoding", "zstd"}, body: zs.Bytes(), status: ok, charged: charged100},
		{name: "encoding/gzip twice", hdr: []string{"Content-Encoding", "gzip, gzip"}, body: gz(t, gz(t, pdf)), status: ok, charged: charged100},
		{name: "encoding/unknown coding refused", hdr: []string{"Content-Encoding", "compress"}, body: pdf, status: 415, code: meter.ECodeUnsupportedEncoding},
		{name: "encoding/gzip bomb refused", hdr: []string{"Content-Encoding", "gzip"}, body: gz(t, make([]byte, 3<<20)), status: 413, code: meter.ECodeBodyTooLarge},
		{name: "encoding/corrupt gzip refused", hdr: []string{"Content-Encoding", "gzip"}, body: append(gz(t, pdf)[:100], junk(100, 4)...), status: 400, code: meter.ECodeBadRequest},
		// JSON bodies: base64 documents are counted.
		{name: "json/base64 PDF", ctype: "application/json", body: []byte(`{"extractor_id":"x","document":"` + b64 + `","mime_type":"image/png"}`), status: ok, charged: charged100},
		{name: "json/data: URL, labelled text/plain", ctype: "text/plain", body: []byte(`{"files":[{"content":"data:application/pdf;base64,` + b64 + `"}]}`), status: ok, charged: charged100},
		{name: "json/base64 of junk and the PDF", ctype: "application/json", body: []byte(`["` + base64.StdEncoding.EncodeToString(withJunk) + `"]`), status: ok, charged: charged100},
		{name: "json/URL-safe base64 in two fields", ctype: "application/json", body: []byte(`{"a":"` + base64.RawURLEncoding.EncodeToString(pdf) + `","b":{"c":"` + b64 + `"}}`), status: ok, charged: 2 * charged100},
		{name: "json/no document refused", ctype: "application/json", body: []byte(`{"document_url":"https://example.com/a.pdf"}`), status: 415, code: meter.ECodeUnsupportedContent},
		{name: "json/documents off refuses", path: "/nojson/x", ctype: "application/json", body: []byte(`{"document":"` + b64 + `"}`), status: 415, code: meter.ECodeUnsupportedContent},
		{name: "json/selected field", path: "/field/x", ctype: "application/json", body: []byte(`{"document":"` + b64 + `"}`), status: ok, charged: charged100},
		{name: "json/selected array field", path: "/field/x", ctype: "application/json", body: []byte(`{"files":[{"content":"` + b64 + `"},{"content":"` + b64 + `"}]}`), status: ok, charged: 2 * charged100},
		{name: "json/selected field with a URL refused", path: "/field/x", ctype: "application/json", body: []byte(`{"document":"https://example.com/a.pdf"}`), status: 415, code: meter.ECodeUnsupportedContent},
		// Content the pages cannot price.
		{name: "unpriced/text refused", ctype: "text/plain", body: []byte("please convert https://example.com/a.pdf"), status: 415, code: meter.ECodeUnsupportedContent},
		{name: "unpriced/random bytes refused", ctype: "application/octet-stream", body: junk(5000, 5), status: 415, code: meter.ECodeUnsupportedContent},
		{name: "unpriced/charged as configured", path: "/charge/x", ctype: "text/plain", body: []byte("hello"), status: ok, charged: 5},
		{name: "unpriced/a PDF on the charging route", path: "/charge/x", ctype: "text/plain", body: pdf, status: ok, charged: charged100},
		{name: "unpriced/JSON action route unchanged", path: "/action/x", ctype: "application/json", body: []byte(`{"a":1}`), status: ok, charged: 2},
	}

	// Multipart: each disguise inside a part.
	mpRows := []struct {
		name    string
		build   func() ([]byte, string)
		hdr     []string
		status  int
		code    string
		charged float64
	}{
		{"part typed image/png", func() ([]byte, string) { return form(mpart{hdr: file("f", "a.png", "image/png"), body: pdf}) }, nil, ok, "", charged100},
		{"part named a.pdf typed text/plain", func() ([]byte, string) { return form(mpart{hdr: file("f", "a.pdf", "text/plain"), body: pdf}) }, nil, ok, "", charged100},
		{"part typed application/json", func() ([]byte, string) { return form(mpart{hdr: file("f", "a", "application/json"), body: pdf}) }, nil, ok, "", charged100},
		{"part typed application/x-foo", func() ([]byte, string) { return form(mpart{hdr: file("f", "a.foo", "application/x-foo"), body: pdf}) }, nil, ok, "", charged100},
		{"untyped field", func() ([]byte, string) {
			return form(mpart{hdr: field("note"), body: []byte("hi")}, mpart{hdr: field("doc"), body: pdf})
		}, nil, ok, "", charged100},
		{"part after 1,100 junk bytes", func() ([]byte, string) {
			return form(mpart{hdr: file("f", "a.bin", "application/octet-stream"), body: withJunk})
		}, nil, ok, "", charged100},
		{"part after 1 MB of junk, spooled", func() ([]byte, string) {
			return form(mpart{hdr: file("f", "a.bin", "application/octet-stream"), body: bigJunk})
		}, nil, ok, "", charged100},
		{"nested multipart/mixed", func() ([]byte, string) {
			return form(mpart{hdr: field("files"), nested: []mpart{
				{hdr: []string{"Content-Disposition", `attachment; filename="a.png"`, "Content-Type", "image/png"}, body: pdf},
				{hdr: []string{"Content-Disposition", `attachment; filename="b.png"`, "Content-Type", "image/png"}, body: png},
			}})
		}, nil, ok, "", charged100 + 1},
		{"base64 transfer encoding", func() ([]byte, string) {
			return form(mpart{hdr: append(file("f", "a.png", "image/png"), "Content-Transfer-Encoding", "base64"), body: b64Lines})
		}, nil, ok, "", charged100},
		{"quoted-printable transfer encoding", func() ([]byte, string) {
			return form(mpart{hdr: append(file("f", "a.txt", "text/plain"), "Content-Transfer-Encoding", "quoted-printable"), body: qp.Bytes()})
		}, nil, ok, "", charged100},
		{"base64 inside nested multipart/mixed", func() ([]byte, string) {
			return form(mpart{hdr: field("files"), nested: []mpart{
				{hdr: []string{"Content-Disposition", `attachment; filename="a"`, "Content-Transfer-Encoding", "base64"}, body: []byte(b64)},
			}})
		}, nil, ok, "", charged100},
		{"whole form gzip-encoded", func() ([]byte, string) {
			b, ct := form(mpart{hdr: file("f", "a.png", "image/png"), body: pdf})
			return gz(t, b), ct
		}, []string{"Content-Encoding", "gzip"}, ok, "", charged100},
		{"only text fields refused", func() ([]byte, string) {
			return form(mpart{hdr: field("url"), body: []byte("https://example.com/a.pdf")})
		}, nil, 415, meter.ECodeUnsupportedContent, 0},
		{"a named text file beside a PDF refused", func() ([]byte, string) {
			return form(mpart{hdr: file("f", "a.pdf", "application/pdf"), body: pdf},
				mpart{hdr: file("g", "notes.docx", "application/octet-stream"), body: []byte("PK\x03\x04 not a document we count")})
		}, nil, 415, meter.ECodeUnsupportedContent, 0},
	}
	for _, r := range mpRows {
		body, ct := r.build()
		rows = append(rows, attack{name: "multipart/" + r.name, ctype: ct, hdr: r.hdr, body: body,
			status: r.status, code: r.code, charged: r.charged})
	}
	return rows
}

func TestAttacksEmbedded(t *testing.T) {
	global := strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1)
	runAttacks(t, global)
}

func TestAttacksRedis(t *testing.T) { runAttacks(t, globalBlock) }

func runAttacks(t *testing.T, global string) {
	u := newUpstream(t)
	g := startGateway(t, global+strings.ReplaceAll(attackSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://")))
	const start = 100000
	key := g.newAccount("attacker", start, meter.ModeLive)
	balance := float64(start)
	for _, a := range attacks(t) {
		t.Run(a.name, func(t *testing.T) {
			path := a.path
			if path == "" {
				path = "/v1/convert"
			}
			before := u.requests.Load()
			resp, raw := g.post(path, key, a.ctype, a.body, a.hdr...)
			forwarded := u.requests.Load() - before
			if resp.StatusCode != a.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, a.status, raw)
			}
			if a.status != http.StatusOK {
				if code, _ := errorCode(t, raw); code != a.code {
					t.Errorf("code %q, want %q", code, a.code)
				}
				if forwarded != 0 {
					t.Errorf("a refused request reached the upstream")
				}
			} else {
				if forwarded != 1 {
					t.Fatalf("forwarded %d times", forwarded)
				}
				// The upstream gets the bytes the client sent, encoded as sent.
				if sum, hdr := u.last(); sum != sha256.Sum256(a.body) || hdr.Get("Content-Encoding") != headerValue(a.hdr, "Content-Encoding") {
					t.Errorf("the upstream did not get the body as sent")
				}
			}
			balance -= a.charged
			if got := resp.Header.Get(HeaderCost); a.status == http.StatusOK && got != credits(a.charged).String() {
				t.Errorf("%s = %q, want %v", HeaderCost, got, a.charged)
			}
			if got := g.account("attacker").Balance; got != credits(balance) {
				t.Fatalf("balance %s, want %v", got, balance)
			}
		})
	}
	g.assertBalance("attacker", balance, 0)
}

func headerValue(hdr []string, name string) string {
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], name) {
			return hdr[i+1]
		}
	}
	return ""
}
