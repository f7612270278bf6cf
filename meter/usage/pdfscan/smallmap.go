package pdfscan

// smallMapMax is how many entries a smallMap keeps in its slice before it
// moves them to a map: most documents have a few page tree nodes, and the
// walker's four maps were most of the allocations of scanning one.
const smallMapMax = 16

// smallMap is a map that holds its first entries in a slice, searched
// linearly, and becomes a Go map past smallMapMax.
type smallMap[K comparable, V any] struct {
	list []smallEntry[K, V]
	m    map[K]V
}

type smallEntry[K comparable, V any] struct {
	k K
	v V
}

func (s *smallMap[K, V]) get(k K) (V, bool) {
	if s.m != nil {
		v, ok := s.m[k]
		return v, ok
	}
	for i := range s.list {
		if s.list[i].k == k {
			return s.list[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (s *smallMap[K, V]) has(k K) bool {
	_, ok := s.get(k)
	return ok
}

func (s *smallMap[K, V]) set(k K, v V) {
	if s.m != nil {
		s.m[k] = v
		return
	}
	for i := range s.list {
		if s.list[i].k == k {
			s.list[i].v = v
			return
		}
	}
	if len(s.list) < smallMapMax {
		if s.list == nil {
			s.list = make([]smallEntry[K, V], 0, smallMapMax/2)
		}
		s.list = append(s.list, smallEntry[K, V]{k, v})
		return
	}
	s.m = make(map[K]V, 2*smallMapMax)
	for _, e := range s.list {
		s.m[e.k] = e.v
	}
	s.m[k] = v
	s.list = nil
}

func (s *smallMap[K, V]) delete(k K) {
	if s.m != nil {
		delete(s.m, k)
		return
	}
	for i := range s.list {
		if s.list[i].k == k {
			last := len(s.list) - 1
			s.list[i] = s.list[last]
			s.list = s.list[:last]
			return
		}
	}
}

// reuse returns s emptied, keeping its slice but not its map.
func (s *smallMap[K, V]) reuse() smallMap[K, V] {
	return smallMap[K, V]{list: s.list[:0]}
}
