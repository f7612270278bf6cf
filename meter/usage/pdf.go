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
func countPages(ctx context.Context, rs io.ReadSeeker, size int64, lim PDFLimits) (int, []PageBox, error) {
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
	return walkPageTree(ctx, pc.XRefTable, lim.MaxDepth)
}

// readConfig is a configuration for reading only. It is built by hand
// because model.NewDefaultConfiguration installs a config directory under
// the user's home unless a process-wide switch is flipped.
func readConfig(size int64, lim PDFLimits) *model.Configuration {
	limits := model.DefaultResourceLimits()
	// No stream can be longer than the file: pdfcpu allocates a declared
	// /Length up front, so a lying /Length must not exceed what exists.
	limits.MaxStreamBytes = min(lim.MaxStreamBytes, size)
	limits.MaxDecodeBytes = lim.MaxDecodeBytes
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

// walkPageTree counts the leaves reachable from the catalog's /Pages. /Count
// is never read: a hostile one could claim any number. Each indirect node
// is visited once (cycles and shared kids add nothing) and depth is
// bounded, so the walk is linear in the size of the tree. It follows the
// same rules as pdfscan's walk, boxes included.
func walkPageTree(ctx context.Context, xt *model.XRefTable, maxDepth int) (int, []PageBox, error) {
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

	type node struct {
		obj   types.Object
		depth int
		inh   pageAttrs
	}
	visited := map[int]bool{}
	stack := []node{{obj: pages}}
	var boxes []PageBox
	for steps := 0; len(stack) > 0; steps++ {
		if steps%4096 == 0 && ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]

		if ir, ok := n.obj.(types.IndirectRef); ok {
			nr := ir.ObjectNumber.Value()
			if visited[nr] {
				continue
			}
			visited[nr] = true
		}
		o, err := xt.Dereference(n.obj)
		if err != nil {
			return 0, nil, unreadable(ReasonDamaged, "page tree node: %w", err)
		}
		d, ok := o.(types.Dict)
		if !ok {
			continue // a null or dangling kid holds no page
		}

		a := inheritAttrs(xt, d, n.inh)
		typ := d.Type()
		kids, hasKids := d.Find("Kids")
		if (typ != nil && *typ == "Page") || (typ == nil && !hasKids) {
			boxes = append(boxes, pdfscan.NewPageBox(a.media, a.crop, a.rotate))
			continue
		}
		if !hasKids {
			continue // an empty /Pages node
		}
		if n.depth >= maxDepth {
			return 0, nil, unreadable(ReasonTooLarge, "page tree deeper than %d", maxDepth)
		}
		if ir, ok := kids.(types.IndirectRef); ok {
			if visited[ir.ObjectNumber.Value()] {
				continue
			}
			visited[ir.ObjectNumber.Value()] = true
		}
		arr, err := xt.DereferenceArray(kids)
		if err != nil {
			return 0, nil, unreadable(ReasonDamaged, "page tree /Kids: %w", err)
		}
		// Push in reverse so that pages are visited in document order.
		for i := len(arr) - 1; i >= 0; i-- {
			stack = append(stack, node{arr[i], n.depth + 1, a})
		}
	}
	if len(boxes) == 0 {
		// Viewers that rebuild a broken page tree would still show pages:
		// fail closed rather than charge nothing.
		return 0, nil, unreadable(ReasonDamaged, "no pages reachable from /Pages")
	}
	return len(boxes), boxes, nil
}

// pageAttrs are the inheritable attributes of a page tree node.
type pageAttrs struct {
	media, crop []float64
	rotate      int64
}

// inheritAttrs returns the attributes of d: its own, else its parent's.
// Values that do not resolve are ignored, as pdfscan ignores malformed ones.
func inheritAttrs(xt *model.XRefTable, d types.Dict, parent pageAttrs) pageAttrs {
	a := parent
	if r := pdfcpuRect(xt, d, "MediaBox"); r != nil {
		a.media = r
	}
	if r := pdfcpuRect(xt, d, "CropBox"); r != nil {
		a.crop = r
	}
	if v, ok := d.Find("Rotate"); ok {
		if o, err := xt.Dereference(v); err == nil {
			if f, ok := pdfcpuNumber(o); ok {
				a.rotate = int64(f)
			}
		}
	}
	return a
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
