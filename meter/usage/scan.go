package usage

import (
	"context"
	"errors"
	"io"

	"github.com/creditgate/creditgate/meter/usage/pdfscan"
)

// PageBox is the geometry of one page: MediaBox, CropBox (clipped to the
// MediaBox) and Rotate, inherited from the page tree as readers do. Its
// Size method gives the displayed size in points, for page classes.
type PageBox = pdfscan.PageBox

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
	Pages  int
	Boxes  []PageBox // one per page, in document order
	Method string    // MethodScan or MethodPDFCPU
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
func scanPDF(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits) (PDFInfo, error) {
	info, err := pdfscan.Scan(ctx, r, size, pdfscan.Limits{
		MaxStreamBytes: min(lim.MaxStreamBytes, size),
		MaxDecodeBytes: lim.MaxDecodeBytes,
		MaxObjects:     lim.MaxObjects,
		MaxDepth:       lim.MaxDepth,
	})
	var re *pdfscan.ReadError
	switch {
	case err == nil:
		return PDFInfo{Pages: info.Pages, Boxes: info.Boxes, Method: MethodScan}, nil
	case ctx.Err() != nil:
		return PDFInfo{}, ctx.Err()
	case errors.As(err, &re):
		return PDFInfo{}, &readError{re.Err}
	case errors.Is(err, pdfscan.ErrLimit):
		return PDFInfo{}, unreadable(ReasonTooLarge, "%w", err)
	}
	n, boxes, err := countPages(ctx, io.NewSectionReader(r, 0, size), size, lim)
	if err != nil {
		return PDFInfo{}, err
	}
	return PDFInfo{Pages: n, Boxes: boxes, Method: MethodPDFCPU}, nil
}
