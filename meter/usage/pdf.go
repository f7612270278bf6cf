package usage

// The pdfcpu-specific part of page counting: the fallback of the lazy
// scanner (scan.go says when it runs).

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/creditgate/creditgate/meter/usage/pdfscan"
	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// countPages reads the document with pdfcpu and walks its page tree.
//
// pdfcpu's full read loads every object and the encoded bytes of every
// stream (not decoded, except object and xref streams), so memory grows
// with the document; MaxStreamBytes and MaxDecodeBytes bound single
// streams. Validation (api.PageCount) is skipped on purpose: it rejects
// many readable PDFs for reasons that have nothing to do with pages.
//
// The document is read into memory once: checkStreamLengths scans it, and
// pdfcpu, which seeks and reads in small pieces, runs several times faster
// on memory than on a file.
func countPages(ctx context.Context, rs io.ReadSeeker, size int64, lim PDFLimits) (int, []PageSize, error) {
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return 0, nil, &readError{err}
	}
	// One allocation of the known size: io.ReadAll would regrow its
	// buffer, holding up to twice the file at once. The caller admitted
	// this memory (fallbackNeed).
	b := make([]byte, size)
	if n, err := io.ReadFull(rs, b); err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, nil, unreadable(ReasonDamaged, "document has %d bytes, not %d", n, size)
		}
		return 0, nil, &readError{err}
	}
	if err := checkStreamLengths(b); err != nil {
		return 0, nil, err
	}
	in := &ctxReader{ctx: ctx, rs: bytes.NewReader(b)}
	pc, err := pdfcpu.ReadWithContext(ctx, in, readConfig(size, lim))
	if err != nil {
		return 0, nil, classifyReadError(err)
	}
	n, sizes, err := walkPageTree(ctx, pc.XRefTable, lim)
	if err != nil {
		return 0, nil, err
	}
	p, err := pdfscan.Pages{Count: n, Sizes: sizes}.AtLeast(pdfscan.LinearizedPages(bytes.NewReader(b), size), lim.MaxPages)
	if err != nil {
		return 0, nil, walkError(err)
	}
	return p.Count, p.Sizes, nil
}

// readConfig is a configuration for reading only. It is built by hand
// because model.NewDefaultConfiguration installs a config directory under
// the user's home unless a process-wide switch is flipped.
func readConfig(size int64, lim PDFLimits) *model.Configuration {
	limits := model.DefaultResourceLimits()
	// No stream can be longer than the file: pdfcpu allocates a declared
	// /Length up front, so a lying /Length must not exceed what exists.
	limits.MaxStreamBytes = min(lim.MaxStreamBytes, size)
	limits.MaxDecodeBytes = fallbackDecode(size, lim)
	limits.MaxObjectCount = lim.MaxObjects
	limits.MaxXRefEntries = lim.MaxObjects
	limits.MaxObjectStreamCount = min(limits.MaxObjectStreamCount, lim.MaxObjects)
	return &model.Configuration{
		Reader15:       true,
		ValidationMode: model.ValidationRelaxed,
		Cmd:            model.LISTINFO,
		Eol:            types.EolLF,
		Offline:        true,
		Limits:         limits,
	}
}

func classifyReadError(err error) error {
	switch {
	case errors.Is(err, pdfcpu.ErrWrongPassword):
		return unreadable(ReasonEncrypted, "%w", err)
	case errors.Is(err, filter.ErrDecodeLimitExceeded),
		errors.Is(err, model.ErrMaxRecursionDepthExceeded):
		return unreadable(ReasonTooLarge, "%w", err)
	}
	return unreadable(ReasonDamaged, "%w", err)
}

