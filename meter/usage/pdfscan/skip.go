package pdfscan

import "bytes"

// usedKey reports whether the scanner reads key. With parser.shallow, the
// values of other keys of a top-level dictionary (a page's /Resources,
// /Annots, /Group...) are skipped without being built: parsing them was a
// third of the time on large documents.
func usedKey(key []byte) bool {
	switch string(key) {
	case "Type", "Kids", "MediaBox", "CropBox", "Rotate",
		"Pages", "Root", "Prev", "Encrypt", "XRefStm",
		"Size", "W", "Index", "Length", "Filter",
		"DecodeParms", "N", "First", "Count", "Linearized", "L":
		return true
	}
	return false
}

// skipValue skips the value of a dictionary entry. A value that is a
// number or a reference is scanned as numberOrRef reads it, without
// building it; containers and strings are scanned for their end.
func (p *parser) skipValue() error {
	p.skipSpace()
	if p.pos >= len(p.b) {
		return p.short()
	}
	c := p.b[p.pos]
	switch {
	case c == '>' || c == ']': // no value: the caller sees the end
		return nil
	case c == '(' || c == '[' || c == '<':
		return p.skipContainer()
	case isNumberStart(c):
		return p.skipNumberOrRef()
	}
	_, err := p.object() // a name or a keyword
	return err
}

// skipNumberOrRef moves past what numberOrRef would read.
func (p *parser) skipNumberOrRef() error {
	start := p.pos
	isInt, err := p.skipNumber()
	if err != nil || !isInt || p.b[start] == '+' || p.b[start] == '-' {
		return err
	}
	save := p.pos
	p.skipSpace()
	if p.pos >= len(p.b) {
		if !p.eof {
			return errShort
		}
		p.pos = save
		return nil
	}
	if c := p.b[p.pos]; c < '0' || c > '9' {
		p.pos = save
		return nil
	}
	gInt, err := p.skipNumber()
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos >= len(p.b) && !p.eof {
		return errShort
	}
	if gInt && p.pos < len(p.b) && p.b[p.pos] == 'R' &&
		(p.pos+1 == len(p.b) || !isRegular(p.b[p.pos+1])) {
		if p.pos+1 == len(p.b) && !p.eof {
			return errShort
		}
		p.pos++
		return nil
	}
	p.pos = save
	return nil
}

// skipNumber moves past what number would read and reports whether it is
// an integer, without building it.
func (p *parser) skipNumber() (bool, error) {
	start := p.pos
	for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
		p.pos++
	}
	if p.pos == len(p.b) && !p.eof {
		return false, errShort
	}
	if _, ok := digits(p.b[start:p.pos]); ok {
		return true, nil
	}
	p.pos = start
	n, err := p.number()
	return n.kind == isInt, err
}

// skipping marks the bytes skipContainer must look at: everything else
// (white space, names, numbers, words) it steps over.
var skipping = [256]bool{'(': true, '<': true, '>': true, '[': true, ']': true, '%': true}

// skipContainer skips a string, hex string, array or dictionary, with
// whatever it nests.
func (p *parser) skipContainer() error {
	depth := 0
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if !skipping[c] {
			p.pos++
			continue
		}
		switch {
		case c == '%':
			p.skipSpace()
			continue
		case c == '(':
			if err := p.skipLiteralString(); err != nil {
				return err
			}
		case c == '<' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '<', c == '[':
			if depth++; depth > maxNesting {
				return limit("objects nested deeper than %d", maxNesting)
			}
			p.pos += opener(c)
		case c == '<':
			if p.pos+1 >= len(p.b) {
				return p.short()
			}
			if err := p.skipHexString(); err != nil {
				return err
			}
		case c == '>' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '>', c == ']':
			depth--
			p.pos += opener(c)
		default: // '>'
			return p.short() // half of ">>", or damage
		}
		if depth <= 0 {
			return nil
		}
	}
	return p.short()
}

// skipLiteralString moves past what literalString reads.
func (p *parser) skipLiteralString() error {
	p.pos++ // '('
	level := 1
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		p.pos++
		switch c {
		case '(':
			level++
		case ')':
			if level--; level == 0 {
				return nil
			}
		case '\\':
			if p.pos >= len(p.b) {
				return p.short()
			}
			p.pos++ // what follows an escape never ends the string
		}
	}
	return p.short()
}

// hexDigit marks the bytes a hex string may hold before its '>'.
var hexDigit = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEF \n\r\t\f\x00") {
		t[c] = true
	}
	return t
}()

// skipHexString moves past what hexString reads.
func (p *parser) skipHexString() error {
	p.pos++ // '<'
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		p.pos++
		if c == '>' {
			return nil
		}
		if !hexDigit[c] {
			return damaged("bad hex string at %d", p.pos-1)
		}
	}
	return p.short()
}

// opener is the length of the delimiter starting with c: "<<" and ">>"
// are two bytes, "[" and "]" one.
func opener(c byte) int {
	if c == '<' || c == '>' {
		return 2
	}
	return 1
}

// uint reads an unsigned decimal integer, as in an object stream's header.
func (p *parser) uint() (int64, bool) {
	p.skipSpace()
	start := p.pos
	var v int64
	for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' && p.pos-start < 18 {
		v = v*10 + int64(p.b[p.pos]-'0')
		p.pos++
	}
	return v, p.pos > start
}

// skipUnused skips the key at pos and its value when the key is not used,
// and reports whether it did.
func (p *parser) skipUnused() (bool, error) {
	end := p.pos + 1
	for end < len(p.b) && isRegular(p.b[end]) {
		end++
	}
	if end == len(p.b) && !p.eof {
		return false, errShort
	}
	key := p.b[p.pos+1 : end]
	if usedKey(key) || bytes.IndexByte(key, '#') >= 0 {
		return false, nil
	}
	p.pos = end
	return true, p.skipValue()
}
