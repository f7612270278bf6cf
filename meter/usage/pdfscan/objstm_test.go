package pdfscan

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// qpdfLike returns a document laid out as qpdf --object-streams=generate
// writes a merge: catalog 1, one /Pages node 2 with every page, and per
// page a page dictionary followed by perPage other objects (fonts,
// annotations), all in object streams of 100 objects; the content streams
// are not written (the scanner never reads them).
func qpdfLike(pages, perPage int) []byte {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	first := 10
	var pageNums []int
	var bodies []string
	for p := range pages {
		pageNums = append(pageNums, first+len(bodies))
		bodies = append(bodies, fmt.Sprintf("<< /BleedBox [ 0 0 595.275 841.889 ] /Contents %d 0 R /CropBox [ 0 0 595.275 841.889 ] "+
			"/MediaBox [ 0 0 595.275 841.889 ] /Parent 2 0 R /Resources << /ColorSpace << /DefaultRGB 5 0 R >> "+
			"/Font << /F%d %d 0 R /F5 13 0 R /F9 16 0 R >> /ProcSet [ /PDF /ImageB /ImageC /Text ] /XObject << >> >> "+
			"/Annots [ %d 0 R %d 0 R ] /TrimBox [ 0 0 595.275 841.889 ] /Type /Page >>", 900000+p, p%40, 7+p%9, 800000+p, 810000+p))
		for k := range perPage {
			bodies = append(bodies, fmt.Sprintf("<< /Type /Annot /Subtype /Link /Border [ 0 0 0 ] /H /I /C [ 1 0 0 ] "+
				"/Rect [ %d.%03d %d.%03d %d.%03d %d.%03d ] /A << /S /GoTo /D (page.%d.%d) >> >>",
				70+p%400, k*37%1000, 500+k, p%1000, 120+k*3, (p*7)%1000, 510+k, k*13%1000, p, k))
		}
	}
	refs := ""
	for _, n := range pageNums {
		refs += fmt.Sprintf("%d 0 R ", n)
	}
	f.obj(2, fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", refs, pages))
	stm := first + len(bodies)
	for i := 0; i < len(bodies); i += 100 {
		f.objStm(stm, first+i, "", 0, bodies[i:min(i+100, len(bodies))]...)
		stm++
	}
	return f.end(f.xrefStream(stm, fmt.Sprintf("/Size %d /Root 1 0 R", stm+1), true, false))
}

// BenchmarkScanObjectStreams scans 2,000 pages in object streams, laid out
// as qpdf writes them: what bench/pages.sh's S-objstm measures, without
// the file.
func BenchmarkScanObjectStreams(b *testing.B) {
	pdf := qpdfLike(2000, 5)
	lim := Limits{MaxStreamBytes: 256 << 20, MaxDecodeBytes: 64 << 20, MaxObjects: 2_000_000, MaxDepth: 64}
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		info, err := Scan(context.Background(), bytes.NewReader(pdf), int64(len(pdf)), lim)
		if err != nil || info.Pages != 2000 {
			b.Fatalf("pages = %d, err = %v", info.Pages, err)
		}
	}
}

// BenchmarkScanFile scans the file PDFSCAN_FILE names (skipped without).
func BenchmarkScanFile(b *testing.B) {
	name := os.Getenv("PDFSCAN_FILE")
	if name == "" {
		b.Skip("PDFSCAN_FILE not set")
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	lim := Limits{MaxStreamBytes: 256 << 20, MaxDecodeBytes: 64 << 20, MaxObjects: 2_000_000, MaxDepth: 64}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(context.Background(), f, fi.Size(), lim); err != nil {
			b.Fatal(err)
		}
	}
}
