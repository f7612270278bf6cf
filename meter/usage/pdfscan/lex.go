package pdfscan

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// PDF objects as the parser returns them. An Object is one of: nil (null),
// bool, int64, float64, Name, String, Array, Dict, Ref, or keyword for a
// bare word that is not a value ("obj", "stream", "R"...).
type (
	Object  = any
	Name    string
	String  []byte
	Array   []Object
	Dict    map[Name]Object
	Ref     struct{ Num, Gen int }
	keyword string
)

// errShort means the data ended inside an object: the caller reads a larger
// window and parses again, unless the data was complete.
var errShort = errors.New("pdfscan: object runs past the data")

// maxNesting bounds nested arrays and dictionaries: deep nesting is only
// ever an attack on a recursive parser.
const maxNesting = 128

// parser reads objects from b. When eof is set, b holds all the data there
// is (a decoded object stream, the end of the file): running out of data
// ends a value instead of asking for more.
type parser struct {
	b       []byte
	pos     int
	eof     bool
	depth   int
	shallow bool      // skip the values of unused keys (skip.go)
	free    *freeList // to fill instead of allocating (source.recycle)
}

// isWhite is PDF white space, plus the vertical tab that pdfcpu (and so
// Go upstreams) also skips: a name such as "/Kids\v[...]" must not hide
// kids that such a reader sees.
func isWhite(c byte) bool { return charClass[c] == white }

func isDelim(c byte) bool { return charClass[c] == delim }

func isRegular(c byte) bool { return charClass[c] == 0 }

// charClass tells white space and delimiters from regular characters in
// one load: these tests were a tenth of a small document's scan.
var charClass = func() (t [256]uint8) {
	for _, c := range []byte(" \n\r\t\f\x00\v") {
		t[c] = white
	}
	for _, c := range []byte("()<>[]{}/%") {
		t[c] = delim
	}
	return t
}()

const (
	white = 1 + iota
	delim
)

// isNumberStart is where object reads a number (or a reference).
func isNumberStart(c byte) bool { return c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9') }

// skipSpace skips white space and comments.
func (p *parser) skipSpace() {
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if isWhite(c) {
			p.pos++
			continue
		}
		if c != '%' {
			return
		}
		for p.pos < len(p.b) && p.b[p.pos] != '\n' && p.b[p.pos] != '\r' {
			p.pos++
		}
	}
}

// short is errShort unless the data is complete, where running out of it
// is damage.
func (p *parser) short() error {
	if p.eof {
		return damaged("unexpected end of data at %d", p.pos)
	}
	return errShort
}

// object parses the next object, resolving "n g R" into a Ref.
func (p *parser) object() (Object, error) {
	p.skipSpace()
	if p.pos >= len(p.b) {
		return nil, p.short()
	}
	switch c := p.b[p.pos]; {
	case c == '/':
		return p.name()
	case c == '(':
		return p.literalString()
	case c == '<':
		if p.pos+1 >= len(p.b) {
			return nil, p.short()
		}
		if p.b[p.pos+1] == '<' {
			return p.dict()
		}
		return p.hexString()
	case c == '[':
		return p.array()
	case isNumberStart(c):
		return p.numberOrRef()
	case isRegular(c):
		start := p.pos
		for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
			p.pos++
		}
		if !p.eof && p.pos == len(p.b) {
			return nil, errShort // the word may go on
		}
		// The words of every object ("obj", "R"...) as constants, which
		// the compiler keeps in static data: a keyword built from the
		// bytes was two allocations per object read.
		switch w := p.b[start:p.pos]; string(w) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		case "obj":
			return keyword("obj"), nil
		case "endobj":
			return keyword("endobj"), nil
		case "stream":
			return keyword("stream"), nil
		case "R":
			return keyword("R"), nil
		default:
			return keyword(w), nil
		}
	case c == '>' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '>':
		p.pos += 2
		return keyword(">>"), nil
	default:
		p.pos++
		return keyword(string(c)), nil
	}
}

