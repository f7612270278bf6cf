// Package pdfscan counts the pages of a PDF and reads their boxes without
// loading the document: it reads the cross-reference data from the end of
// the file, then only the objects of the page tree (and the object streams
// that hold them), each on demand from an io.ReaderAt. Its memory depends
// on the number of objects, not on the size of the file nor on the number
// of pages a shared page tree expands to. The object streams the walk is
// about to need are inflated ahead by a second goroutine (prefetch.go),
// which ends before Scan returns.
//
// Pages are counted as poppler and qpdf count them (Walk, which the pdfcpu
// fallback uses too): every leaf occurrence, so a page listed twice or
// under a shared node counts each time it is reached; any dictionary
// without /Kids is a leaf, whatever its /Type; a cycle is ErrCycle; the
// count is never below the root's /Count, which pdfinfo and qpdf
// --show-npages report. Counts are memoised per node, so a shared tree is
// never expanded. tree.go has the details.
//
// It reads well-formed files only. Encrypted files, broken cross-reference
// data and unsupported stream filters are errors that tell the caller to
// use a full, repairing reader instead; limits that a hostile file hits are
// ErrLimit, which such a reader should not be asked to try again.
package pdfscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Limits bound the work of one scan. All must be positive.
type Limits struct {
	// MaxStreamBytes is the longest encoded stream read.
	MaxStreamBytes int64
	// MaxDecodeBytes is the most bytes one stream may decode to; the scan
	// as a whole decodes at most 4 times this (object streams evicted from
	// the cache and decoded again count again), and at most this plus
	// 5 MB more in object streams decoded ahead that the walk did not take
	// (prefetch.go).
	MaxDecodeBytes int64
	// MaxObjects is the highest object number accepted.
	MaxObjects int
	// MaxDepth is the deepest page tree accepted.
	MaxDepth int
	// MaxPages, when positive, ends the scan with ErrTooManyPages as soon
	// as the document is known to have more pages.
	MaxPages int64
	// Grow, when set, is asked for n more bytes of memory before decoding
	// takes more than DecodeAllowance (its buffers, the object stream
	// cache and the garbage they leave, counted twice for the collector's
	// headroom). Its error ends the scan, wrapped in ErrMemory: a shared
	// memory budget refuses a document rather than run out.
	Grow func(n int64) error
}

// DecodeAllowance is the decoding memory a scan uses without asking
// Limits.Grow: the object stream cache (4 MB) and what is decoded ahead
// (prefetch.go), which the caller's admission of the scan covers.
const DecodeAllowance = 8 << 20

// Info is what a scan found.
type Info struct {
	Pages int        // pages as readers count them (tree.go)
	Sizes []PageSize // distinct page boxes and their pages
}

var (
	// ErrLimit is a document over a Limits bound, or built to exhaust a
	// reader: a repairing reader should not be tried on it.
	ErrLimit = errors.New("pdfscan: limit exceeded")
	// ErrEncrypted is a document with /Encrypt: its object streams and
	// strings need decrypting, which this package does not do.
	ErrEncrypted = errors.New("pdfscan: encrypted document")
	// ErrMemory is a scan that Limits.Grow refused more memory.
	ErrMemory = errors.New("pdfscan: decoding memory refused")
	// ErrDamaged is a document this package cannot read: broken
	// cross-reference data, a bad object, an unsupported filter. A
	// repairing reader may still read it.
	ErrDamaged = errors.New("pdfscan: damaged or unsupported document")
)

func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, args...))
}

