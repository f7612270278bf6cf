package usage

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// xrefStreamBomb is a file whose xref stream inflates to 8 MiB of zeros.
func xrefStreamBomb() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n1 0 obj\n<</Type /Catalog /Pages 2 0 R>>\nendobj\n")
	z := flate(make([]byte, 8<<20))
	off := b.Len()
	fmt.Fprintf(&b, "3 0 obj\n<</Type /XRef /W [1 4 2] /Size 1000000 /Root 1 0 R /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream\nendobj\n", len(z), z)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", off)
	return b.Bytes()
}

// wrongStartxref moves startxref 7 bytes off the table.
func wrongStartxref(pdf []byte) []byte {
	i := bytes.LastIndex(pdf, []byte("startxref\n")) + len("startxref\n")
	var off int
	fmt.Sscan(string(pdf[i:]), &off)
	return fmt.Appendf(bytes.Clone(pdf[:i]), "%d\n%%%%EOF\n", off+7)
}

func scanBytes(b []byte, lim PDFLimits) (PDFInfo, error) {
	return ScanPDF(context.Background(), bytes.NewReader(b), int64(len(b)), lim)
}

// Well-formed documents are read by the lazy scanner; pdfcpu runs for the
// encrypted ones and those whose xref needs repair.
func TestScanPDFMethod(t *testing.T) {
	tests := []struct {
		name   string
		pdf    []byte
		pages  int
		method string
	}{
		{"quartz.pdf", readTestdata(t, "quartz.pdf"), 1, MethodScan},
		{"pdftex.pdf", readTestdata(t, "pdftex.pdf"), 4, MethodScan},
		{"skia.pdf", readTestdata(t, "skia.pdf"), 64, MethodScan},
		{"cairo.pdf", readTestdata(t, "cairo.pdf"), 8, MethodScan},
		{"objstm.pdf", readTestdata(t, "objstm.pdf"), 8, MethodScan},
		{"pdfcpu writer", pdfcpuDoc(t, 7), 7, MethodScan},
		{"encrypted AES-256", readTestdata(t, "encrypted-owner.pdf"), 8, MethodPDFCPU},
		{"encrypted RC4", readTestdata(t, "encrypted-owner-rc4.pdf"), 1, MethodPDFCPU},
		{"wrong startxref", wrongStartxref(readTestdata(t, "cairo.pdf")), 8, MethodPDFCPU},
		{"junk before the header shifts offsets", append([]byte("junk\n"), newDoc(3, 10).bytes(1)...), 3, MethodPDFCPU},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := scanBytes(tc.pdf, PDFLimits{})
			if err != nil {
				t.Fatalf("ScanPDF: %v", err)
			}
			if info.Pages != tc.pages || sized(info.Sizes) != tc.pages || info.Method != tc.method {
				t.Errorf("pages = %d (%d with a box) by %s, want %d by %s", info.Pages, sized(info.Sizes), info.Method, tc.pages, tc.method)
			}
		})
	}
}

// Both readers find the same boxes.
func TestScanPDFBoxesAgreeWithFallback(t *testing.T) {
	for _, tc := range realPDFs {
		b := readTestdata(t, tc.file)
		info, err := scanBytes(b, PDFLimits{})
		if err != nil {
			t.Fatal(err)
		}
		_, boxes, err := countPages(context.Background(), bytes.NewReader(b), int64(len(b)), PDFLimits{}.withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(boxes) != fmt.Sprint(info.Sizes) {
			t.Errorf("%s: scan boxes %v, pdfcpu boxes %v", tc.file, info.Sizes, boxes)
		}
	}
}

// The fallback keeps its guard against lying stream lengths, which the
// lazy scanner does not need.
func TestPDFCPUStreamLengthGuards(t *testing.T) {
	tests := []struct {
		name   string
		pdf    []byte
		reason string
	}{
		{"stream /Length beyond the file", lyingLength(50, "2000000000"), ReasonDamaged},
		{"allocation bomb: direct /Length", lyingLength(20000, "1000000"), ReasonTooLarge},
		{"allocation bomb: indirect /Length", lyingLength(20000, "5 0 R"), ReasonTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := countPages(context.Background(), bytes.NewReader(tc.pdf), int64(len(tc.pdf)), PDFLimits{}.withDefaults())
			assertUnreadable(t, toMeterError(err), tc.reason)
		})
	}
}

// Cutting real documents anywhere never panics or hangs, and never finds
// more pages than the whole document has.
func TestScanPDFTruncated(t *testing.T) {
	for _, tc := range realPDFs[:5] {
		pdf := readTestdata(t, tc.file)
		for i := 1; i <= 50; i++ {
			n := len(pdf) * i / 51
			start := time.Now()
			info, err := scanBytes(pdf[:n], PDFLimits{Timeout: 5 * time.Second})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s cut at %d: took %v", tc.file, n, d)
			}
			if err != nil {
				if meter.ErrorCode(err) != meter.ECodeUnreadableDocument {
					t.Fatalf("%s cut at %d: err = %v", tc.file, n, err)
				}
				continue
			}
			if info.Pages < 1 || info.Pages > tc.pages {
				t.Errorf("%s cut at %d: %d pages, want 1 to %d", tc.file, n, info.Pages, tc.pages)
			}
		}
	}
}

// BenchmarkScanPDF scans a 15,000-page document with a 10 KB content
// stream per page (about 160 MB), of which it reads well under 1%.
func BenchmarkScanPDF(b *testing.B) {
	pdf := newDoc(15_000, 10_000).bytes(1)
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		info, err := scanBytes(pdf, PDFLimits{})
		if err != nil || info.Pages != 15_000 || info.Method != MethodScan {
			b.Fatalf("pages = %d by %s, err = %v", info.Pages, info.Method, err)
		}
	}
}

// sized is the number of pages with a known box.
func sized(sizes []PageSize) int {
	n := 0
	for _, s := range sizes {
		n += s.Pages
	}
	return n
}

// BenchmarkScanPDFOnePage scans the one-page document of bench/gateway.sh
// (bench/mkpdf -pages 1, 459 bytes): the page count of a typical metered
// request, all of whose cost is fixed overhead.
func BenchmarkScanPDFOnePage(b *testing.B) {
	pdf := pdftest.Pages(1)
	b.ReportAllocs()
	for b.Loop() {
		info, err := scanBytes(pdf, PDFLimits{})
		if err != nil || info.Pages != 1 {
			b.Fatalf("pages = %d, err = %v", info.Pages, err)
		}
	}
}
