package pdfscan

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
)

// Entry types of the cross-reference table; entryUnset is an object no
// section mentioned.
const (
	entryUnset = iota
	entryFree
	entryInUse      // off is a file offset, gen a generation
	entryCompressed // off is an object stream's number, gen the index in it
)

type xrefEntry struct {
	off int64
	gen uint32
	sec uint16 // the section (0 = newest) that defined the entry
	typ uint8
}

// xrefTable is the merged cross-reference data. Sections are read from the
// newest to the oldest and the first definition of an object wins, so
// incremental updates (new, redefined and deleted objects) take effect.
type xrefTable struct {
	e   []xrefEntry
	max int // object numbers must be below
}

// set records e for object num unless a newer section defined it. In a
// hybrid file, the section's /XRefStm entries replace the free entries of
// the section's own table: that is how compressed objects are hidden from
// readers of PDF 1.4.
func (t *xrefTable) set(num int64, e xrefEntry, hybrid bool) error {
	if num < 0 || num >= int64(t.max) {
		return limit("object number %d over %d", num, t.max)
	}
	t.grow(num + 1)
	old := &t.e[num]
	if old.typ == entryUnset || hybrid && old.sec == e.sec && old.typ == entryFree {
		*old = e
	}
	return nil
}

// grow makes room for objects below n (at most max) in one allocation:
// growing entry by entry, by a quarter each time past a few hundred
// entries, allocated five times the table on large documents.
func (t *xrefTable) grow(n int64) {
	n = min(n, int64(t.max))
	if old := len(t.e); int64(old) < n {
		t.e = slices.Grow(t.e, int(n)-old)[:n]
		clear(t.e[old:]) // a pooled table's array holds another's entries
	}
}

func (t *xrefTable) lookup(num int) xrefEntry {
	if num < 0 || num >= len(t.e) {
		return xrefEntry{}
	}
	return t.e[num]
}

// maxSections bounds a /Prev chain; real files have a few updates.
const maxSections = 4096

// readXRef reads every section from startxref back along /Prev. A /Prev
// loop ends the chain: its sections were read already.
func (d *doc) readXRef() error {
	d.xref.max = d.lim.MaxObjects
	off, err := d.startxref()
	if err != nil {
		return err
	}
	seen := map[int64]bool{}
	for sec := 0; !seen[off]; sec++ {
		if sec == maxSections {
			return limit("more than %d cross-reference sections", maxSections)
		}
		seen[off] = true
		trailer, err := d.readSection(off, uint16(sec))
		if err != nil {
			return err
		}
		if _, ok := trailer["Encrypt"]; ok {
			return ErrEncrypted
		}
		if _, ok := d.root.(Ref); !ok {
			d.root = trailer["Root"] // the newest trailer that has one
		}
		prev, ok := trailer["Prev"].(int64)
		d.src.recycle(trailer) // parsed here, not referred to
		if !ok {
			break
		}
		off = prev
	}
	if _, ok := d.root.(Ref); !ok {
		return damaged("trailer has no /Root reference")
	}
	return nil
}

// startxref reads the offset after the last "startxref" near the end.
func (d *doc) startxref() (int64, error) {
	const tail = 4096
	off := max(0, d.src.size-tail)
	b, err := d.src.read(off, tail)
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndex(b, []byte("startxref"))
	if i < 0 {
		return 0, damaged("no startxref")
	}
	p := parser{b: b[i+len("startxref"):], eof: true}
	p.skipSpace()
	if p.pos < len(p.b) && isNumberStart(p.b[p.pos]) {
		// What object reads there, unboxed.
		if v, err := p.scalar(); err == nil && v.kind == isInt && v.i >= 0 && v.i < d.src.size {
			return v.i, nil
		}
	}
	return 0, damaged("bad startxref")
}

// readSection reads the table or stream at off and returns its trailer.
func (d *doc) readSection(off int64, sec uint16) (Dict, error) {
	b, err := d.src.read(off, 16)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(bytes.TrimLeft(b, "\x00\t\n\f\r "), []byte("xref")) {
		return d.readTable(off, sec)
	}
	return d.readXRefStream(off, sec, false)
}

