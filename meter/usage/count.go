package usage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/creditgate/creditgate/internal/clockctx"
	"github.com/creditgate/creditgate/meter"
)

// PDFLimits bound the work of reading one PDF. Zero fields take defaults.
type PDFLimits struct {
	// Timeout bounds the reading of one PDF; ctx's deadline applies too.
	// Default 10 s.
	Timeout time.Duration
	// MaxStreamBytes is the largest encoded stream read, in bytes; it is
	// also capped at the document's size. Default 256 MiB.
	MaxStreamBytes int64
	// MaxDecodeBytes is the most bytes one stream may decode to (object
	// and xref streams, the only ones decoded). Default 64 MiB.
	MaxDecodeBytes int64
	// MaxObjects is the most objects a document may declare. Default 2M.
	MaxObjects int
	// MaxDepth is the deepest page tree accepted. Default 64: real trees
	// are balanced and rarely deeper than 6.
	MaxDepth int
	// MaxPages is the most pages one document may have: past it, reading
	// stops as soon as it knows, with too_many_pages. 0: no limit (the
	// gateway sets its max_pages, default 100,000).
	MaxPages int64
}

const (
	defaultPDFTimeout     = 10 * time.Second
	defaultMaxStreamBytes = 256 << 20
	defaultMaxDecodeBytes = 64 << 20
	defaultMaxObjects     = 2_000_000
	defaultMaxDepth       = 64
)

func (l PDFLimits) withDefaults() PDFLimits {
	if l.Timeout <= 0 {
		l.Timeout = defaultPDFTimeout
	}
	if l.MaxStreamBytes <= 0 {
		l.MaxStreamBytes = defaultMaxStreamBytes
	}
	if l.MaxDecodeBytes <= 0 {
		l.MaxDecodeBytes = defaultMaxDecodeBytes
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = defaultMaxObjects
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	return l
}

// Reasons given in the "reason" detail of an unreadable_document error.
const (
	ReasonDamaged   = "damaged"   // not a PDF, truncated, broken page tree...
	ReasonEncrypted = "encrypted" // needs a password we do not have
	ReasonTimeout   = "timeout"   // took longer than allowed
	ReasonTooLarge  = "too_large" // over a PDFLimits bound
)

// errUnreadable is the cause behind an unreadable_document error; its reason
// picks the client message.
type errUnreadable struct {
	reason string
	err    error
}

func (e *errUnreadable) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errUnreadable) Unwrap() error { return e.err }

func unreadable(reason string, format string, args ...any) error {
	return &errUnreadable{reason: reason, err: fmt.Errorf(format, args...)}
}

var messages = map[string]string{
	ReasonDamaged:   "the PDF could not be read: it is damaged or not a PDF",
	ReasonEncrypted: "the PDF is password-protected; remove the password and retry",
	ReasonTimeout:   "the PDF took too long to read",
	ReasonTooLarge:  "the PDF is too complex to read",
}

// CountPDFPages returns the number of pages of the PDF of size bytes read
// from r; it is ScanPDF without the boxes. r is read through its ReadAt
// method when it has one (files, bytes.Reader, io.SectionReader), else
// through Seek and Read.
func CountPDFPages(ctx context.Context, r io.ReadSeeker, size int64, lim PDFLimits) (int, error) {
	ra, ok := r.(io.ReaderAt)
	if !ok {
		ra = &seekReaderAt{rs: r}
	}
	info, err := ScanPDF(ctx, ra, size, lim)
	return info.Pages, err
}

// ScanPDF returns the number of pages of the PDF of size bytes read from r,
// and the box of each page. It never trusts /Count: it walks the page tree
// and counts the leaves it can reach. A PDF that cannot be read is an
// unreadable_document *meter.Error with a "reason" detail. It never panics
// and returns by lim.Timeout or ctx's deadline; on a timeout, the reading
// goroutine may still use r until it notices the cancellation at its next
// read, so r must not be reused. scan.go says how the document is read.
func ScanPDF(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits) (PDFInfo, error) {
	return readPDF(ctx, r, size, lim, nil)
}

// readPDF is ScanPDF within a memory budget (nil: unlimited): it holds its
// share from before reading starts until the reading goroutine ends, even
// when a timeout returns first, since that goroutine still holds memory.
func readPDF(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, budget *Budget) (PDFInfo, error) {
	return readPDFFrom(ctx, r, size, lim, budget, false)
}

