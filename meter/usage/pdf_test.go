package usage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// realPDFs are files from other producers, with the page counts pdfinfo
// (poppler) reports for them. testdata/README.md says where each comes from.
var realPDFs = []struct {
	file  string
	pages int
}{
	{"quartz.pdf", 1},              // macOS Quartz PDFContext
	{"pdftex.pdf", 4},              // MiKTeX pdfTeX
	{"skia.pdf", 64},               // Skia/PDF (Chrome)
	{"cairo.pdf", 8},               // cairo (pdftocairo)
	{"objstm.pdf", 8},              // qpdf: object streams + xref stream
	{"encrypted-owner.pdf", 8},     // qpdf: AES-256, empty user password
	{"encrypted-owner-rc4.pdf", 1}, // qpdf: RC4-128, empty user password
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countBytes(b []byte, lim PDFLimits) (int, error) {
	return CountPDFPages(context.Background(), bytes.NewReader(b), int64(len(b)), lim)
}

func TestCountPDFPagesRealDocuments(t *testing.T) {
	for _, tc := range realPDFs {
		t.Run(tc.file, func(t *testing.T) {
			got, err := countBytes(readTestdata(t, tc.file), PDFLimits{})
			if err != nil {
				t.Fatalf("CountPDFPages: %v", err)
			}
			if got != tc.pages {
				t.Errorf("pages = %d, want %d (pdfinfo)", got, tc.pages)
			}
		})
	}
}

func TestCountPDFPagesGenerated(t *testing.T) {
	tests := []struct {
		name  string
		pdf   []byte
		pages int
	}{
		{"pdfcpu 1 page", pdfcpuDoc(t, 1), 1},
		{"pdfcpu merged 7 pages", pdfcpuDoc(t, 7), 7},
		{"hand-written 1 page", newDoc(1, 20).bytes(1), 1},
		{"hand-written 250 pages", newDoc(250, 20).bytes(1), 250},
		{"object stream 12 pages", pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 12}), 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := countBytes(tc.pdf, PDFLimits{})
			if err != nil {
				t.Fatalf("CountPDFPages: %v", err)
			}
			if got != tc.pages {
				t.Errorf("pages = %d, want %d", got, tc.pages)
			}
		})
	}
}

// hostile returns the documents that try to make counting lie, hang, panic
// or blow up, with the count or the error reason expected.
func hostile(t testing.TB) []struct {
	name   string
	pdf    []byte
	lim    PDFLimits
	pages  int    // expected when reason is ""
	reason string // expected unreadable_document reason
} {
	valid := newDoc(3, 200).bytes(1)

	loop := newDoc(2, 10)
	loop.set(2, "<</Type /Pages /Kids [4 0 R 2 0 R 6 0 R] /Count 3>>") // 2 is its own kid

	hugeCount := newDoc(2, 10)
	hugeCount.set(2, "<</Type /Pages /Kids [4 0 R 6 0 R] /Count 1000000000>>")

	missingPages := newDoc(1, 10)
	missingPages.set(1, "<</Type /Catalog>>")

	directPages := newDoc(2, 10)
	directPages.set(1, "<</Type /Catalog /Pages <</Type /Pages /Kids [4 0 R 6 0 R] /Count 2>>>>")

	noPages := newDoc(1, 10)
	noPages.set(2, "<</Type /Pages /Kids [] /Count 5>>")

	danglingKids := newDoc(2, 10)
	danglingKids.set(2, "<</Type /Pages /Kids [4 0 R 99 0 R null 7 6 0 R] /Count 2>>")

	userPassword := readTestdata(t, "encrypted-user.pdf")

	// A content stream that inflates to 16 MiB: never decoded, so harmless.
	contentBomb := newDoc(1, 10)
	contentBomb.set(3, stream("/Filter /FlateDecode", flate(make([]byte, 16<<20))))

	return []struct {
		name   string
		pdf    []byte
		lim    PDFLimits
		pages  int
		reason string
	}{
		{"valid control", valid, PDFLimits{}, 3, ""},
		{"page tree loop", loop.bytes(1), PDFLimits{}, 0, ReasonDamaged},
		{"huge root /Count is what readers report", hugeCount.bytes(1), PDFLimits{}, 1e9, ""},
		{"huge root /Count over max_pages", hugeCount.bytes(1), PDFLimits{MaxPages: 1000}, 0, meter.ECodeTooManyPages},
		{"direct /Pages dict", directPages.bytes(1), PDFLimits{}, 2, ""},
		{"dangling and null kids are skipped", danglingKids.bytes(1), PDFLimits{}, 2, ""},
		{"deep tree within limit", deepTree(40), PDFLimits{}, 1, ""},
		{"deep tree over limit", deepTree(5000), PDFLimits{}, 0, ReasonTooLarge},
		{"deep tree over custom limit", deepTree(10), PDFLimits{MaxDepth: 5}, 0, ReasonTooLarge},
		{"missing /Pages", missingPages.bytes(1), PDFLimits{}, 0, ReasonDamaged},
		{"no reachable page", noPages.bytes(1), PDFLimits{}, 0, ReasonDamaged},
		{"truncated to half", valid[:len(valid)/2], PDFLimits{}, 0, ReasonDamaged},
		{"truncated header only", valid[:9], PDFLimits{}, 0, ReasonDamaged},
		{"garbage after header", append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("garbage \x00\xff "), 500)...), PDFLimits{}, 0, ReasonDamaged},
		{"not a PDF", []byte("hello, world"), PDFLimits{}, 0, ReasonDamaged},
		{"user password", userPassword, PDFLimits{}, 0, ReasonEncrypted},
		{"content stream flate bomb", contentBomb.bytes(1), PDFLimits{}, 1, ""},
		{"object stream flate bomb", pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 2, Pad: 8 << 20}), PDFLimits{MaxDecodeBytes: 1 << 20}, 0, ReasonTooLarge},
		// The lazy scanner never reads these streams, so their lengths do
		// not matter; TestPDFCPUStreamLengthGuards covers the fallback.
		{"stream /Length beyond the file", lyingLength(50, "2000000000"), PDFLimits{}, 1, ""},
		{"a few long /Length are tolerated", lyingLength(2, "300"), PDFLimits{}, 1, ""},
		{"allocation bomb: direct /Length", lyingLength(20000, "1000000"), PDFLimits{}, 1, ""},
		{"allocation bomb: indirect /Length", lyingLength(20000, "5 0 R"), PDFLimits{}, 1, ""},
		{"xref stream flate bomb", xrefStreamBomb(), PDFLimits{MaxDecodeBytes: 1 << 20}, 0, ReasonTooLarge},
		{"wrong startxref is repaired by the fallback", wrongStartxref(valid), PDFLimits{}, 3, ""},
	}
}

