package pdfscan

import (
	"context"
	"math/rand/v2"
	"testing"
)

// mapTree is a Tree over plain values: node numbers are ints (indirect
// references), a *fakeNode is a direct node.
type mapTree struct{ nodes map[int]*fakeNode }

type fakeNode struct {
	page  bool
	kids  []any // nil: no /Kids
	media []float64
}

func (m mapTree) Node(v any) (TreeNode, error) {
	var n TreeNode
	f, _ := v.(*fakeNode)
	if num, ok := v.(int); ok {
		n.Num, f = num, m.nodes[num]
	}
	if f == nil {
		return n, nil
	}
	n.Dict, n.Page, n.Media = true, f.page, f.media
	if f.kids != nil {
		n.Kids = f.kids
	}
	return n, nil
}

func (m mapTree) Kids(v any) (int, []any, error) {
	items, _ := v.([]any)
	return 0, items, nil
}

// expandNaive lists the box of every leaf occurrence, in order, by
// expanding the tree: what Walk must count without expanding it.
func (m mapTree) expandNaive(v any, inh attrs) []PageBox {
	n, _ := m.Node(v)
	if !n.Dict {
		return nil
	}
	a := inh.inherit(n)
	if n.Kids == nil {
		return []PageBox{a.box()}
	}
	var out []PageBox
	for _, k := range n.Kids.([]any) {
		out = append(out, m.expandNaive(k, a)...)
	}
	if n.Page && len(out) == 0 {
		return []PageBox{a.box()}
	}
	return out
}

// Random page DAGs (kids refer only to higher numbers, so no cycle; nodes
// shared, repeated, typed /Page with kids, with and without boxes): Walk's
// count and sizes equal those of the naive expansion.
func TestWalkMatchesNaiveExpansion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	boxes := [][]float64{nil, {0, 0, 612, 792}, {0, 0, 842, 1191}, {0, 0, 2448, 1584}}
	for iter := range 2000 {
		size := 2 + rng.IntN(12)
		m := mapTree{nodes: map[int]*fakeNode{}}
		for num := size; num >= 1; num-- {
			f := &fakeNode{media: boxes[rng.IntN(len(boxes))], page: rng.IntN(6) == 0}
			if num < size && rng.IntN(3) > 0 {
				f.kids = []any{}
				for range rng.IntN(4) {
					switch r := rng.IntN(10); {
					case r == 0:
						f.kids = append(f.kids, nil) // a null kid
					case r == 1:
						f.kids = append(f.kids, &fakeNode{media: boxes[rng.IntN(len(boxes))]})
					default:
						f.kids = append(f.kids, num+1+rng.IntN(size-num))
					}
				}
			}
			m.nodes[num] = f
		}
		want := m.expandNaive(1, attrs{})
		got, err := Walk(context.Background(), m, 1, WalkLimits{MaxDepth: 64})
		if len(want) == 0 {
			if err == nil {
				t.Fatalf("iter %d: no page, want an error, got %d", iter, got.Count)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		hist := map[PageBox]int{}
		for _, b := range want {
			hist[b]++
		}
		if got.Count != len(want) || len(got.Sizes) != len(hist) {
			t.Fatalf("iter %d: %d pages in %d sizes, want %d in %d", iter, got.Count, len(got.Sizes), len(want), len(hist))
		}
		for i, s := range got.Sizes {
			if hist[s.Box] != s.Pages {
				t.Fatalf("iter %d: %d pages of %v, want %d", iter, s.Pages, s.Box, hist[s.Box])
			}
			if i == 0 && s.Box != want[0] {
				t.Fatalf("iter %d: first size %v, want the first page's %v", iter, s.Box, want[0])
			}
		}
	}
}
