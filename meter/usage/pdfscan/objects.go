package pdfscan

// maxRefChain bounds nested resolution: a /Length that is a reference to a
// reference... or an object stream whose /Length lives in itself.
const maxRefChain = 8

// resolve returns o, or the object it refers to. A reference to a free,
// missing or differently generated object is null, as the spec says.
func (d *doc) resolve(o Object) (Object, error) {
	for range maxRefChain {
		r, ok := o.(Ref)
		if !ok {
			return o, nil
		}
		var err error
		if o, _, err = d.fetch(r); err != nil {
			return nil, err
		}
	}
	return nil, damaged("reference chain longer than %d", maxRefChain)
}

// fetch reads the object r refers to; for a stream it also returns where
// its data starts (else -1).
func (d *doc) fetch(r Ref) (Object, int64, error) {
	if d.nesting++; d.nesting > maxRefChain {
		d.nesting--
		return nil, -1, damaged("object %d refers back to itself", r.Num)
	}
	defer func() { d.nesting-- }()
	if err := d.ctx.Err(); err != nil {
		return nil, -1, err
	}
	e := d.xref.lookup(r.Num)
	switch e.typ {
	case entryInUse:
		if int64(e.gen) != int64(r.Gen) {
			return nil, -1, nil
		}
		if e.off <= 0 || e.off >= d.src.size {
			return nil, -1, damaged("object %d at offset %d outside the file", r.Num, e.off)
		}
		return d.src.objectAt(e.off, r.Num)
	case entryCompressed:
		if r.Gen != 0 {
			return nil, -1, nil
		}
		o, err := d.compressed(r.Num, e)
		return o, -1, err
	}
	return nil, -1, nil
}

// compressed reads object num from the object stream e names.
func (d *doc) compressed(num int, e xrefEntry) (Object, error) {
	os, err := d.objectStream(int(e.off))
	if err != nil {
		return nil, err
	}
	idx := int(e.gen)
	if idx >= len(os.nums) || os.nums[idx] != num {
		// Some writers get the index wrong; the header names each object.
		idx = -1
		for i, n := range os.nums {
			if n == num {
				idx = i
				break
			}
		}
		if idx < 0 {
			return nil, damaged("object %d not in object stream %d", num, e.off)
		}
	}
	off := os.offs[idx]
	if off < 0 || off >= len(os.data) {
		return nil, damaged("object %d outside object stream %d", num, e.off)
	}
	p := parser{b: os.data[off:], eof: true, shallow: true, free: &d.src.free}
	return p.object()
}

// objStream is a decoded object stream: its data and, per object, its
// number and offset in the data.
type objStream struct {
	num  int
	data []byte
	nums []int
	offs []int
}

// streamCache keeps the most recently used object streams, up to maxBytes
// of decoded data (at least one stream). Page objects sit in a handful of
// streams, mostly in order, so a small cache decodes each about once. An
// evicted stream's buffers are decoded into again: a document may have
// thousands of object streams, and allocating each anew kept the garbage
// collector busy for a fifth of the scan.
type streamCache struct {
	list     []*objStream // most recent first
	bytes    int64
	maxBytes int64
	spare    *objStream // evicted, its buffers free for reuse
}

func (c *streamCache) get(num int) *objStream {
	for i, s := range c.list {
		if s.num == num {
			copy(c.list[1:i+1], c.list[:i])
			c.list[0] = s
			return s
		}
	}
	return nil
}

// has reports whether stream num is cached, without making it recent.
func (c *streamCache) has(num int) bool {
	for _, s := range c.list {
		if s.num == num {
			return true
		}
	}
	return false
}

func (c *streamCache) put(s *objStream) {
	c.list = append(c.list, nil)
	copy(c.list[1:], c.list)
	c.list[0] = s
	c.bytes += int64(cap(s.data))
	for len(c.list) > 1 && c.bytes > c.maxBytes {
		last := c.list[len(c.list)-1]
		c.bytes -= int64(cap(last.data))
		c.list[len(c.list)-1] = nil
		c.list = c.list[:len(c.list)-1]
		c.recycle(last)
	}
}

// recycle keeps s's buffers for the next stream, unless they are larger
// than the cache should hold.
func (c *streamCache) recycle(s *objStream) {
	if int64(cap(s.data)) <= c.maxBytes/4 {
		c.spare = s
	}
}

// take returns the spare stream, or a new one.
func (c *streamCache) take() *objStream {
	s := c.spare
	c.spare = nil
	if s == nil {
		s = &objStream{}
	}
	return s
}

// objectStream decodes object stream num, or takes it from the cache or
// from the prefetcher.
func (d *doc) objectStream(num int) (*objStream, error) {
	// Queue the next streams first: the worker decodes them while the
	// walk decodes or waits for this one.
	d.prefetch(num)
	if s := d.streams.get(num); s != nil {
		return s, nil
	}
	if s := d.takePrefetched(num); s != nil {
		d.streams.put(s)
		return s, nil
	}
	e := d.xref.lookup(num)
	if e.typ != entryInUse || e.gen != 0 || e.off <= 0 || e.off >= d.src.size {
		return nil, damaged("object stream %d not found", num)
	}
	obj, start, err := d.src.objectAt(e.off, num)
	if err != nil {
		return nil, err
	}
	dict, _ := obj.(Dict)
	if dict == nil || start < 0 || dict["Type"] != Name("ObjStm") {
		return nil, damaged("object %d is not an object stream", num)
	}
	n, ok1 := dict["N"].(int64)
	first, ok2 := dict["First"].(int64)
	if !ok1 || !ok2 || n < 0 || first < 0 {
		return nil, damaged("object stream %d has a bad /N or /First", num)
	}
	// Decoded into one growing scratch buffer, then copied to an exact
	// size: small documents never fill the cache to recycle its buffers,
	// and growing each stream's own buffer made more garbage than data.
	data, err := d.decodeStream(dict, start, d.scratch)
	if err != nil {
		return nil, err
	}
	d.scratch = data[:0]
	s := d.streams.take()
	if cap(s.data) < len(data) {
		if err := d.reserve(int64(len(data))); err != nil {
			return nil, err
		}
	}
	if err := s.set(num, n, first, data); err != nil {
		d.streams.recycle(s)
		return nil, err
	}
	d.src.recycle(dict)
	d.streams.put(s)
	return s, nil
}

// set makes s object stream num of n objects, from its decoded data (which
// it copies) whose first object starts at first.
func (s *objStream) set(num int, n, first int64, data []byte) error {
	if first > int64(len(data)) || n > int64(len(data))/2 {
		return damaged("object stream %d: /N %d, /First %d in %d bytes", num, n, first, len(data))
	}
	s.num, s.data = num, append(s.data[:0], data...)
	s.nums, s.offs = resize(s.nums, int(n)), resize(s.offs, int(n))
	p := parser{b: data[:first], eof: true}
	for i := range int(n) {
		nrInt, ok1 := p.uint()
		offInt, ok2 := p.uint()
		if !ok1 || !ok2 || offInt > int64(len(data)) {
			return damaged("object stream %d has a bad header", num)
		}
		s.nums[i] = int(min(nrInt, 1<<40))
		s.offs[i] = int(first + offInt)
	}
	return nil
}

// resize returns s with length n, reusing its array when it is large enough.
func resize(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}