func (p *parser) name() (Object, error) {
	p.pos++ // '/'
	start := p.pos
	for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
		p.pos++
	}
	if p.pos == len(p.b) && !p.eof {
		return nil, errShort
	}
	raw := p.b[start:p.pos]
	if n, ok := commonName(raw); ok {
		return n, nil
	}
	if bytes.IndexByte(raw, '#') < 0 {
		return Name(raw), nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '#' && i+2 < len(raw) {
			if v, err := strconv.ParseUint(string(raw[i+1:i+3]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, raw[i])
	}
	return Name(out), nil
}

func (p *parser) nest() error {
	if p.depth++; p.depth > maxNesting {
		return fmt.Errorf("%w: objects nested deeper than %d", ErrLimit, maxNesting)
	}
	return nil
}

func (p *parser) array() (Object, error) {
	p.pos++ // '['
	if err := p.nest(); err != nil {
		return nil, err
	}
	// Items are gathered on the free list's stack, then copied once at
	// their size: a /Kids array grown by append was an allocation per
	// doubling, and garbage twice its size. Without a free list, a local
	// stack (4 items, boxes, in one allocation).
	var local Array
	stack := &local
	if p.free != nil {
		stack = &p.free.items
	} else {
		local = make(Array, 0, 4)
	}
	base := len(*stack)
	defer func() {
		if p.free != nil {
			clear((*stack)[base:]) // no document objects kept
			*stack = (*stack)[:base]
		}
		p.depth--
	}()
	for {
		p.skipSpace()
		if p.pos >= len(p.b) {
			return nil, p.short()
		}
		if p.b[p.pos] == ']' {
			p.pos++
			if p.free == nil {
				return local, nil
			}
			return append(make(Array, 0, len(*stack)-base), (*stack)[base:]...), nil
		}
		o, err := p.object()
		if err != nil {
			return nil, err
		}
		if k, ok := o.(keyword); ok {
			return nil, damaged("unexpected %q in array", string(k))
		}
		*stack = append(*stack, o)
	}
}

func (p *parser) dict() (Object, error) {
	p.pos += 2 // "<<"
	if err := p.nest(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	var d Dict
	if p.free != nil && len(p.free.dicts) > 0 {
		d = p.free.dicts[len(p.free.dicts)-1]
		p.free.dicts = p.free.dicts[:len(p.free.dicts)-1]
	} else {
		d = Dict{}
	}
	for {
		p.skipSpace()
		if p.pos+1 >= len(p.b) {
			return nil, p.short()
		}
		if p.b[p.pos] == '>' && p.b[p.pos+1] == '>' {
			p.pos += 2
			return d, nil
		}
		if p.shallow && p.depth == 1 && p.b[p.pos] == '/' {
			if skip, err := p.skipUnused(); err != nil || skip {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		k, err := p.object()
		if err != nil {
			return nil, err
		}
		key, ok := k.(Name)
		if !ok {
			return nil, damaged("dictionary key is %T at %d", k, p.pos)
		}
		if p.shallow && p.depth == 1 && (key == "MediaBox" || key == "CropBox") {
			if q, ok := p.quad(); ok {
				d[key] = p.free.newQuad(q)
				continue
			}
		}
		v, err := p.object()
		if err != nil {
			return nil, err
		}
		if kw, ok := v.(keyword); ok {
			if kw != ">>" {
				return nil, damaged("unexpected %q in dictionary", string(kw))
			}
			d[key] = nil // a key without a value, as some writers leave
			return d, nil
		}
		d[key] = v
	}
}

// commonName returns the names page trees and object streams are made of
// without allocating them: each a constant converted to an Object, which
// the compiler keeps in static data (a Name variable would be boxed on
// the heap at every return).
func commonName(raw []byte) (Object, bool) {
	switch string(raw) {
	case "Type":
		return Name("Type"), true
	case "Page":
		return Name("Page"), true
	case "Pages":
		return Name("Pages"), true
	case "Kids":
		return Name("Kids"), true
	case "MediaBox":
		return Name("MediaBox"), true
	case "CropBox":
		return Name("CropBox"), true
	case "Rotate":
		return Name("Rotate"), true
	case "Length":
		return Name("Length"), true
	case "Filter":
		return Name("Filter"), true
	case "FlateDecode":
		return Name("FlateDecode"), true
	case "ObjStm":
		return Name("ObjStm"), true
	case "N":
		return Name("N"), true
	case "First":
		return Name("First"), true
	case "Catalog":
		return Name("Catalog"), true
	case "Count":
		return Name("Count"), true
	case "Root":
		return Name("Root"), true
	case "Size":
		return Name("Size"), true
	case "Prev":
		return Name("Prev"), true
	case "XRef":
		return Name("XRef"), true
	case "XRefStm":
		return Name("XRefStm"), true
	case "Encrypt":
		return Name("Encrypt"), true
	case "Linearized":
		return Name("Linearized"), true
	case "L":
		return Name("L"), true
	case "W":
		return Name("W"), true
	case "Index":
		return Name("Index"), true
	case "DecodeParms":
		return Name("DecodeParms"), true
	}
	return nil, false
}
