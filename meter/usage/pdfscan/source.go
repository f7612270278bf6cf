package pdfscan

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// source reads windows of the file. Objects are parsed from a window that
// grows until the object fits, so a page dictionary costs one small read.
type source struct {
	r    *recorder
	size int64
	buf  []byte // reused for small windows
	// pooled is buf's pool entry, when it came from windowPool.
	pooled *[]byte
	p      parser   // parseAt's
	free   freeList // recycled, for the parsers of this source
}

// recorder keeps the first failure of r, to tell it apart from damage
// when a decoder reports it.
type recorder struct {
	r   io.ReaderAt
	err error
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

const (
	firstWindow = 2 << 10
	maxWindow   = 32 << 20 // the largest object (not stream) parsed
	reuseWindow = 64 << 10 // larger windows are not kept between reads
)

// windowPool keeps full-size reuse windows between scans: a gateway scans
// a document per request, and a fresh 64 KB window each time was most of
// what a small document's scan allocated.
var windowPool = sync.Pool{New: func() any { b := make([]byte, reuseWindow); return &b }}

// window returns the reuse window, from the pool whatever the file's
// size: a window of exactly a small file's size was an allocation of up
// to 64 KB on every request.
func (s *source) window() []byte {
	s.pooled = windowPool.Get().(*[]byte)
	return *s.pooled
}

// release gives the pooled window back; the source must not read after.
func (s *source) release() {
	if s.pooled != nil {
		windowPool.Put(s.pooled)
		s.pooled, s.buf = nil, nil
	}
}

// read returns the n bytes at off, fewer at the end of the file. The slice
// is only valid until the next read.
func (s *source) read(off int64, n int) ([]byte, error) {
	if off < 0 || off >= s.size {
		return nil, damaged("offset %d outside the file", off)
	}
	n = int(min(int64(n), s.size-off))
	var b []byte
	if n <= reuseWindow {
		if cap(s.buf) < n {
			s.buf = s.window()
		}
		b = s.buf[:n]
	} else {
		b = make([]byte, n)
	}
	m, err := s.r.ReadAt(b, off)
	if m == n {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return nil, damaged("file ends before its size")
	}
	return nil, &ReadError{err}
}

// parseAt runs f on a parser over the data at off, with larger windows
// while f runs out of data.
func (s *source) parseAt(off int64, f func(p *parser) error) error {
	for w := firstWindow; ; w *= 8 {
		b, err := s.read(off, w)
		if err != nil {
			return err
		}
		// The source's own parser: f(&p) of a local one moved it to the
		// heap on every object read. Reads never nest (f only parses).
		s.p = parser{b: b, eof: off+int64(len(b)) == s.size, shallow: true, free: &s.free}
		err = f(&s.p)
		s.p.b = nil
		if !errors.Is(err, errShort) {
			return err
		}
		if w >= maxWindow {
			return limit("object at %d longer than %d bytes", off, maxWindow)
		}
	}
}

// recycle gives back a dictionary the scan is done with: the parsers fill
// it again instead of allocating a map per object (two allocations, a
// fifth of a small document's). Only a top-level dictionary just fetched
// by reference may be given, once: nothing else refers to it (objects are
// parsed anew at each fetch). The dictionaries in it are not recycled,
// and large ones are left to the collector.
func (s *source) recycle(d Dict) {
	if d == nil || len(d) > 32 || len(s.free.dicts) >= 8 {
		return
	}
	for _, k := range [...]Name{"MediaBox", "CropBox"} { // quad's keys: no map iteration
		if q, ok := d[k].(*quad); ok && len(s.free.quads) < 8 {
			s.free.quads = append(s.free.quads, q)
		}
	}
	clear(d)
	s.free.dicts = append(s.free.dicts, d)
}

// freeList is what recycle took back.
type freeList struct {
	dicts []Dict
	quads []*quad
	items Array // parser.array's stack, empty between objects
}

// reuse returns f for another scan, without a stack grown large.
func (f *freeList) reuse() freeList {
	if cap(f.items) > keepObjects {
		return freeList{dicts: f.dicts, quads: f.quads}
	}
	return *f
}

// newQuad returns q in a recycled *quad when there is one; f may be nil.
func (f *freeList) newQuad(q quad) *quad {
	var p *quad
	if f == nil || len(f.quads) == 0 {
		p = new(quad) // not &q: that moved q to the heap on every call
	} else {
		p = f.quads[len(f.quads)-1]
		f.quads = f.quads[:len(f.quads)-1]
	}
	*p = q
	return p
}

// objectAt parses the indirect object num that the xref places at off. For
// a stream it also returns where the stream's data starts, else -1. An
// object that is not there means the xref is wrong. num -1 takes any.
func (s *source) objectAt(off int64, num int) (Object, int64, error) {
	var obj Object
	data := int64(-1)
	err := s.parseAt(off, func(p *parser) error {
		n, err := p.object()
		if err != nil {
			return err
		}
		if _, err := p.object(); err != nil { // generation
			return err
		}
		kw, err := p.object()
		if err != nil {
			return err
		}
		if nr, ok := n.(int64); !ok || (num >= 0 && nr != int64(num)) || kw != keyword("obj") {
			return damaged("object %d is not at offset %d", num, off)
		}
		if obj, err = p.object(); err != nil {
			return err
		}
		if _, ok := obj.(Dict); !ok {
			return nil
		}
		p.skipSpace()
		rest := p.b[p.pos:]
		if len(rest) < len("stream")+2 && !p.eof {
			return errShort
		}
		if !bytes.HasPrefix(rest, []byte("stream")) {
			return nil
		}
		i := len("stream")
		switch {
		case bytes.HasPrefix(rest[i:], []byte("\r\n")):
			i += 2
		case len(rest) > i && (rest[i] == '\n' || rest[i] == '\r'):
			i++
		}
		data = off + int64(p.pos+i)
		return nil
	})
	return obj, data, err
}

// streamSection returns the encoded data of the stream whose data starts
// at start. A /Length that does not end at "endstream" is replaced by the
// distance to the next "endstream", as PDF readers do.
func (d *doc) streamSection(dict Dict, start int64) (*io.SectionReader, error) {
	length := int64(-1)
	if v, err := d.resolve(dict["Length"]); err != nil {
		return nil, err
	} else if n, ok := v.(int64); ok && n >= 0 && n <= d.src.size-start {
		length = n
	}
	if length < 0 || !d.endsAt(start+length) {
		var err error
		if length, err = d.scanEndstream(start); err != nil {
			return nil, err
		}
	}
	if length > d.lim.MaxStreamBytes {
		return nil, limit("stream of %d bytes", length)
	}
	return io.NewSectionReader(d.src.r, start, length), nil
}

var endstream = []byte("endstream")

// endsAt reports whether "endstream" follows off, after white space.
func (d *doc) endsAt(off int64) bool {
	if off >= d.src.size {
		return false
	}
	b, err := d.src.read(off, 32)
	if err != nil {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(b, "\x00\t\n\f\r "), endstream)
}

// scanEndstream finds the length of a stream from the next "endstream",
// without the end-of-line marker before it.
func (d *doc) scanEndstream(start int64) (int64, error) {
	const chunk = 256 << 10
	for off := start; off < d.src.size; off += chunk - int64(len(endstream)) {
		if off-start > d.lim.MaxStreamBytes {
			return 0, limit("stream longer than %d bytes", d.lim.MaxStreamBytes)
		}
		if err := d.ctx.Err(); err != nil {
			return 0, err
		}
		b, err := d.src.read(off, chunk)
		if err != nil {
			return 0, err
		}
		if i := bytes.Index(b, endstream); i >= 0 {
			n := off + int64(i) - start
			b = b[:i]
			if bytes.HasSuffix(b, []byte("\r\n")) {
				n -= 2
			} else if bytes.HasSuffix(b, []byte("\n")) || bytes.HasSuffix(b, []byte("\r")) {
				n--
			}
			return max(n, 0), nil
		}
		if off+int64(len(b)) >= d.src.size {
			break
		}
	}
	return 0, damaged("stream at %d has no endstream", start)
}
