package pdfscan

import "testing"

// TestSmallMap checks the slice and map forms against a Go map, across the
// move from one to the other.
func TestSmallMap(t *testing.T) {
	var s smallMap[int, int]
	want := map[int]int{}
	for i := range 3 * smallMapMax {
		s.set(i%(2*smallMapMax), i)
		want[i%(2*smallMapMax)] = i
		if i%3 == 0 {
			s.delete(i / 2)
			delete(want, i/2)
		}
		for k := range 2 * smallMapMax {
			got, ok := s.get(k)
			w, wok := want[k]
			if got != w || ok != wok || s.has(k) != wok {
				t.Fatalf("after %d: get(%d) = %d, %v; want %d, %v", i, k, got, ok, w, wok)
			}
		}
	}
}