// deepTree is a chain of depth /Pages nodes above a single page.
func deepTree(depth int) []byte {
	d := &pdfDoc{}
	d.add("<</Type /Catalog /Pages 2 0 R>>")
	for i := range depth {
		d.add(fmt.Sprintf("<</Type /Pages /Kids [%d 0 R] /Count 1>>", i+3))
	}
	d.add("<</Type /Page /MediaBox [0 0 612 792]>>")
	return d.bytes(1)
}

// lyingLength adds n two-byte streams that declare length (object 5 is an
// integer object holding 1,000,000).
func lyingLength(n int, length string) []byte {
	d := newDoc(1, 10)
	d.add("1000000")
	for range n {
		d.add("<</Length " + length + ">>\nstream\nxx\nendstream")
	}
	return d.bytes(1)
}

func TestCountPDFPagesHostile(t *testing.T) {
	for _, tc := range hostile(t) {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := countBytes(tc.pdf, tc.lim)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("CountPDFPages: %v", err)
				}
				if got != tc.pages {
					t.Errorf("pages = %d, want %d", got, tc.pages)
				}
				return
			}
			if tc.reason == meter.ECodeTooManyPages {
				if meter.ErrorCode(err) != meter.ECodeTooManyPages {
					t.Fatalf("err = %v, want too_many_pages", err)
				}
				return
			}
			assertUnreadable(t, err, tc.reason)
		})
	}
}

func assertUnreadable(t *testing.T, err error, reason string) {
	t.Helper()
	var e *meter.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *meter.Error", err)
	}
	if e.Code != meter.ECodeUnreadableDocument {
		t.Errorf("code = %q, want %q", e.Code, meter.ECodeUnreadableDocument)
	}
	if got := e.Details["reason"]; got != reason {
		t.Errorf("reason = %v, want %q (%v)", got, reason, e.Err)
	}
	if e.Message != messages[reason] {
		t.Errorf("message = %q, want %q", e.Message, messages[reason])
	}
}

func TestCountPDFPagesTimeout(t *testing.T) {
	pdf := newDoc(2000, 100).bytes(1)
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		lim  PDFLimits
	}{
		{"PDFLimits.Timeout", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, PDFLimits{Timeout: time.Nanosecond}},
		{"ctx deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, PDFLimits{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := CountPDFPages(ctx, bytes.NewReader(pdf), int64(len(pdf)), tc.lim)
			assertUnreadable(t, err, ReasonTimeout)
		})
	}
}

func TestCountPDFPagesCanceledIsNotUnreadable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pdf := newDoc(1, 10).bytes(1)
	_, err := CountPDFPages(ctx, bytes.NewReader(pdf), int64(len(pdf)), PDFLimits{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCountPDFPagesEmpty(t *testing.T) {
	_, err := CountPDFPages(context.Background(), strings.NewReader(""), 0, PDFLimits{})
	assertUnreadable(t, err, ReasonDamaged)
}

// FuzzCountPDFPages checks that no input panics, hangs or returns anything
// but a count or an unreadable_document error. Run longer with
// go test -fuzz FuzzCountPDFPages ./meter/usage/
func FuzzCountPDFPages(f *testing.F) {
	for _, tc := range realPDFs {
		f.Add(readTestdata(f, tc.file))
	}
	f.Add(readTestdata(f, "encrypted-user.pdf"))
	f.Add(newDoc(3, 50).bytes(1))
	f.Add(pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 3}))
	f.Add(deepTree(10))
	f.Add(wrongStartxref(readTestdata(f, "cairo.pdf")))
	f.Add(readTestdata(f, "objstm.pdf")[:5000])
	loop := newDoc(2, 10)
	loop.set(2, "<</Type /Pages /Kids [4 0 R 2 0 R 6 0 R] /Count 3>>")
	f.Add(loop.bytes(1))
	f.Add(lyingLength(3, "5 0 R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := countBytes(b, PDFLimits{Timeout: 5 * time.Second, MaxDecodeBytes: 8 << 20})
		if err != nil {
			if meter.ErrorCode(err) != meter.ECodeUnreadableDocument {
				t.Fatalf("err = %v, want unreadable_document", err)
			}
			return
		}
		if n < 1 {
			t.Fatalf("pages = %d without error", n)
		}
	})
}

// BenchmarkCountPDFPages counts a 3,000-page document with a 10 KB content
// stream per page (about 30 MB).
func BenchmarkCountPDFPages(b *testing.B) {
	pdf := newDoc(3000, 10_000).bytes(1)
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := countBytes(pdf, PDFLimits{})
		if err != nil || n != 3000 {
			b.Fatalf("pages = %d, err = %v", n, err)
		}
	}
}
