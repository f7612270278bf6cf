package pricing

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// node is a value selected by a query, with the path to it.
type node struct {
	v    any
	path *pathStep
}

// pathStep is one step of a node's path, linked to its parent so that
// selecting a child costs one small allocation.
type pathStep struct {
	parent *pathStep
	name   string
	index  int
	isName bool
}

// String renders a path as $.parts[1].actions[0] (names that are not
// identifiers are bracketed: $['a b']).
func (p *pathStep) String() string {
	var steps []*pathStep
	for s := p; s != nil; s = s.parent {
		steps = append(steps, s)
	}
	var b strings.Builder
	b.WriteString("$")
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		switch {
		case !s.isName:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case isShorthand(s.name):
			b.WriteString("." + s.name)
		default:
			b.WriteString("[" + strconv.Quote(s.name) + "]")
		}
	}
	return b.String()
}

func isShorthand(s string) bool {
	p := &jpParser{s: s}
	return s != "" && p.shorthand() == s
}

// evaluator carries the document root and the step budget of one rule.
type evaluator struct {
	root  any
	steps int
}

var errTooComplex = badJSON("the JSON body is too complex to be priced", nil)

func (e *evaluator) step() error {
	if e.steps++; e.steps > maxJSONSteps {
		return errTooComplex
	}
	return nil
}

// query returns the nodes the path selects from start, in document order.
func (e *evaluator) query(start node, path []segment) ([]node, error) {
	nodes := []node{start}
	for _, seg := range path {
		var next []node
		for _, n := range nodes {
			var err error
			if seg.descendant {
				err = e.descend(n, func(d node) error { return e.apply(d, seg.sels, &next) })
			} else {
				err = e.apply(n, seg.sels, &next)
			}
			if err != nil {
				return nil, err
			}
		}
		nodes = next
		if len(nodes) == 0 {
			break
		}
	}
	return nodes, nil
}

// descend calls f on n and every node below it, parents first. The tree's
// depth is bounded by the parser, so recursion is too.
func (e *evaluator) descend(n node, f func(node) error) error {
	if err := f(n); err != nil {
		return err
	}
	return e.children(n, func(c node) error { return e.descend(c, f) })
}

func (e *evaluator) children(n node, f func(node) error) error {
	switch v := n.v.(type) {
	case []any:
		for i, c := range v {
			if err := e.step(); err != nil {
				return err
			}
			if err := f(node{c, &pathStep{parent: n.path, index: i}}); err != nil {
				return err
			}
		}
	case *object:
		for i, k := range v.keys {
			if err := e.step(); err != nil {
				return err
			}
			if err := f(node{v.vals[i], &pathStep{parent: n.path, name: k, isName: true}}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *evaluator) apply(n node, sels []selector, out *[]node) error {
	for _, s := range sels {
		if err := e.step(); err != nil {
			return err
		}
		switch s.kind {
		case selName:
			if o, ok := n.v.(*object); ok {
				if v, ok := o.get(s.name); ok {
					*out = append(*out, node{v, &pathStep{parent: n.path, name: s.name, isName: true}})
				}
			}
		case selIndex:
			if a, ok := n.v.([]any); ok {
				i := s.index
				if i < 0 {
					i += len(a)
				}
				if i >= 0 && i < len(a) {
					*out = append(*out, node{a[i], &pathStep{parent: n.path, index: i}})
				}
			}
		case selWild:
			if err := e.children(n, func(c node) error { *out = append(*out, c); return nil }); err != nil {
				return err
			}
		case selFilter:
			err := e.children(n, func(c node) error {
				ok, err := e.test(s.filter, c)
				if ok {
					*out = append(*out, c)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// test evaluates a filter expression with @ = cur.
func (e *evaluator) test(x logical, cur node) (bool, error) {
	switch x := x.(type) {
	case orExpr:
		a, err := e.test(x.a, cur)
		if a || err != nil {
			return a, err
		}
		return e.test(x.b, cur)
	case andExpr:
		a, err := e.test(x.a, cur)
		if !a || err != nil {
			return false, err
		}
		return e.test(x.b, cur)
	case notExpr:
		a, err := e.test(x.a, cur)
		return !a && err == nil, err
	case existExpr:
		ns, err := e.rel(x.q, cur)
		return len(ns) > 0, err
	case funcExpr:
		v, ok, err := e.value(x.arg, cur)
		s, isString := v.(string)
		if err != nil || !ok || !isString {
			return false, err
		}
		return x.re.MatchString(s), nil
	case cmpExpr:
		l, lok, err := e.value(x.l, cur)
		if err != nil {
			return false, err
		}
		r, rok, err := e.value(x.r, cur)
		if err != nil {
			return false, err
		}
		return e.compare(x.op, l, lok, r, rok), nil
	}
	return false, nil
}

func (e *evaluator) rel(q relQuery, cur node) ([]node, error) {
	if q.root {
		return e.query(node{v: e.root}, q.path)
	}
	return e.query(cur, q.path)
}

// value evaluates a operand: ok is false for Nothing (no node).
func (e *evaluator) value(c operand, cur node) (any, bool, error) {
	switch c := c.(type) {
	case litVal:
		return c.v, true, nil
	case relQuery:
		ns, err := e.rel(c, cur)
		if err != nil || len(ns) != 1 {
			return nil, false, err
		}
		return ns[0].v, true, nil
	case countFn:
		ns, err := e.rel(c.q, cur)
		return float64(len(ns)), err == nil, err
	case lengthFn:
		v, ok, err := e.value(c.arg, cur)
		if err != nil || !ok {
			return nil, false, err
		}
		switch v := v.(type) {
		case string:
			return float64(utf8.RuneCountInString(v)), true, nil
		case []any:
			return float64(len(v)), true, nil
		case *object:
			return float64(len(v.keys)), true, nil
		}
	}
	return nil, false, nil
}

// compare implements RFC 9535 comparisons: Nothing equals only Nothing,
// < and friends hold only between two numbers or two strings. Deep
// equality spends the step budget, which the next step() enforces.
func (e *evaluator) compare(op string, l any, lok bool, r any, rok bool) bool {
	switch op {
	case "==":
		return e.equal(l, lok, r, rok)
	case "!=":
		return !e.equal(l, lok, r, rok)
	case "<":
		return less(l, lok, r, rok)
	case ">":
		return less(r, rok, l, lok)
	case "<=":
		return less(l, lok, r, rok) || e.equal(l, lok, r, rok)
	case ">=":
		return less(r, rok, l, lok) || e.equal(l, lok, r, rok)
	}
	return false
}

func (e *evaluator) equal(l any, lok bool, r any, rok bool) bool {
	if !lok || !rok {
		return lok == rok
	}
	switch a := l.(type) {
	case []any:
		b, ok := r.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if e.steps++; !e.equal(a[i], true, b[i], true) {
				return false
			}
		}
		return true
	case *object:
		b, ok := r.(*object)
		if !ok || len(a.keys) != len(b.keys) {
			return false
		}
		for i, k := range a.keys {
			bv, ok := b.get(k)
			if e.steps++; !ok || !e.equal(a.vals[i], true, bv, true) {
				return false
			}
		}
		return true
	}
	switch r.(type) {
	case []any, *object:
		return false
	}
	return l == r
}

func less(l any, lok bool, r any, rok bool) bool {
	if !lok || !rok {
		return false
	}
	switch a := l.(type) {
	case float64:
		b, ok := r.(float64)
		return ok && a < b
	case string:
		b, ok := r.(string)
		return ok && a < b
	}
	return false
}