func limit(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

// ReadError is a failure of the io.ReaderAt itself, not of the document.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "pdfscan: read: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Scan reads the page tree of the PDF of size bytes in r. It checks ctx
// between objects; r should also fail once ctx is done, for reads that
// block. r must allow parallel ReadAt calls, as io.ReaderAt documents:
// object streams are decoded ahead in another goroutine (prefetch.go),
// which has returned when Scan returns.
func Scan(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (Info, error) {
	d := docPool.Get().(*doc)
	d.init(ctx, r, size, lim)
	info, err := d.scan()
	// Not reached on a panic: a doc left in the middle of a scan is
	// dropped, never reused.
	d.reset()
	docPool.Put(d)
	return info, err
}

// docPool keeps docs, with their buffers, between scans: a gateway scans
// a document per request, and a fresh doc's parts (the doc, its walker,
// xref table, token buffer and inflater) were most of what scanning a
// small document allocated. reset caps what a pooled doc keeps.
var docPool = sync.Pool{New: func() any { return new(doc) }}

func newDoc(ctx context.Context, r io.ReaderAt, size int64, lim Limits) *doc {
	d := &doc{}
	d.init(ctx, r, size, lim)
	return d
}

func (d *doc) init(ctx context.Context, r io.ReaderAt, size int64, lim Limits) {
	d.ctx, d.lim, d.budget = ctx, lim, 4*lim.MaxDecodeBytes
	d.rec = recorder{r: r}
	d.src = source{r: &d.rec, size: size, free: d.src.free}
	if d.growFn == nil {
		d.growFn = d.grow // a method value is an allocation: once per doc
	}
	d.streams.maxBytes = min(4<<20, lim.MaxDecodeBytes)
	d.pre.maxWaste = lim.MaxDecodeBytes
}

func (d *doc) scan() (Info, error) {
	defer d.src.release()
	defer d.pre.close() // before release: the worker may be reading
	if err := d.readXRef(); err != nil {
		return Info{}, err
	}
	return d.walkPages()
}

// doc is one document being scanned.
type doc struct {
	ctx      context.Context
	rec      recorder // src.r
	src      source
	lim      Limits
	xref     xrefTable
	root     Object // the catalog's reference, from the trailer
	streams  streamCache
	inflater inflater
	pre      prefetcher
	walk     *walker // the page walk (w), once started
	w        walker
	tr       tokenReader       // classic xref tables' (readTable)
	xrefData []byte            // xref streams decode here (readXRefStream)
	box      [2][4]float64     // the MediaBox and CropBox Node read last
	scratch  []byte            // object streams decode here first (objectStream)
	budget   int64             // bytes left to decode
	grown    int64             // bytes Limits.Grow admitted
	nesting  int               // resolve calls in progress, against reference chains
	growFn   func(int64) error // d.grow, for the walk
}

// reserve admits the memory of decoding with a new buffer of n bytes, on
// top of the scratch buffer and the object stream cache, with Limits.Grow.
func (d *doc) reserve(n int64) error {
	if d.lim.Grow == nil {
		return nil
	}
	need := 2*(n+int64(cap(d.scratch))+d.streams.bytes) - DecodeAllowance
	if need <= d.grown {
		return nil
	}
	if err := d.grow(need - d.grown); err != nil {
		return err
	}
	d.grown = need
	return nil
}

// grow asks Limits.Grow for n more bytes.
func (d *doc) grow(n int64) error {
	if d.lim.Grow == nil {
		return nil
	}
	if err := d.lim.Grow(n); err != nil {
		return fmt.Errorf("%w: %w", ErrMemory, err)
	}
	return nil
}

// Most of a pooled doc's buffers a scan may keep: what a document of a few
// hundred objects needs, so that a pooled doc never pins a large one's.
const (
	keepObjects = 1 << 12 // xref entries (16 bytes each)
	keepBytes   = 64 << 10
)

// reset clears d for another scan. Nothing it keeps is reachable from an
// Info (walker.reuse drops the sizes) nor refers to the caller's reader.
func (d *doc) reset() {
	xref := d.xref.e[:0]
	if cap(xref) > keepObjects {
		xref = nil
	}
	tr := d.tr.buf[:0]
	if cap(tr) > keepBytes {
		tr = nil
	}
	xd := d.xrefData[:0]
	if cap(xd) > keepBytes {
		xd = nil
	}
	in := d.inflater
	if in.br != nil {
		in.br.Reset(nil) // its source is the caller's reader
	}
	*d = doc{
		xref:     xrefTable{e: xref},
		tr:       tokenReader{buf: tr},
		xrefData: xd,
		inflater: in,
		src:      source{free: d.src.free.reuse()},
		growFn:   d.growFn,
		w:        d.w.reuse(),
	}
}
