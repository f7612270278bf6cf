package pdfscan

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestScanClassicSubsections(t *testing.T) {
	// Objects 1-3 and 10-12: the table has two subsections.
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, "<</Type /Pages /Kids [3 0 R 10 0 R 11 0 R 12 0 R] /Count 4>>")
	for _, n := range []int{3, 10, 11, 12} {
		f.obj(n, "<</Type /Page /Parent 2 0 R>>")
	}
	f.free(0)
	b := f.end(f.table("/Size 13 /Root 1 0 R"))
	if !bytes.Contains(b, []byte("\n10 3\n")) {
		t.Fatalf("want a second subsection:\n%s", b)
	}
	mustScan(t, b, 4)
}

// incremental returns a two-page file and the offset of its table, ready
// for an update.
func incremental() (*file, int64) {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, "<</Type /Pages /Kids [3 0 R 4 0 R] /Count 2>>")
	f.obj(3, "<</Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]>>")
	f.obj(4, "<</Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]>>")
	x := f.table("/Size 5 /Root 1 0 R")
	f.end(x)
	return f, x
}

func TestScanIncrementalUpdates(t *testing.T) {
	t.Run("a page added", func(t *testing.T) {
		f, prev := incremental()
		f.obj(2, "<</Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3>>")
		f.obj(5, "<</Type /Page /Parent 2 0 R>>")
		mustScan(t, f.end(f.table(fmt.Sprintf("/Size 6 /Root 1 0 R /Prev %d", prev))), 3)
	})
	t.Run("an object redefined", func(t *testing.T) {
		f, prev := incremental()
		f.obj(4, "<</Type /Page /Parent 2 0 R /MediaBox [0 0 1224 792]>>")
		info := mustScan(t, f.end(f.table(fmt.Sprintf("/Size 5 /Root 1 0 R /Prev %d", prev))), 2)
		if got := info.Sizes[1].Box.MediaBox; got != [4]float32{0, 0, 1224, 792} {
			t.Errorf("MediaBox = %v, want the update's", got)
		}
	})
	t.Run("a page deleted by a free entry", func(t *testing.T) {
		f, prev := incremental()
		f.free(4) // the kid still refers to it: a dangling kid
		// One page left, but /Count still says 2, as pdfinfo and qpdf
		// report: 2 pages, one of them with no known box.
		info, err := scan(f.end(f.table(fmt.Sprintf("/Size 5 /Root 1 0 R /Prev %d", prev))))
		if err != nil || info.Pages != 2 || sized(info) != 1 {
			t.Fatalf("pages = %d (%d with a box), err = %v; want 2 (1)", info.Pages, sized(info), err)
		}
	})
	t.Run("a /Prev loop", func(t *testing.T) {
		// The base's /Prev points at the update, which points at the base.
		f := newFile()
		f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
		f.obj(2, "<</Type /Pages /Kids [3 0 R] /Count 1>>")
		f.obj(3, "<</Type /Page /Parent 2 0 R>>")
		base := f.table("/Size 4 /Root 1 0 R /Prev 0000000000")
		f.end(base)
		f.obj(2, "<</Type /Pages /Kids [3 0 R 4 0 R] /Count 2>>")
		f.obj(4, "<</Type /Page /Parent 2 0 R>>")
		update := f.table(fmt.Sprintf("/Size 5 /Root 1 0 R /Prev %d", base))
		b := f.end(update)
		b = bytes.Replace(b, []byte("/Prev 0000000000"), fmt.Appendf(nil, "/Prev %010d", update), 1)
		mustScan(t, b, 2)
	})
	t.Run("an xref stream update over a table", func(t *testing.T) {
		f, prev := incremental()
		f.obj(2, "<</Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3>>")
		f.obj(5, "<</Type /Page /Parent 2 0 R>>")
		mustScan(t, f.end(f.xrefStream(6, fmt.Sprintf("/Size 7 /Root 1 0 R /Prev %d", prev), true, false)), 3)
	})
}

