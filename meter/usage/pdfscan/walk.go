package pdfscan

import (
	"context"
	"fmt"
)

// The walker behind Walk: a depth-first walk with an explicit stack of
// frames, a memo of (node, inherited attributes) states, then a pass that
// pushes occurrence counts from the root down to the leaves' boxes.

// maxCount saturates counts: far above any MaxPages, far below overflow.
const maxCount = 1 << 60

func addSat(a, b int64) int64 { return min(a+b, maxCount) }

func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxCount/b {
		return maxCount
	}
	return min(a*b, maxCount)
}

// attrs are a node's effective inheritable attributes; comparable, so
// that (node, attrs) keys the memo.
type attrs struct {
	media, crop       [4]float64
	hasMedia, hasCrop bool
	rotate            int64
}

func (a attrs) inherit(n TreeNode) attrs {
	if len(n.Media) == 4 && !hasNaN(n.Media) {
		a.media, a.hasMedia = [4]float64(n.Media), true
	}
	if len(n.Crop) == 4 && !hasNaN(n.Crop) {
		a.crop, a.hasCrop = [4]float64(n.Crop), true
	}
	if n.HasRotate {
		a.rotate = n.Rotate
	}
	return a
}

// hasNaN reports a box no reader can use, and that would never equal
// itself as a memo key.
func hasNaN(r []float64) bool {
	for _, v := range r {
		if v != v {
			return true
		}
	}
	return false
}

func (a attrs) box() PageBox {
	var m, c []float64
	if a.hasMedia {
		m = a.media[:]
	}
	if a.hasCrop {
		c = a.crop[:]
	}
	return NewPageBox(m, c, a.rotate)
}

// state is a node (or an indirect /Kids array) under given attributes:
// the pages below it and, for the second pass, its children.
type state struct {
	count int64
	leaf  int32 // index in sizes + 1 for a leaf, else 0
	kids  []edge
	times int64 // occurrences from the root (second pass)
}

type edge struct {
	to int32 // index in walker.states
	n  int64 // times listed in a row
}

type memoKey struct {
	num   int
	attrs attrs
}

// frame is a node being expanded: its kids, the next one, and its state.
type frame struct {
	st      int32
	nodeNum int // 0 when direct
	arrNum  int // its /Kids' number, 0 when direct
	items   []any
	next    int
	depth   int
	attrs   attrs
	page    bool   // typed /Page: at least one page
	edges   []edge // its state's kids so far (link), kept with the slot
}

// walker walks one page tree.
type walker struct {
	ctx    context.Context
	t      Tree
	lim    WalkLimits
	states []state
	order  []int32 // states as they complete: children before parents
	sizes  []PageSize
	sizeIx smallMap[PageBox, int32]
	memo   smallMap[memoKey, int32]
	seen   smallMap[int, bool] // numbers of nodes and arrays walked
	onPath smallMap[int, bool]
	frames []frame
	edges  []edge // where the kids of finished states are kept (leave)
	top    int32  // the root's state, once its frame ends
	steps  int
}

func newWalker(ctx context.Context, t Tree, lim WalkLimits) *walker {
	return &walker{ctx: ctx, t: t, lim: lim}
}

// keepStates is the most states (and frames, and edges) a pooled walker
// keeps room for; keepKids, the most kids a frame keeps room for.
const (
	keepStates = 1 << 10
	keepKids   = 64
)

// reuse returns an empty walker with w's buffers when they are small. The
// sizes are not kept: an Info returns them.
func (w *walker) reuse() walker {
	if cap(w.states) > keepStates || cap(w.order) > keepStates || cap(w.frames) > keepStates {
		return walker{}
	}
	clear(w.states[:cap(w.states)]) // their kids
	frames := w.frames[:cap(w.frames)]
	for i := range frames { // their items are the document's objects
		e := frames[i].edges[:0]
		if cap(e) > keepKids {
			e = nil
		}
		frames[i] = frame{edges: e}
	}
	edges := w.edges[:0]
	if cap(edges) > keepStates {
		edges = nil
	}
	return walker{
		edges:  edges,
		states: w.states[:0],
		order:  w.order[:0],
		frames: w.frames[:0],
		sizeIx: w.sizeIx.reuse(),
		memo:   w.memo.reuse(),
		seen:   w.seen.reuse(),
		onPath: w.onPath.reuse(),
	}
}

// upcoming calls f with the kids the walk will visit next, nearest first,
// until f returns false (the prefetcher looks ahead with it).
func (w *walker) upcoming(f func(v any) bool) {
	for i := len(w.frames) - 1; i >= 0; i-- {
		fr := &w.frames[i]
		for _, v := range fr.items[fr.next:] {
			if !f(v) {
				return
			}
		}
	}
}

