package pdfscan

import (
	"context"
	"errors"
	"fmt"
)

// The page tree walk, written once for both readers (this package's and
// the pdfcpu fallback, which implement Tree over their own objects). The
// rule of what a billed page is:
//
//   - A page is every leaf occurrence a reader reaches from the catalog's
//     /Pages: a page object listed twice in /Kids, or under a node that
//     is itself listed twice, is two pages, as poppler and qpdf render
//     them (qpdf copies the repeated page object).
//   - A leaf is any dictionary without /Kids (absent or null), whatever its
//     /Type: /Pagez, /Pages or untyped leaves are pages to poppler and
//     qpdf. A node with /Kids that is not an array, or an empty one, holds
//     no page, except a node typed /Page, which poppler renders as one page
//     whatever its /Kids: it counts as the larger of 1 and its kids.
//   - Kids that are not dictionaries (null, dangling references, numbers)
//     hold no page, as both readers skip them.
//   - A cycle (a node reached again below itself) is an error (ErrCycle):
//     qpdf refuses such a file, poppler skips the looping kid.
//   - The root's /Count is what pdfinfo and qpdf --show-npages report; the
//     count is the larger of it and the leaves, so it is never below
//     either reader. The pages /Count adds have no known box. pdfinfo
//     reports a linearized file's /N instead: callers apply that with
//     LinearizedPages and Pages.AtLeast.
//
// Counts are computed once per node and inherited attributes (memoised),
// so a tree that shares subtrees costs its number of objects, not its
// number of pages: 2^40 pages through 40 shared levels take microseconds.
// Boxes are kept as distinct boxes with their page counts, found by
// pushing each node's number of occurrences down the tree once.

// Tree is what Walk reads a page tree through.
type Tree interface {
	// Node resolves v, the catalog's /Pages or an item of /Kids.
	Node(v any) (TreeNode, error)
	// Kids resolves a /Kids value: the object number of the array when v
	// is a reference (else 0), and its items; nil items when v is not an
	// array.
	Kids(v any) (num int, items []any, err error)
}

// TreeNode is one page tree node as Walk needs it.
type TreeNode struct {
	Num       int       // object number when reached through a reference, else 0
	Dict      bool      // false: not a dictionary, no page
	Page      bool      // /Type /Page
	Kids      any       // the /Kids value; nil when absent or null
	Media     []float64 // own /MediaBox, nil when absent or malformed
	Crop      []float64 // own /CropBox, likewise
	Rotate    int64     // own /Rotate, when HasRotate
	HasRotate bool
	Count     int64 // /Count when a number (read on the root only), else 0
}

// WalkLimits bound one walk.
type WalkLimits struct {
	MaxDepth int // deepest node accepted
	// MaxPages, when positive, stops the walk with ErrTooManyPages as soon
	// as it knows the document has more pages.
	MaxPages int64
	// MaxSteps bounds the kids looked at, over all distinct (node,
	// inherited box) pairs; past it the tree is ErrLimit.
	MaxSteps int
	// Grow, when set, is asked for n more bytes of memory as the walk's
	// bookkeeping grows past what a tree of 16,384 nodes needs; its error
	// ends the walk.
	Grow func(n int64) error
}

// PageSize is a page box and how many pages have it.
type PageSize struct {
	Box   PageBox
	Pages int
}

// Pages is what Walk found.
type Pages struct {
	Count int        // pages, as defined above
	Sizes []PageSize // distinct boxes in order of first occurrence; their pages sum to at most Count
}

var (
	// ErrCycle is a page tree whose /Kids lead back to a node above.
	ErrCycle = errors.New("pdfscan: page tree has a cycle")
	// ErrTooManyPages is a document with more pages than MaxPages.
	ErrTooManyPages = errors.New("pdfscan: too many pages")
)

// TooManyPages is the ErrTooManyPages of a walk: the document has at
// least Pages pages, more than Max.
type TooManyPages struct{ Pages, Max int64 }

func (e *TooManyPages) Error() string {
	return fmt.Sprintf("pdfscan: at least %d pages, more than %d", e.Pages, e.Max)
}
func (e *TooManyPages) Unwrap() error { return ErrTooManyPages }

// Walk counts the pages of the tree whose root is v (the catalog's /Pages
// value). A tree with no page is ErrDamaged; ctx is checked as it goes.
func Walk(ctx context.Context, t Tree, v any, lim WalkLimits) (Pages, error) {
	return newWalker(ctx, t, lim).walk(v)
}