// readTable reads a classic "xref" table, then its trailer. Entries are
// parsed in their fixed 20-byte form, or token by token when a writer
// strayed from it.
func (d *doc) readTable(off int64, sec uint16) (Dict, error) {
	tr := &d.tr
	tr.start(&d.src, off)
	if tok, err := tr.token(); err != nil || tok != "xref" {
		return nil, damaged("no xref at %d", off)
	}
	for {
		if err := d.ctx.Err(); err != nil {
			return nil, err
		}
		tok, err := tr.token()
		if err != nil {
			return nil, err
		}
		if tok == "trailer" {
			break
		}
		start, err1 := strconv.ParseInt(tok, 10, 64)
		countTok, err2 := tr.token()
		count, err3 := strconv.ParseInt(countTok, 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil || start < 0 || count < 0 {
			return nil, damaged("bad xref subsection at %d", tr.pos)
		}
		if start+count > int64(d.xref.max) {
			return nil, limit("xref subsection %d+%d over %d objects", start, count, d.xref.max)
		}
		if d.src.size-tr.pos >= 20*count {
			d.xref.grow(start + count) // sized by entries that may exist
		}
		for i := range count {
			o, g, typ, err := tr.entry()
			if err != nil {
				return nil, err
			}
			e := xrefEntry{off: o, gen: uint32(min(g, 65535)), sec: sec, typ: entryFree}
			if typ == 'n' {
				e.typ = entryInUse
			}
			if err := d.xref.set(start+i, e, false); err != nil {
				return nil, err
			}
		}
	}
	var trailer Dict
	err := d.src.parseAt(tr.pos, func(p *parser) error {
		o, err := p.object()
		trailer, _ = o.(Dict)
		return err
	})
	if err != nil {
		return nil, err
	}
	if trailer == nil {
		return nil, damaged("no trailer dictionary at %d", tr.pos)
	}
	if xs, ok := trailer["XRefStm"].(int64); ok {
		if _, err := d.readXRefStream(xs, sec, true); err != nil {
			return nil, err
		}
	}
	return trailer, nil
}

// readXRefStream reads a cross-reference stream (PDF 1.5); its dictionary
// is the trailer. hybrid marks the /XRefStm of a classic table.
func (d *doc) readXRefStream(off int64, sec uint16, hybrid bool) (Dict, error) {
	obj, start, err := d.src.objectAt(off, -1)
	if err != nil {
		return nil, err
	}
	dict, _ := obj.(Dict)
	if dict == nil || start < 0 || dict["Type"] != Name("XRef") {
		return nil, damaged("no xref stream at %d", off)
	}
	data, err := d.decodeStream(dict, start, d.xrefData)
	if err != nil {
		return nil, err
	}
	d.xrefData = data[:0] // for the next section, or the next scan
	var w [3]int
	wa, _ := dict["W"].(Array)
	if len(wa) != 3 {
		return nil, damaged("xref stream /W is %v", dict["W"])
	}
	width := 0
	for i, v := range wa {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 8 {
			return nil, damaged("xref stream /W is %v", wa)
		}
		w[i] = int(n)
		width += w[i]
	}
	if w[1] == 0 {
		return nil, damaged("xref stream /W is %v", wa)
	}
	index, _ := dict["Index"].(Array)
	if index == nil {
		size, _ := dict["Size"].(int64)
		index = Array{int64(0), size}
	}
	if len(index)%2 != 0 {
		return nil, damaged("xref stream /Index is odd")
	}
	for i := 0; i < len(index); i += 2 {
		first, ok1 := index[i].(int64)
		count, ok2 := index[i+1].(int64)
		if !ok1 || !ok2 || first < 0 || count < 0 {
			return nil, damaged("bad xref stream /Index")
		}
		if first+count > int64(d.xref.max) {
			return nil, limit("xref stream section %d+%d over %d objects", first, count, d.xref.max)
		}
		if int64(len(data)) >= count*int64(width) {
			d.xref.grow(first + count) // sized by data that exists
		}
		for j := range count {
			if len(data) < width {
				return nil, damaged("xref stream data ends early")
			}
			f := [3]int64{1, 0, 0} // type 1 when its field is absent
			for k := range 3 {
				if w[k] > 0 {
					f[k] = field(data[:w[k]])
					data = data[w[k]:]
				}
			}
			e := xrefEntry{off: f[1], gen: uint32(min(f[2], 1<<32-1)), sec: sec}
			switch f[0] {
			case 0:
				e.typ = entryFree
			case 1:
				e.typ = entryInUse
			case 2:
				e.typ = entryCompressed
			default:
				continue // a reference to null, by the spec
			}
			if err := d.xref.set(first+j, e, hybrid); err != nil {
				return nil, err
			}
		}
	}
	return dict, nil
}

// field decodes a big-endian xref stream field.
func field(b []byte) int64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return int64(v & (1<<62 - 1))
}
