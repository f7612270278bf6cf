package pdfscan

import "bytes"

// usedKeys are the dictionary keys the scanner reads. With parser.shallow,
// the values of other keys of a top-level dictionary (a page's /Resources,
// /Annots, /Group...) are skipped without being built: parsing them was a
// third of the time on large documents.
var usedKeys = map[string]bool{
	"Type": true, "Kids": true, "MediaBox": true, "CropBox": true, "Rotate": true,
	"Pages": true, "Root": true, "Prev": true, "Encrypt": true, "XRefStm": true,
	"Size": true, "W": true, "Index": true, "Length": true, "Filter": true,
	"DecodeParms": true, "N": true, "First": true,
}

// skipValue skips the value of a dictionary entry. A value that is a
// number or a reference is parsed as usual (it is small); containers and
// strings are scanned for their end.
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
	case c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9'):
		_, err := p.numberOrRef()
		return err
	}
	_, err := p.object() // a name or a keyword
	return err
}

// skipContainer skips a string, hex string, array or dictionary, with
// whatever it nests.
func (p *parser) skipContainer() error {
	depth := 0
	for {
		p.skipSpace()
		if p.pos >= len(p.b) {
			return p.short()
		}
		switch c := p.b[p.pos]; {
		case c == '(':
			if _, err := p.literalString(); err != nil {
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
			if _, err := p.hexString(); err != nil {
				return err
			}
		case c == '>' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '>', c == ']':
			depth--
			p.pos += opener(c)
		case c == '>':
			return p.short() // half of ">>", or damage
		case c == '/':
			p.pos++
			for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
				p.pos++
			}
		case isRegular(c):
			for p.pos < len(p.b) && isRegular(p.b[p.pos]) {
				p.pos++
			}
		default: // ')', '{', '}': not valid here, but harmless
			p.pos++
		}
		if depth <= 0 {
			return nil
		}
	}
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
	if usedKeys[string(key)] || bytes.IndexByte(key, '#') >= 0 {
		return false, nil
	}
	p.pos = end
	return true, p.skipValue()
}
