package pdfscan

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// scalar is a number or a reference as numberOrRef reads it, unboxed: an
// Object holding a number over 255 or a Ref is an allocation.
type scalar struct {
	kind   uint8 // isInt, isReal or isRef
	i, gen int64 // an integer, or a reference's number and generation
	f      float64
}

const (
	isInt = iota
	isReal
	isRef
)

func (s scalar) float() float64 {
	if s.kind == isInt {
		return float64(s.i)
	}
	return s.f
}

// numberOrRef reads a number; an unsigned integer followed by another and
// "R" is a reference.
func (p *parser) numberOrRef() (Object, error) {
	v, err := p.scalar()
	switch {
	case err != nil:
		return nil, err
	case v.kind == isRef && v.gen == 0 && v.i < int64(len(smallRefs())):
		return smallRefs()[v.i], nil
	case v.kind == isRef:
		return Ref{Num: int(v.i), Gen: int(v.gen)}, nil
	case v.kind == isInt:
		return v.i, nil
	}
	return v.f, nil
}

// smallRefs are the references "n 0 R" for n below 4096, boxed once (as
// the runtime boxes small integers): an Object holding a Ref is an
// allocation, and page trees are references to a document's first objects.
var smallRefs = sync.OnceValue(func() *[4096]Object {
	var t [4096]Object
	for i := range t {
		t[i] = Ref{Num: i}
	}
	return &t
})

// scalar is numberOrRef without the boxing.
func (p *parser) scalar() (scalar, error) {
	start := p.pos
	n, err := p.number()
	if err != nil || n.kind != isInt || p.b[start] == '+' || p.b[start] == '-' {
		return n, err
	}
	save := p.pos
	p.skipSpace()
	if p.pos >= len(p.b) {
		if !p.eof {
			return scalar{}, errShort
		}
		p.pos = save
		return n, nil
	}
	if c := p.b[p.pos]; c < '0' || c > '9' {
		p.pos = save
		return n, nil
	}
	g, err := p.number()
	if err != nil {
		return scalar{}, err
	}
	p.skipSpace()
	if p.pos >= len(p.b) && !p.eof {
		return scalar{}, errShort
	}
	if g.kind == isInt && p.pos < len(p.b) && p.b[p.pos] == 'R' &&
		(p.pos+1 == len(p.b) || !isRegular(p.b[p.pos+1])) {
		if p.pos+1 == len(p.b) && !p.eof {
			return scalar{}, errShort
		}
		p.pos++
		return scalar{kind: isRef, i: min(n.i, 1<<40), gen: min(g.i, 1<<40)}, nil
	}
	p.pos = save
	return n, nil
}

// number reads an integer or a real. Malformed numbers that PDF writers
// are known to produce ("--1", "1.2.3") are read as far as they make sense.
func (p *parser) number() (scalar, error) {
	start := p.pos
	for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
		p.pos++
	}
	if p.pos == len(p.b) && !p.eof {
		return scalar{}, errShort
	}
	if v, ok := digits(p.b[start:p.pos]); ok {
		return scalar{kind: isInt, i: v}, nil // the common case, without strconv's allocations
	}
	if v, ok := decimal(p.b[start:p.pos]); ok {
		return scalar{kind: isReal, f: v}, nil // the next commonest, in boxes
	}
	s := string(p.b[start:p.pos])
	if strings.IndexByte(s, '.') < 0 { // a real fails ParseInt with an allocated error
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return scalar{kind: isInt, i: v}, nil
		}
	}
	neg := false
	for len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = neg || s[0] == '-'
		s = s[1:]
	}
	end := 0
	dot := false
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' && !dot) {
		dot = dot || s[end] == '.'
		end++
	}
	v, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		v = 0 // "-" or ".": PDF readers take these as 0
	}
	if neg {
		v = -v
	}
	return scalar{kind: isReal, f: v}, nil
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

// quad is a page box read by parser.quad: what doc.numbers makes of an
// Array of 4 direct numbers. Dictionaries hold a *quad, which
// source.recycle takes back with them.
type quad [4]float64

// quad reads a direct array of 4 numbers, as page boxes are written, into
// one value: as an Array of boxed numbers, a box was up to 6 allocations.
// ok is false, with pos unchanged, for anything else (references, more or
// fewer items, data that runs out), which object then reads as before.
func (p *parser) quad() (quad, bool) {
	var q quad
	save := p.pos
	p.skipSpace()
	if p.pos >= len(p.b) || p.b[p.pos] != '[' {
		p.pos = save
		return q, false
	}
	p.pos++
	for i := range q {
		p.skipSpace()
		if p.pos >= len(p.b) {
			p.pos = save
			return q, false
		}
		if !isNumberStart(p.b[p.pos]) {
			p.pos = save
			return q, false
		}
		v, err := p.scalar()
		if err != nil || v.kind == isRef {
			p.pos = save
			return q, false
		}
		q[i] = v.float()
	}
	p.skipSpace()
	if p.pos >= len(p.b) || p.b[p.pos] != ']' {
		p.pos = save
		return q, false
	}
	p.pos++
	return q, true
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decimal reads a real written as [+-]digits.digits with at most 15
// digits, as strconv.ParseFloat would (one correctly rounded division of
// two exact values), without its allocations; ok is false for anything
// else, which number reads the slow way.
func decimal(b []byte) (float64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	var m int64
	n, frac, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + int64(c-'0')
			if n++; dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if !dot || n == 0 || n > 15 {
		return 0, false
	}
	v := float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, true
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
