package usage

// Content classification: the bytes decide what a file is, never its
// declared type or name, which are at most hints that add a reading.
//
// Where PDF readers find a PDF, measured with poppler 22.12 (pdfinfo),
// qpdf 11.3 and mupdf 1.21 (mutool info) on a 100-page PDF:
//   - after 500, 1,019, 1,100, 4,096, 100,000 and 1,000,000 bytes of junk
//     (text or random): all three read 100 pages; so does the PDF after a
//     PNG signature and with 100 KB of junk after its end. No reader stops
//     at 1,024 bytes, whatever the specification says.
//   - with "%PDF-" overwritten, or its first line cut: all three read 100
//     pages (they rebuild the cross-reference table from "N G obj").
//   - with no header, no xref table and no trailer: mupdf alone reads it
//     (100 pages), from its /Catalog object.
//
// On real files (testdata) after random junk the readers disagree (qpdf
// often fails; mupdf reads them all): TestJunkCountsAsReaders checks that
// the gateway counts at least what each reader that reads them counts.
//
// So "%PDF-" is looked for in the whole file, not in its first KB, and a
// file without it that has a PDF's structure (startxref, /Catalog) is read
// as a PDF too.

import (
	"bytes"
	"io"
	"strings"
)

var (
	markPDF       = []byte("%PDF-")
	markStartXRef = []byte("startxref")
	markCatalog   = []byte("/Catalog")
)

// keepLen bytes (the longest mark's length less one) are kept between
// writes, to find marks that span two of them.
const keepLen = len("startxref") - 1

// markScan is an io.Writer that finds PDF marks in what is written to it,
// in one pass, so a body is scanned while it is spooled.
type markScan struct {
	n         int64 // bytes written so far
	pdfAt     int64 // offset of the first "%PDF-", -1 if none
	structure bool  // "startxref" or "/Catalog" seen
	keep      [keepLen]byte
	kept      int
}

func newMarkScan() *markScan { return &markScan{pdfAt: -1} }

func (s *markScan) Write(p []byte) (int, error) {
	if s.pdfAt >= 0 || len(p) == 0 {
		s.n += int64(len(p))
		return len(p), nil
	}
	// Marks across the previous write and this one.
	if s.kept > 0 {
		var buf [2 * keepLen]byte
		j := copy(buf[:], s.keep[:s.kept])
		j += copy(buf[j:], p[:min(len(p), keepLen)])
		s.find(buf[:j], s.n-int64(s.kept))
	}
	if s.pdfAt < 0 {
		s.find(p, s.n)
	}
	s.n += int64(len(p))
	if len(p) >= keepLen {
		s.kept = copy(s.keep[:], p[len(p)-keepLen:])
	} else {
		// Shift what is kept left to make room for p.
		all := append(s.keep[:s.kept:s.kept], p...)
		s.kept = copy(s.keep[:], all[max(0, len(all)-keepLen):])
	}
	return len(p), nil
}

// find looks for the marks in b, which starts at offset off.
func (s *markScan) find(b []byte, off int64) {
	if i := bytes.Index(b, markPDF); i >= 0 && (s.pdfAt < 0 || off+int64(i) < s.pdfAt) {
		s.pdfAt = off + int64(i)
		return // "%PDF-" decides: the structure marks are not needed
	}
	if !s.structure && (bytes.Contains(b, markStartXRef) || bytes.Contains(b, markCatalog)) {
		s.structure = true
	}
}

// scanMarks scans size bytes of r (in pieces of 64 KB).
func scanMarks(r io.ReaderAt, size int64) (*markScan, error) {
	s := newMarkScan()
	buf := getBuf(64 << 10)
	buf = buf[:cap(buf)]
	defer putBuf(buf)
	for off := int64(0); off < size && s.pdfAt < 0; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		s.Write(buf[:n])
		off += int64(n)
		if err != nil && err != io.EOF {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	return s, nil
}

// Image signatures, at offset 0. An image counts one page.
var imageMagic = []struct {
	off   int
	magic string
}{
	{0, "\x89PNG\r\n\x1a\n"},
	{0, "\xff\xd8\xff"}, // JPEG
	{0, "GIF87a"},
	{0, "GIF89a"},
	{0, "II*\x00"}, // TIFF, little endian
	{0, "MM\x00*"}, // TIFF, big endian
	{0, "II+\x00"}, // BigTIFF
	{0, "MM\x00+"},
	{8, "WEBP"},                           // after "RIFF" and a size
	{0, "\x00\x00\x00\x0cjP  \r\n\x87\n"}, // JPEG 2000
	{0, "\xff\x4f\xff\x51"},               // JPEG 2000 codestream
	{4, "ftypheic"}, {4, "ftypheix"}, {4, "ftypavif"}, {4, "ftypmif1"},
}

// isImage reports whether head, a file's first bytes, starts with the
// signature of an image format.
func isImage(head []byte) bool {
	for _, m := range imageMagic {
		if len(head) >= m.off+len(m.magic) && string(head[m.off:m.off+len(m.magic)]) == m.magic {
			if m.off == 8 && string(head[:4]) != "RIFF" {
				continue
			}
			return true
		}
	}
	// BMP: "BM", reserved zeros, and a known DIB header size; "BM" alone
	// starts too many other things.
	if len(head) >= 16 && string(head[:2]) == "BM" && string(head[6:10]) == "\x00\x00\x00\x00" && head[15] == 0 {
		switch head[14] {
		case 12, 40, 52, 56, 64, 108, 124:
			return true
		}
	}
	return false
}

// readHead returns the first bytes of r, enough for every signature.
func readHead(r io.ReaderAt, size int64) ([]byte, error) {
	b := make([]byte, min(size, 18))
	n, err := r.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// verdict is what the content of a file says it is.
type verdict struct {
	kind string
	// pdfAt is where reading a PDF starts: the first "%PDF-" (readers
	// read from there when the junk before it shifts the offsets); the
	// whole file is read when that fails.
	pdfAt int64
	// strict: a PDF that cannot be read is an unreadable_document
	// error. Otherwise (a file that only looks like a PDF by its
	// structure) it is classified as if it were not a PDF.
	strict bool
	// otherwise is the kind of a non-strict PDF that cannot be read.
	otherwise string
}

// decide classifies a file from its marks, its first bytes and, as hints
// that can only add a reading, its declared media type and name.
//
// "%PDF-" anywhere is read as a PDF, strictly: an image that carries a PDF
// after its signature is a PDF to readers, and a failure to read it must
// not make it cheaper. Then the structure marks (tried as a PDF), an image
// signature, a declared PDF (strictly: a damaged upload is 422, as
// before), an image/* type; anything else is other.
func decide(s *markScan, head []byte, mediaType, name string) verdict {
	image := isImage(head)
	other := KindOther
	if image || strings.HasPrefix(mediaType, "image/") {
		other = KindImage
	}
	declaredPDF := isPDFType(mediaType) || strings.HasSuffix(strings.ToLower(name), ".pdf")
	switch {
	case s.pdfAt >= 0:
		return verdict{kind: KindPDF, pdfAt: s.pdfAt, strict: true}
	case s.structure:
		return verdict{kind: KindPDF, strict: declaredPDF && !image, otherwise: other}
	case image:
		return verdict{kind: KindImage}
	case declaredPDF:
		return verdict{kind: KindPDF, strict: true}
	}
	return verdict{kind: other}
}