// walkPageTree counts the pages of the tree pdfcpu read, with the same
// walk as the scanner (pdfscan.Walk; its doc says what a page is).
func walkPageTree(ctx context.Context, xt *model.XRefTable, lim PDFLimits) (int, []PageSize, error) {
	if xt == nil || xt.Root == nil {
		return 0, nil, unreadable(ReasonDamaged, "no document catalog")
	}
	root, err := xt.DereferenceDict(*xt.Root)
	if err != nil || root == nil {
		return 0, nil, unreadable(ReasonDamaged, "no document catalog: %v", err)
	}
	pages, ok := root.Find("Pages")
	if !ok {
		return 0, nil, unreadable(ReasonDamaged, "catalog has no /Pages")
	}
	p, err := pdfscan.Walk(ctx, pdfcpuTree{xt}, pages, pdfscan.WalkLimits{
		MaxDepth: lim.MaxDepth,
		MaxPages: lim.MaxPages,
		MaxSteps: 4 * lim.MaxObjects,
	})
	if err != nil {
		return 0, nil, walkError(err)
	}
	return p.Count, p.Sizes, nil
}

// pdfcpuTree is the pdfscan.Tree of a document pdfcpu read. Values that do
// not resolve are ignored (pdfcpu repaired what it could), as pdfscan
// ignores malformed ones.
type pdfcpuTree struct{ xt *model.XRefTable }

func (t pdfcpuTree) Node(v any) (pdfscan.TreeNode, error) {
	var n pdfscan.TreeNode
	o, _ := v.(types.Object)
	if ir, ok := o.(types.IndirectRef); ok {
		n.Num = ir.ObjectNumber.Value()
	}
	o, err := t.xt.Dereference(o)
	if err != nil {
		return n, unreadable(ReasonDamaged, "page tree node: %w", err)
	}
	d, ok := o.(types.Dict)
	if !ok {
		return n, nil
	}
	n.Dict = true
	if typ := d.Type(); typ != nil && *typ == "Page" {
		n.Page = true
	}
	if k, ok := d.Find("Kids"); ok && k != nil {
		n.Kids = k
		if o, err := t.xt.Dereference(k); err == nil && o == nil {
			n.Kids = nil // a reference to null is no /Kids (qpdf: a page)
		}
	}
	n.Media, n.Crop = pdfcpuRect(t.xt, d, "MediaBox"), pdfcpuRect(t.xt, d, "CropBox")
	if r, ok := t.number(d, "Rotate"); ok {
		n.Rotate, n.HasRotate = int64(r), true
	}
	if c, ok := t.number(d, "Count"); ok {
		n.Count = int64(min(c, 1<<60))
	}
	return n, nil
}

func (t pdfcpuTree) Kids(v any) (int, []any, error) {
	num := 0
	o, _ := v.(types.Object)
	if ir, ok := o.(types.IndirectRef); ok {
		num = ir.ObjectNumber.Value()
	}
	arr, err := t.xt.DereferenceArray(o)
	if err != nil {
		return num, nil, nil // not an array: no kids
	}
	items := make([]any, len(arr))
	for i, e := range arr {
		items[i] = e
	}
	return num, items, nil
}

func (t pdfcpuTree) number(d types.Dict, key string) (float64, bool) {
	v, ok := d.Find(key)
	if !ok {
		return 0, false
	}
	o, err := t.xt.Dereference(v)
	if err != nil {
		return 0, false
	}
	return pdfcpuNumber(o)
}

func pdfcpuRect(xt *model.XRefTable, d types.Dict, key string) []float64 {
	v, ok := d.Find(key)
	if !ok {
		return nil
	}
	arr, err := xt.DereferenceArray(v)
	if err != nil || len(arr) != 4 {
		return nil
	}
	out := make([]float64, 4)
	for i, e := range arr {
		o, err := xt.Dereference(e)
		if err != nil {
			return nil
		}
		if out[i], ok = pdfcpuNumber(o); !ok {
			return nil
		}
	}
	return out
}

func pdfcpuNumber(o types.Object) (float64, bool) {
	switch n := o.(type) {
	case types.Integer:
		return float64(n), true
	case types.Float:
		return float64(n), true
	}
	return 0, false
}
