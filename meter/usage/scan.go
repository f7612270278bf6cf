package usage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage/pdfscan"
)

// PageBox is the geometry of one page: MediaBox, CropBox (clipped to the
// MediaBox) and Rotate, inherited from the page tree as readers do. Its
// Size method gives the displayed size in points, for page classes.
type PageBox = pdfscan.PageBox

// PageSize is a page box and how many pages of a document have it: a
// document that repeats its pages 2^40 times has a few of these, not 2^40
// boxes.
type PageSize = pdfscan.PageSize

// How a PDF was read, in PDFInfo.Method.
const (
	// MethodScan is the lazy scanner (package pdfscan): it reads the
	// cross-reference data and the page tree only, in memory that depends
	// on the number of pages, not on the file's size.
	MethodScan = "scan"
	// MethodPDFCPU is the fallback: pdfcpu reads the whole document into
	// memory, repairing broken cross-references and decrypting.
	MethodPDFCPU = "pdfcpu"
)

// PDFInfo is what reading a PDF found.
type PDFInfo struct {
	Pages int
	// Sizes are the distinct page boxes, in order of first occurrence,
	// with their pages; they sum to Pages, or less when the root's /Count
	// says more pages than the tree has (those have no known box).
	Sizes  []PageSize
	Method string // MethodScan or MethodPDFCPU
}

// scanPDF reads the document with the lazy scanner and falls back to pdfcpu
// when the scanner cannot read it but pdfcpu may:
//   - the document is encrypted (/Encrypt in a trailer);
//   - the cross-reference data is missing or broken (no startxref, an
//     offset that does not point at "N G obj"), which pdfcpu repairs;
//   - a stream the scanner must decode uses a filter or predictor it does
//     not support, or any other damage the scanner found.
//
// A scanner limit (ErrLimit: a flate bomb, a page tree too deep, too many
// objects) is final: the document is built to exhaust readers, and pdfcpu
// would only spend more memory on it. So are a cancelled context and a
// failure of r itself.
//
// g holds the scanner's share of the memory budget; it is exchanged for
// the fallback's, which is much larger, before pdfcpu runs.
func scanPDF(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, g *grant) (PDFInfo, error) {
	info, err, final := scanLazy(ctx, r, size, lim, g)
	if final {
		return info, err
	}
	return scanFallback(ctx, r, size, lim, g)
}

// scanLazy is scanPDF's first reader, the lazy scanner; final is false
// when the fallback should read the document instead.
func scanLazy(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, g *grant) (_ PDFInfo, _ error, final bool) {
	info, err := pdfscan.Scan(ctx, r, size, pdfscan.Limits{
		MaxStreamBytes: min(lim.MaxStreamBytes, size),
		MaxDecodeBytes: lim.MaxDecodeBytes,
		MaxObjects:     lim.MaxObjects,
		MaxDepth:       lim.MaxDepth,
		MaxPages:       lim.MaxPages,
		// Decoding past the scanner's allowance draws from the budget too:
		// a flate bomb in an object stream waits for its memory, then is
		// refused (server_busy), instead of exhausting it.
		Grow: func(n int64) error { return g.add(ctx, n) },
	})
	if err == nil {
		return PDFInfo{Pages: info.Pages, Sizes: info.Sizes, Method: MethodScan}, nil, true
	}
	var re *pdfscan.ReadError // on the heap (errors.As): not on every scan
	switch {
	case ctx.Err() != nil:
		return PDFInfo{}, ctx.Err(), true
	case errors.As(err, &re):
		return PDFInfo{}, &readError{re.Err}, true
	case errors.Is(err, pdfscan.ErrMemory):
		return PDFInfo{}, err, true // server_busy, or too_large past the whole budget
	case errors.Is(err, pdfscan.ErrLimit), errors.Is(err, pdfscan.ErrCycle),
		errors.Is(err, pdfscan.ErrTooManyPages):
		// Final: the page tree is what it is, pdfcpu would read the same.
		return PDFInfo{}, walkError(err), true
	}
	return PDFInfo{}, nil, false
}

// scanFallback reads the document with pdfcpu, after the lazy scanner
// could not.
func scanFallback(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, g *grant) (PDFInfo, error) {
	// The scanner's memory is garbage now. Giving its share back before
	// waiting for the fallback's means no document holds memory while it
	// waits for more, so two fallbacks cannot block each other.
	g.release()
	if err := g.grow(ctx, fallbackNeed(size)+2*fallbackDecode(size, lim)); err != nil {
		return PDFInfo{}, err
	}
	n, sizes, err := countPages(ctx, io.NewSectionReader(r, 0, size), size, lim)
	if err != nil {
		return PDFInfo{}, err
	}
	return PDFInfo{Pages: n, Sizes: sizes, Method: MethodPDFCPU}, nil
}

// walkError is the error of a page tree walk that failed on the tree.
func walkError(err error) error {
	var tm *pdfscan.TooManyPages
	switch {
	case errors.As(err, &tm):
		return &meter.Error{
			Code:    meter.ECodeTooManyPages,
			Message: fmt.Sprintf("the document has more than %d pages, the most this route accepts", tm.Max),
			Details: map[string]any{"pages_at_least": tm.Pages, "max_pages": tm.Max},
			Err:     err,
		}
	case errors.Is(err, pdfscan.ErrLimit):
		return unreadable(ReasonTooLarge, "%w", err)
	case errors.Is(err, pdfscan.ErrCycle):
		return unreadable(ReasonDamaged, "%w", err)
	}
	return err
}

// Memory needs, for Budget: peaks of the Go heap, GC headroom included,
// measured with internal/cmd/countpages on documents merged with qpdf from
// real ones (GODEBUG=gctrace=1, and RSS with bench/pages.sh), with margin.
//
// The scanner's memory grows with the number of objects (16 bytes each in
// the xref table) and pages (a box, a visited mark), not with the file's
// bytes; the size is the only hint before reading, and real files have
// 1,000 to 2,000 objects per MB. Its heap peaked at 6 MB on 19 MB (2,137
// pages), 23 MB on 186 MB (14,751 pages, object streams) and 28 MB on
// 484 MB (29,502 pages). Its limits cap what a hostile file can make it
// use (a 4 MB object-stream cache, up to 4 MB of object streams decoded
// ahead of the page walk by a second goroutine; PDFLimits bound the rest).
//
// pdfcpu holds the whole file, a copy of every stream and a Go object per
// PDF object: its heap peaked at 4 times the file (19 MB), 7 times (70 MB,
// classic xref) and 4.4 times (56 MB, object streams); RSS grew by up to
// 7.7 times alone, 9 times in the gateway (bench/memory.sh ENCRYPT=1).
func scanNeed(size int64) int64 { return 8<<20 + min(size/8, 40<<20) }

func fallbackNeed(size int64) int64 { return 16<<20 + 9*size }

// fallbackDecode is the most one stream may decode to in pdfcpu (object
// and xref streams, one at a time): real ones decode to 5 to 20 times
// their size, a fraction of the file. A flate or LZW bomb that only the
// fallback reads (encrypted, or with a broken xref) stops there, and the
// fallback's grant covers it twice (the buffer and its regrowth).
func fallbackDecode(size int64, lim PDFLimits) int64 {
	return min(lim.MaxDecodeBytes, 4<<20+4*size)
}