// objStmFile puts n pages (and the catalog and root) in an object stream,
// with an xref stream.
func objStmFile(n int, predict bool, pad int) []byte {
	f := newFile()
	bodies := []string{"<</Type /Catalog /Pages 2 0 R>>", fmt.Sprintf("<</Type /Pages /Kids %s /Count %d>>", kids(3, n), n)}
	for range n {
		bodies = append(bodies, "<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]>>")
	}
	f.objStm(n+3, 1, "", pad, bodies...)
	return f.end(f.xrefStream(n+4, fmt.Sprintf("/Size %d /Root 1 0 R", n+5), predict, false))
}

func TestScanXRefStreams(t *testing.T) {
	mustScan(t, objStmFile(5, false, 0), 5)
	mustScan(t, objStmFile(300, true, 0), 300)
}

func TestScanObjectStreamsAcrossStreams(t *testing.T) {
	// Pages spread over 40 object streams, more than the cache holds when
	// it is small: each stream is decoded again when needed.
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, fmt.Sprintf("<</Type /Pages /Kids %s>>", kids(100, 400)))
	for s := range 40 {
		bodies := make([]string, 10)
		for i := range bodies {
			bodies[i] = "<</Type /Page /Parent 2 0 R>>"
		}
		f.objStm(10+s, 100+10*s, "", 0, bodies...)
	}
	b := f.end(f.xrefStream(3, "/Size 500 /Root 1 0 R", true, false))
	mustScan(t, b, 400)
}

func TestScanHybrid(t *testing.T) {
	// A PDF 1.4 reader sees the table, where pages 5 and 6 are missing; a
	// PDF 1.5 reader finds them in the /XRefStm.
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, "<</Type /Pages /Kids [3 0 R 4 0 R 5 0 R 6 0 R] /Count 4>>")
	f.obj(3, "<</Type /Page /Parent 2 0 R>>")
	f.obj(4, "<</Type /Page /Parent 2 0 R>>")
	f.objStm(7, 5, "", 0, "<</Type /Page /Parent 2 0 R>>", "<</Type /Page /Parent 2 0 R>>")
	xs := f.xrefStream(8, "/Size 9", false, true)
	f.free(5) // the table marks the hidden objects free
	f.free(6)
	mustScan(t, f.end(f.table(fmt.Sprintf("/Size 9 /Root 1 0 R /XRefStm %d", xs))), 4)
}

func TestScanStreamLengths(t *testing.T) {
	t.Run("indirect /Length", func(t *testing.T) {
		f := newFile()
		f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
		f.obj(2, "<</Type /Pages /Kids [3 0 R]>>")
		f.objStm(4, 3, "", 0, "<</Type /Page>>")
		// Replace the object stream's direct /Length by object 5.
		b := bytes.Clone(f.buf.Bytes())
		i := bytes.LastIndex(b, []byte("/Length ")) + len("/Length ")
		length := string(bytes.TrimSuffix(bytes.Fields(b[i:])[0], []byte(">>")))
		b = bytes.Replace(b, []byte("/Length "+length+">>"), []byte("/Length 5 0 R>>"), 1)
		off := f.pending[4].a
		f.buf.Reset()
		f.buf.Write(b)
		f.pending[4] = entry{1, off, 0}
		f.obj(5, length)
		mustScan(t, f.end(f.xrefStream(6, "/Size 7 /Root 1 0 R", false, false)), 1)
	})
	t.Run("wrong /Length, found by endstream", func(t *testing.T) {
		b := objStmFile(3, true, 0)
		b = bytes.Replace(b, []byte("/FlateDecode /Length "), []byte("/FlateDecode /Length 1"), 1) // 10x longer
		b = fixStartxref(b)
		mustScan(t, b, 3)
	})
}

