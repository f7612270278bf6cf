package pricing

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The JSON action language is JSONPath (RFC 9535), a subset: the segments
// .name ['name'] [n] [*] .* and .. (descendants), filters [?expr] with
// comparisons (== != < <= > >=), && || ! and parentheses, existence
// tests, and the functions length(), count(), match() and search(). Not
// supported: slices [a:b:c] and value(). One extension: a query may be
// followed by a comparison with a literal (`$.output.type == 'pdfa'`),
// which keeps only the selected nodes that satisfy it.

// jsonQuery is one compiled query.
type jsonQuery struct {
	src  string
	path []segment
	op   string // top-level comparison, or ""
	lit  any
}

type segment struct {
	descendant bool
	sels       []selector
}

type selKind int

const (
	selName selKind = iota
	selIndex
	selWild
	selFilter
)

type selector struct {
	kind   selKind
	name   string
	index  int
	filter logical
}

// logical is a filter expression; operand a value in a comparison (not
// named comparable, which would shadow the predeclared identifier).
type logical interface{}

type (
	orExpr  struct{ a, b logical }
	andExpr struct{ a, b logical }
	notExpr struct{ a logical }
	// existExpr is true when its query selects at least one node.
	existExpr struct{ q relQuery }
	cmpExpr   struct {
		op   string
		l, r operand
	}
	// funcExpr is match() or search() used as a test.
	funcExpr struct {
		name string
		arg  operand
		re   *regexp.Regexp
	}
)

type operand interface{}

type (
	litVal   struct{ v any }
	relQuery struct {
		root bool // $ rather than @
		path []segment
	}
	lengthFn struct{ arg operand }
	countFn  struct{ q relQuery }
)

type jpParser struct {
	s   string
	pos int
}

// compileQuery parses one query of a per_match rule.
func compileQuery(src string) (*jsonQuery, error) {
	p := &jpParser{s: src}
	p.ws()
	if !p.eat("$") {
		return nil, p.errf("a query starts with $")
	}
	path, err := p.segments()
	if err != nil {
		return nil, err
	}
	q := &jsonQuery{src: src, path: path}
	p.ws()
	if op := p.cmpOp(); op != "" {
		p.ws()
		lit, ok, err := p.literal()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, p.errf("expected a literal (number, 'string', true, false or null) after %s", op)
		}
		q.op, q.lit = op, lit
		p.ws()
	}
	if p.pos < len(p.s) {
		return nil, p.errf("unexpected %q", p.rest())
	}
	return q, nil
}

func (p *jpParser) errf(format string, args ...any) error {
	return fmt.Errorf("query %q at offset %d: %s", p.s, p.pos, fmt.Sprintf(format, args...))
}

func (p *jpParser) rest() string { return limit(p.s[p.pos:], 20) }

func (p *jpParser) ws() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *jpParser) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *jpParser) peek(tok string) bool { return strings.HasPrefix(p.s[p.pos:], tok) }

// segments reads segments until none starts here.
func (p *jpParser) segments() ([]segment, error) {
	var segs []segment
	for {
		save := p.pos
		p.ws()
		var seg segment
		switch {
		case p.eat(".."):
			seg.descendant = true
			if p.peek("[") {
				sels, err := p.bracket()
				if err != nil {
					return nil, err
				}
				seg.sels = sels
			} else if p.eat("*") {
				seg.sels = []selector{{kind: selWild}}
			} else if name := p.shorthand(); name != "" {
				seg.sels = []selector{{kind: selName, name: name}}
			} else {
				return nil, p.errf("expected a name, * or [ after ..")
			}
		case p.eat("."):
			if p.eat("*") {
				seg.sels = []selector{{kind: selWild}}
			} else if name := p.shorthand(); name != "" {
				seg.sels = []selector{{kind: selName, name: name}}
			} else {
				return nil, p.errf("expected a name or * after .")
			}
		case p.peek("["):
			sels, err := p.bracket()
			if err != nil {
				return nil, err
			}
			seg.sels = sels
		default:
			p.pos = save
			return segs, nil
		}
		if len(segs) >= 32 {
			return nil, p.errf("more than 32 segments")
		}
		segs = append(segs, seg)
	}
}

// shorthand reads a member name: a letter, _ or non-ASCII, then those or digits.
func (p *jpParser) shorthand() string {
	start := p.pos
	for p.pos < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if !(r == '_' || r >= 0x80 || unicode.IsLetter(r) || (p.pos > start && unicode.IsDigit(r))) {
			break
		}
		p.pos += n
	}
	return p.s[start:p.pos]
}

func (p *jpParser) bracket() ([]selector, error) {
	p.eat("[")
	var sels []selector
	for {
		p.ws()
		sel, err := p.selector()
		if err != nil {
			return nil, err
		}
		sels = append(sels, sel)
		p.ws()
		if p.eat("]") {
			return sels, nil
		}
		if !p.eat(",") {
			return nil, p.errf("expected , or ] in a bracket")
		}
	}
}

func (p *jpParser) selector() (selector, error) {
	switch {
	case p.eat("*"):
		return selector{kind: selWild}, nil
	case p.eat("?"):
		p.ws()
		f, err := p.or()
		return selector{kind: selFilter, filter: f}, err
	case p.peek("'") || p.peek(`"`):
		s, err := p.str()
		return selector{kind: selName, name: s}, err
	}
	start := p.pos
	p.eat("-")
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if p.peek(":") {
		return selector{}, p.errf("slices are not supported")
	}
	n, err := strconv.Atoi(p.s[start:p.pos])
	if err != nil {
		p.pos = start
		return selector{}, p.errf("expected a name, index, * or ?filter, got %q", p.rest())
	}
	return selector{kind: selIndex, index: n}, nil
}
