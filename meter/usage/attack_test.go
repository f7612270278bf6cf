package usage

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage/pdfscan"
)

// Page trees built to pay less than a reader renders. Each is read by both
// readers (the scanner, and pdfcpu through a broken startxref): they share
// one walk and must agree, page sizes included.
func TestPageTreeAttacks(t *testing.T) {
	letter := PageBox{MediaBox: [4]float32{0, 0, 612, 792}, CropBox: [4]float32{0, 0, 612, 792}}
	a3 := PageBox{MediaBox: [4]float32{0, 0, 842, 1191}, CropBox: [4]float32{0, 0, 842, 1191}}
	tests := []struct {
		name  string
		pdf   []byte
		max   int64
		pages int        // when code is ""
		sizes []PageSize // when not nil
		code  string     // error code, else ""
	}{
		{"a page object listed 1,000 times", pdftest.Repeated(1000), 0, 1000,
			[]PageSize{{Box: letter, Pages: 1000}}, ""},
		{"shared nodes 14 levels deep", pdftest.Shared(14, "[0 0 842 1191]"), 0, 16384,
			[]PageSize{{Box: a3, Pages: 16384}}, ""},
		{"2^40 pages through 40 shared levels", pdftest.Shared(40, ""), 0, 1 << 40,
			[]PageSize{{Box: letter, Pages: 1 << 40}}, ""},
		{"2^40 pages over max_pages", pdftest.Shared(40, ""), 100_000, 0, nil, meter.ECodeTooManyPages},
		{"16,384 pages at max_pages 16,384", pdftest.Shared(14, ""), 16384, 16384, nil, ""},
		{"16,384 pages over max_pages 16,383", pdftest.Shared(14, ""), 16383, 0, nil, meter.ECodeTooManyPages},
		{"1,000 leaves, 999 typed /Pagez", pdftest.Mistyped(1000), 0, 1000,
			[]PageSize{{Box: letter, Pages: 1000}}, ""},
		{"a cycle", pdftest.Cycle(), 0, 0, nil, meter.ECodeUnreadableDocument},
		{"a /Kids reference to null is a page", pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 1 >>", "<< /Type /Page >>", "<< /Type /Pages /Kids 5 0 R >>", "null"), 0, 2,
			[]PageSize{{Box: letter, Pages: 2}}, ""},
		{"a root /Count above the tree", pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1000 >>", "<< /Type /Page >>"), 0, 1000,
			[]PageSize{{Box: letter, Pages: 1}}, ""},
		{"a linearization /N above the tree, as pdfinfo reports", pdftest.Linearized(5000, true), 0, 5000,
			[]PageSize{{Box: letter, Pages: 1}}, ""},
		{"a linearization /N whose /L is not the file's length", pdftest.Linearized(5000, false), 0, 1, nil, ""},
		{"a linearization /N over max_pages", pdftest.Linearized(5000, true), 4999, 0, nil, meter.ECodeTooManyPages},
		{"a root /Count over max_pages", pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1000001 >>", "<< /Type /Page >>"), 1_000_000, 0, nil, meter.ECodeTooManyPages},
	}
	for _, tc := range tests {
		for _, reader := range []struct {
			method string
			pdf    []byte
		}{{MethodScan, tc.pdf}, {MethodPDFCPU, wrongStartxref(tc.pdf)}} {
			t.Run(tc.name+"/"+reader.method, func(t *testing.T) {
				info, err := scanBytes(reader.pdf, PDFLimits{MaxPages: tc.max})
				if tc.code != "" {
					if meter.ErrorCode(err) != tc.code {
						t.Fatalf("err = %v, want %s", err, tc.code)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if info.Pages != tc.pages || info.Method != reader.method {
					t.Errorf("pages = %d by %s, want %d by %s", info.Pages, info.Method, tc.pages, reader.method)
				}
				if tc.sizes != nil && !equalSizes(info.Sizes, tc.sizes) {
					t.Errorf("sizes = %+v, want %+v", info.Sizes, tc.sizes)
				}
			})
		}
	}
}

func equalSizes(a, b []PageSize) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// too_many_pages says how many pages the document has at least, and the
// limit; a cycle is a damaged document.
func TestPageTreeRefusalDetails(t *testing.T) {
	_, err := scanBytes(pdftest.Shared(40, ""), PDFLimits{MaxPages: 100_000})
	var e *meter.Error
	if !errors.As(err, &e) || e.Code != meter.ECodeTooManyPages {
		t.Fatalf("err = %v", err)
	}
	if at := e.Details["pages_at_least"].(int64); at <= 100_000 || e.Details["max_pages"] != int64(100_000) {
		t.Errorf("details = %v", e.Details)
	}
	if !errors.Is(err, pdfscan.ErrTooManyPages) {
		t.Errorf("err = %v does not wrap ErrTooManyPages", err)
	}
	_, err = scanBytes(pdftest.Cycle(), PDFLimits{})
	assertUnreadable(t, err, ReasonDamaged)
	if !errors.Is(err, pdfscan.ErrCycle) {
		t.Errorf("err = %v does not wrap ErrCycle", err)
	}
}

// Measure refuses a document over max_pages before anything else reads it.
func TestMeasureMaxPages(t *testing.T) {
	b, err := Spool(bytes.NewReader(pdftest.Shared(20, "")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Measure(context.Background(), "application/pdf", b, Options{PDF: PDFLimits{MaxPages: 1 << 19}})
	if meter.ErrorCode(err) != meter.ECodeTooManyPages {
		t.Fatalf("err = %v, want too_many_pages", err)
	}
	u, err := Measure(context.Background(), "application/pdf", b, Options{PDF: PDFLimits{MaxPages: 1 << 20}})
	if err != nil || u.Pages != 1<<20 {
		t.Fatalf("pages = %d, err = %v; want 2^20", u.Pages, err)
	}
}

// A walk over 2^40 pages costs its 43 objects.
func BenchmarkScanShared40(b *testing.B) {
	pdf := pdftest.Shared(40, "")
	for b.Loop() {
		if info, err := scanBytes(pdf, PDFLimits{}); err != nil || info.Pages != 1<<40 {
			b.Fatal(info.Pages, err)
		}
	}
}