func (w *walker) walk(v any) (Pages, error) {
	root, err := w.t.Node(v)
	if err != nil {
		return Pages{}, err
	}
	if !root.Dict {
		return Pages{}, damaged("/Pages is not a dictionary")
	}
	if w.lim.MaxPages > 0 && root.Count > w.lim.MaxPages {
		return Pages{}, &TooManyPages{root.Count, w.lim.MaxPages}
	}
	top, err := w.expand(root)
	if err != nil {
		return Pages{}, err
	}
	if w.states[top].count == 0 {
		// Viewers that rebuild a broken page tree would still show pages:
		// fail rather than charge nothing.
		return Pages{}, damaged("no pages reachable from /Pages")
	}
	return w.collect(top, min(max(root.Count, 0), maxCount)), nil
}

// expand computes the state of the tree at root and returns its index.
// Nodes are expanded with an explicit stack of frames (depth is bounded
// anyway), so that upcoming sees the kids left at every level.
func (w *walker) expand(root TreeNode) (int32, error) {
	top, done, err := w.enter(root, attrs{}, 0)
	if err != nil || done {
		return top, err
	}
	w.top = top
	for len(w.frames) > 0 {
		fr := &w.frames[len(w.frames)-1]
		if fr.next == len(fr.items) {
			if err := w.leave(); err != nil {
				return 0, err
			}
			continue
		}
		v := fr.items[fr.next]
		fr.next++
		if w.steps++; w.lim.MaxSteps > 0 && w.steps > w.lim.MaxSteps {
			return 0, limit("page tree needs more than %d steps", w.lim.MaxSteps)
		}
		if w.steps%1024 == 0 {
			if err := w.ctx.Err(); err != nil {
				return 0, err
			}
		}
		kid, err := w.t.Node(v)
		if err != nil {
			return 0, err
		}
		if !kid.Dict {
			continue // a null or dangling kid holds no page
		}
		fr = &w.frames[len(w.frames)-1] // Node may have looked ahead, not pushed
		parent, a, depth := fr.st, fr.attrs, fr.depth
		st, done, err := w.enter(kid, a, depth+1)
		if err != nil {
			return 0, err
		}
		if done {
			if err := w.link(parent, st); err != nil {
				return 0, err
			}
		}
	}
	return w.top, nil
}

// enter starts node n under inherited attributes inh: done when its state
// is known at once (a leaf, or memoised); else it pushed a frame.
func (w *walker) enter(n TreeNode, inh attrs, depth int) (int32, bool, error) {
	a := inh.inherit(n)
	key := memoKey{n.Num, a}
	if n.Num > 0 {
		if w.onPath.has(n.Num) {
			return 0, false, fmt.Errorf("%w: object %d is its own ancestor", ErrCycle, n.Num)
		}
		if st, ok := w.memo.get(key); ok {
			return st, true, nil
		}
	}
	if n.Kids == nil {
		st, err := w.newLeaf(key, a)
		return st, err == nil, err
	}
	if depth >= w.lim.MaxDepth {
		return 0, false, limit("page tree deeper than %d", w.lim.MaxDepth)
	}
	arrNum, items, err := w.t.Kids(n.Kids)
	if err != nil {
		return 0, false, err
	}
	if arrNum > 0 {
		// An indirect /Kids array that several nodes share is expanded
		// once too, memoised under its own number.
		if w.onPath.has(arrNum) {
			return 0, false, fmt.Errorf("%w: /Kids %d is its own ancestor", ErrCycle, arrNum)
		}
		if st, ok := w.memo.get(memoKey{arrNum, a}); ok {
			st, err := w.finish(st, key, n.Page)
			return st, err == nil, err
		}
	}
	st, err := w.newState(state{})
	if err != nil {
		return 0, false, err
	}
	var edges []edge // the buffer of the frame slot, when there is one
	if k := len(w.frames); k < cap(w.frames) {
		edges = w.frames[:k+1][k].edges[:0]
	}
	w.frames = append(w.frames, frame{st: st, nodeNum: n.Num, arrNum: arrNum,
		items: items, depth: depth, attrs: a, page: n.Page, edges: edges})
	if n.Num > 0 {
		w.onPath.set(n.Num, true)
	}
	if arrNum > 0 {
		w.onPath.set(arrNum, true)
	}
	return st, false, nil
}