// fixStartxref rewrites startxref to the last xref stream, after edits
// that moved it.
func fixStartxref(b []byte) []byte {
	i := bytes.LastIndex(b, []byte("/Type /XRef"))
	obj := bytes.LastIndex(b[:i], []byte(" 0 obj"))
	start := bytes.LastIndexByte(b[:obj], '\n') + 1
	s := bytes.LastIndex(b, []byte("startxref"))
	return fmt.Appendf(b[:s:s], "startxref\n%d\n%%%%EOF\n", start)
}

func TestScanErrors(t *testing.T) {
	valid := simple(3)
	wrongStart := bytes.Replace(valid, []byte("startxref\n"), []byte("startxref\n1"), 1)
	encrypted := bytes.Replace(valid, []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt 9 0 R"), 1)
	lzw := bytes.Replace(objStmFile(3, false, 0), []byte("/Filter /FlateDecode"), []byte("/Filter   /LZWDecode"), 1)
	lzw = fixStartxref(lzw)
	tiff := bytes.Replace(objStmFile(3, true, 0), []byte("/Predictor 12"), []byte("/Predictor 2 "), 1)
	tests := []struct {
		name string
		pdf  []byte
		want error
	}{
		{"startxref points nowhere", wrongStart, ErrDamaged},
		{"no startxref", valid[:len(valid)-30], ErrDamaged},
		{"not a PDF", []byte("hello, world"), ErrDamaged},
		{"encrypted", encrypted, ErrEncrypted},
		{"unsupported filter", lzw, ErrDamaged},
		{"unsupported predictor", tiff, ErrDamaged},
		{"object stream flate bomb", objStmFile(2, false, 4<<20), ErrLimit},
		{"xref stream flate bomb", xrefBomb(), ErrLimit},
		{"object number over MaxObjects", bytes.Replace(valid, []byte("xref\n1 "), []byte("xref\n2000000 "), 1), ErrLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scan(tc.pdf)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// xrefBomb is a file whose xref stream inflates to 8 MiB.
func xrefBomb() []byte {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	z := deflate(make([]byte, 8<<20))
	off := f.buf.Len()
	fmt.Fprintf(&f.buf, "3 0 obj\n<</Type /XRef /W [1 4 2] /Size 1000000 /Root 1 0 R /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream\nendobj\n", len(z), z)
	return f.end(int64(off))
}

// unpredict undoes each PNG filter, as a reference encoder writes them.
func TestUnpredict(t *testing.T) {
	const columns, bpp = 7, 1
	r := rand.New(rand.NewPCG(3, 4))
	raw := make([]byte, 40*columns)
	for i := range raw {
		raw[i] = byte(r.IntN(256))
		if i%3 == 0 {
			raw[i] = byte(i / columns) // rows that look alike, as xref rows do
		}
	}
	var enc []byte
	prev := make([]byte, columns)
	for n := 0; n*columns < len(raw); n++ {
		cur := raw[n*columns : (n+1)*columns]
		tag := byte(n % 5)
		enc = append(enc, tag)
		for i, c := range cur {
			var left, upLeft byte
			if i >= bpp {
				left, upLeft = cur[i-bpp], prev[i-bpp]
			}
			switch tag {
			case 1:
				c -= left
			case 2:
				c -= prev[i]
			case 3:
				c -= byte((int(left) + int(prev[i])) / 2)
			case 4:
				c -= paeth(left, prev[i], upLeft)
			}
			enc = append(enc, c)
		}
		prev = cur
	}
	var d doc
	got, err := d.unpredict(enc, Dict{"Predictor": int64(15), "Columns": int64(columns)})
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("unpredict: err %v, equal %v", err, bytes.Equal(got, raw))
	}
	bad := append([]byte{5}, make([]byte, columns)...)
	if _, err := d.unpredict(bad, Dict{"Predictor": int64(12), "Columns": int64(columns)}); !errors.Is(err, ErrDamaged) {
		t.Errorf("tag 5: err = %v", err)
	}
}
