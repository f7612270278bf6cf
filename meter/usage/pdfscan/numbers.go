package pdfscan

import (
	"strconv"
	"strings"
	"sync"
)

// Numbers and references, read without boxing them where the scan can:
// an Object holding an integer over 255, a real or a Ref is an
// allocation, and page trees are made of references and boxes.

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