// leave ends the frame on top and links its state to its parent's.
func (w *walker) leave() error {
	fr := w.frames[len(w.frames)-1]
	w.states[fr.st].kids = w.keepEdges(fr.edges)
	w.frames = w.frames[:len(w.frames)-1]
	w.onPath.delete(fr.nodeNum)
	w.onPath.delete(fr.arrNum)
	w.order = append(w.order, fr.st)
	if fr.arrNum > 0 {
		w.memo.set(memoKey{fr.arrNum, fr.attrs}, fr.st)
		w.seen.set(fr.arrNum, true)
	}
	st, err := w.finish(fr.st, memoKey{fr.nodeNum, fr.attrs}, fr.page)
	if err != nil {
		return err
	}
	if len(w.frames) == 0 {
		w.top = st
		return nil
	}
	return w.link(w.frames[len(w.frames)-1].st, st)
}

// finish returns the state of a node whose kids gave state st: st, or a
// page for a node typed /Page without any; memoised under key.
func (w *walker) finish(st int32, key memoKey, page bool) (int32, error) {
	if page && w.states[st].count == 0 {
		return w.newLeaf(key, key.attrs)
	}
	if key.num > 0 {
		w.memo.set(key, st)
		w.seen.set(key.num, true)
	}
	return st, nil
}

// newLeaf returns the state of one page with attributes a.
func (w *walker) newLeaf(key memoKey, a attrs) (int32, error) {
	b := a.box()
	ix, ok := w.sizeIx.get(b)
	if !ok {
		w.sizes = append(w.sizes, PageSize{Box: b})
		ix = int32(len(w.sizes) - 1)
		w.sizeIx.set(b, ix)
	}
	st, err := w.newState(state{count: 1, leaf: ix + 1})
	if err != nil {
		return 0, err
	}
	w.order = append(w.order, st)
	if key.num > 0 {
		w.memo.set(key, st)
		w.seen.set(key.num, true)
	}
	return st, nil
}

// Memory of the walk, for WalkLimits.Grow: a state with its memo entry,
// its place in order and an edge take about 256 bytes; the first
// freeStates are the caller's, more are asked for stateChunk at a time,
// twice over for the collector's headroom.
const (
	stateBytes = 256
	freeStates = 16 << 10
	stateChunk = 16 << 10
)

// newState adds s, asking WalkLimits.Grow for the memory of more states
// every stateChunk of them past freeStates.
func (w *walker) newState(s state) (int32, error) {
	if n := len(w.states); n >= freeStates && n%stateChunk == 0 && w.lim.Grow != nil {
		if err := w.lim.Grow(2 * stateChunk * stateBytes); err != nil {
			return 0, err
		}
	}
	w.states = append(w.states, s)
	return int32(len(w.states) - 1), nil
}

// link adds child's pages to parent's, once more. The parent is always
// the frame on top: its edges grow in the frame's buffer until it leaves.
func (w *walker) link(parent, child int32) error {
	fr := &w.frames[len(w.frames)-1]
	if fr.st != parent {
		panic("pdfscan: link to a state not on top") // never: see expand and leave
	}
	if k := len(fr.edges); k > 0 && fr.edges[k-1].to == child {
		fr.edges[k-1].n++
	} else {
		fr.edges = append(fr.edges, edge{to: child, n: 1})
	}
	p := &w.states[parent]
	p.count = addSat(p.count, w.states[child].count)
	if w.lim.MaxPages > 0 && p.count > w.lim.MaxPages {
		// Every state is reachable from the root: it has at least these.
		return &TooManyPages{p.count, w.lim.MaxPages}
	}
	return nil
}

// keepEdges copies the edges of a finished state into the walk's shared
// array, exactly: a slice per state, grown by append from nil, was most of
// what a small tree's walk allocated.
func (w *walker) keepEdges(e []edge) []edge {
	if len(e) == 0 {
		return nil
	}
	if cap(w.edges)-len(w.edges) < len(e) {
		// The states given the old array keep it.
		w.edges = make([]edge, 0, max(256, len(e)))
	}
	i := len(w.edges)
	w.edges = append(w.edges, e...)
	return w.edges[i:len(w.edges):len(w.edges)]
}

// collect counts how many times each state occurs from the root (parents
// before children: the reverse of the order states completed in) and
// so how many pages have each box.
func (w *walker) collect(top int32, rootCount int64) Pages {
	w.states[top].times = 1
	for i := len(w.order) - 1; i >= 0; i-- {
		s := &w.states[w.order[i]]
		if s.times == 0 {
			continue
		}
		if s.leaf > 0 {
			ps := &w.sizes[s.leaf-1]
			ps.Pages = int(addSat(int64(ps.Pages), s.times))
			continue
		}
		for _, e := range s.kids {
			k := &w.states[e.to]
			k.times = addSat(k.times, mulSat(s.times, e.n))
		}
	}
	return Pages{Count: int(max(w.states[top].count, rootCount)), Sizes: w.sizes}
}
