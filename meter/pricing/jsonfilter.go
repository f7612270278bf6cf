package pricing

import (
	"regexp"
	"strconv"
	"strings"
)

// The filter expressions of [?...] selectors, and literals.

func (p *jpParser) or() (logical, error) {
	a, err := p.and()
	for err == nil {
		p.ws()
		if !p.eat("||") {
			return a, nil
		}
		var b logical
		b, err = p.and()
		a = orExpr{a, b}
	}
	return nil, err
}

func (p *jpParser) and() (logical, error) {
	a, err := p.basic()
	for err == nil {
		p.ws()
		if !p.eat("&&") {
			return a, nil
		}
		var b logical
		b, err = p.basic()
		a = andExpr{a, b}
	}
	return nil, err
}

func (p *jpParser) basic() (logical, error) {
	p.ws()
	if p.eat("!") {
		p.ws()
		if p.eat("(") {
			e, err := p.paren()
			return notExpr{e}, err
		}
		if q, ok, err := p.relQuery(); ok || err != nil {
			return notExpr{existExpr{q}}, err
		}
		if f, ok, err := p.function(); ok || err != nil {
			if fe, isTest := f.(funcExpr); isTest {
				return notExpr{fe}, err
			}
			return nil, p.errf("only match() and search() can be negated")
		}
		return nil, p.errf("expected (, a query or a function after !")
	}
	if p.eat("(") {
		return p.paren()
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	p.ws()
	op := p.cmpOp()
	if op == "" {
		switch x := l.(type) {
		case relQuery:
			return existExpr{x}, nil
		case funcExpr:
			return x, nil
		}
		return nil, p.errf("expected a comparison operator")
	}
	p.ws()
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	for _, c := range []operand{l, r} {
		if q, ok := c.(relQuery); ok && !singular(q.path) {
			return nil, p.errf("a query compared with a value must select at most one node (names and indexes only)")
		}
		if _, ok := c.(funcExpr); ok {
			return nil, p.errf("match() and search() are tests, not values")
		}
	}
	return cmpExpr{op: op, l: l, r: r}, nil
}

func (p *jpParser) paren() (logical, error) {
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	p.ws()
	if !p.eat(")") {
		return nil, p.errf("expected )")
	}
	return e, nil
}

func (p *jpParser) cmpOp() string {
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if p.eat(op) {
			return op
		}
	}
	return ""
}

func (p *jpParser) operand() (operand, error) {
	if lit, ok, err := p.literal(); ok || err != nil {
		return litVal{lit}, err
	}
	if q, ok, err := p.relQuery(); ok || err != nil {
		return q, err
	}
	if f, ok, err := p.function(); ok || err != nil {
		return f, err
	}
	return nil, p.errf("expected a literal, a query (@ or $) or a function, got %q", p.rest())
}

func (p *jpParser) relQuery() (relQuery, bool, error) {
	var q relQuery
	switch {
	case p.eat("@"):
	case p.eat("$"):
		q.root = true
	default:
		return q, false, nil
	}
	path, err := p.segments()
	q.path = path
	return q, true, err
}

func singular(path []segment) bool {
	for _, s := range path {
		if s.descendant || len(s.sels) != 1 || (s.sels[0].kind != selName && s.sels[0].kind != selIndex) {
			return false
		}
	}
	return true
}

func (p *jpParser) function() (operand, bool, error) {
	var name string
	for _, f := range []string{"length", "count", "match", "search"} {
		if p.eat(f + "(") {
			name = f
			break
		}
	}
	if name == "" {
		return nil, false, nil
	}
	p.ws()
	arg, err := p.operand()
	if err != nil {
		return nil, true, err
	}
	p.ws()
	var res operand
	switch name {
	case "length":
		res = lengthFn{arg}
	case "count":
		q, ok := arg.(relQuery)
		if !ok {
			return nil, true, p.errf("count() takes a query")
		}
		res = countFn{q}
	default:
		if !p.eat(",") {
			return nil, true, p.errf("%s() takes a value and a 'regexp'", name)
		}
		p.ws()
		pat, ok, err := p.literal()
		s, isString := pat.(string)
		if err != nil || !ok || !isString {
			return nil, true, p.errf("%s(): the pattern must be a string literal", name)
		}
		if name == "match" {
			s = `\A(?:` + s + `)\z`
		}
		re, err := regexp.Compile(s) // RE2: linear time on any input
		if err != nil {
			return nil, true, p.errf("%s(): %v", name, err)
		}
		res = funcExpr{name: name, arg: arg, re: re}
		p.ws()
	}
	if !p.eat(")") {
		return nil, true, p.errf("expected ) after %s(...", name)
	}
	return res, true, nil
}

// literal reads a number, string, true, false or null.
func (p *jpParser) literal() (any, bool, error) {
	switch {
	case p.peek("'") || p.peek(`"`):
		s, err := p.str()
		return s, true, err
	case p.eat("true"):
		return true, true, nil
	case p.eat("false"):
		return false, true, nil
	case p.eat("null"):
		return nil, true, nil
	}
	start := p.pos
	for p.pos < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.pos]) >= 0 {
		p.pos++
	}
	if p.pos == start {
		return nil, false, nil
	}
	f, err := strconv.ParseFloat(p.s[start:p.pos], 64)
	if err != nil {
		p.pos = start
		return nil, true, p.errf("bad number %q", p.rest())
	}
	return f, true, nil
}

// str reads a quoted string with JSON escapes; ' strings may hold " and \'.
func (p *jpParser) str() (string, error) {
	q := p.s[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.s):
			e := p.s[p.pos+1]
			p.pos += 2
			switch e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '/', '\\', '\'', '"':
				b.WriteByte(e)
			case 'u':
				if p.pos+4 > len(p.s) {
					return "", p.errf("bad \\u escape")
				}
				n, err := strconv.ParseUint(p.s[p.pos:p.pos+4], 16, 32)
				if err != nil {
					return "", p.errf("bad \\u escape")
				}
				b.WriteRune(rune(n))
				p.pos += 4
			default:
				return "", p.errf("bad escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.errf("unterminated string")
}