// readSpooled is readPDF for a document the gateway spooled (in memory or
// in its own temporary file), whose reads never block: the lazy scanner,
// which checks ctx between objects and at each read, runs on the caller's
// goroutine. Starting a goroutine for it woke another thread on every
// request (runtime.wakep: ~7 us of CPU a 1-page request, the scan itself
// ~10). Only the pdfcpu fallback, which does not watch ctx, still runs on
// a goroutine of its own, so that a timeout returns without it.
func readSpooled(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, budget *Budget) (PDFInfo, error) {
	return readPDFFrom(ctx, r, size, lim, budget, true)
}

func readPDFFrom(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, budget *Budget, spooled bool) (PDFInfo, error) {
	lim = lim.withDefaults()
	if size <= 0 {
		return PDFInfo{}, toMeterError(unreadable(ReasonDamaged, "empty document"))
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > lim.Timeout {
		// A caller's earlier deadline (the gateway's count_timeout) bounds
		// this read alone: no second context, whose Done channel and
		// registration with its parent cost on every request. A spooled
		// read polls ctx and waits on it only for memory: its timer is
		// made then (clockctx). The goroutine's select always waits.
		if spooled {
			c := clockctx.WithTimeout(ctx, lim.Timeout)
			defer c.Stop()
			ctx = c
		} else {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, lim.Timeout)
			defer cancel()
		}
	}
	g, err := budget.acquire(ctx, scanNeed(size))
	if err != nil {
		return PDFInfo{}, pdfError(ctx, err)
	}

	cr := &ctxReaderAt{ctx: ctx, r: r}
	scan := scanPDF
	if spooled {
		info, err, final := scanHere(ctx, cr, size, lim, g)
		if final {
			g.release()
			if err == nil {
				return info, nil
			}
			return PDFInfo{}, pdfError(ctx, err)
		}
		scan = scanFallback
	}

	type result struct {
		info PDFInfo
		err  error
	}
	done := make(chan result, 1) // buffered: a late goroutine must not block
	go func() {
		growStack()
		// The grant is released before the result is sent, on every path:
		// a deferred release ran after the send, so a caller could see
		// the budget still held once ScanPDF had returned.
		defer func() {
			if p := recover(); p != nil {
				g.release()
				done <- result{err: unreadable(ReasonDamaged, "pdf reader panicked: %v", p)}
			}
		}()
		info, err := scan(ctx, cr, size, lim, g)
		g.release()
		done <- result{info, err}
	}()

	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err == nil {
		return res.info, nil
	}
	return PDFInfo{}, pdfError(ctx, res.err)
}

// scanHere is scanLazy on the caller's goroutine, which it grows first
// (see growStack), with a panic of the scanner or of r an unreadable
// document, as on readPDF's goroutine.
func scanHere(ctx context.Context, r io.ReaderAt, size int64, lim PDFLimits, g *grant) (info PDFInfo, err error, final bool) {
	growStack()
	defer func() {
		if p := recover(); p != nil {
			info, err, final = PDFInfo{}, unreadable(ReasonDamaged, "pdf reader panicked: %v", p), true
		}
	}()
	return scanLazy(ctx, r, size, lim, g)
}

// pdfError turns the failure of reading a PDF into what ScanPDF returns.
func pdfError(ctx context.Context, err error) error {
	var be *errBusy
	var re *readError
	var me *meter.Error
	switch {
	case errors.As(err, &me):
		return me // too_many_pages: already what the caller gets
	case errors.Is(ctx.Err(), context.Canceled):
		return context.Canceled // a client that went away is not a bad document
	case errors.As(err, &be):
		return busyError(be) // before the timeout: a wait for memory may end in it
	case ctx.Err() != nil:
		return toMeterError(unreadable(ReasonTimeout, "%w", err))
	case errors.As(err, &re):
		return fmt.Errorf("usage: read document: %w", re.err)
	}
	return toMeterError(err)
}

// readError is a failure to read the input itself (a disk error, not a bad
// document): it stays an internal error.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func toMeterError(err error) *meter.Error {
	var u *errUnreadable
	if !errors.As(err, &u) {
		u = &errUnreadable{reason: ReasonDamaged, err: err}
	}
	return &meter.Error{
		Code:    meter.ECodeUnreadableDocument,
		Message: messages[u.reason],
		Details: map[string]any{"reason": u.reason},
		Err:     err,
	}
}

// ctxReader fails reads once ctx is done, so that a parser still running
// after a timeout stops at its next read instead of running on.
type ctxReader struct {
	ctx context.Context
	rs  io.ReadSeeker
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.rs.Read(p)
}

func (c *ctxReader) Seek(offset int64, whence int) (int64, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.rs.Seek(offset, whence)
}

// ctxReaderAt is ctxReader for an io.ReaderAt.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c *ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// seekReaderAt reads an io.ReadSeeker that has no ReadAt method.
type seekReaderAt struct {
	mu sync.Mutex
	rs io.ReadSeeker
}

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.rs, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}
