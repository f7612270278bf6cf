package pricing

// Query is a compiled JSONPath query (the subset docs/pricing.md
// describes), for callers outside pricing that read values from a JSON
// document: the job routes read the upstream's job id from its answer and
// declared file sizes from a submission.
type Query struct{ q *jsonQuery }

// CompileQuery parses a query such as `$.id` or `$.files[*].size`.
func CompileQuery(src string) (*Query, error) {
	q, err := compileQuery(src)
	if err != nil {
		return nil, err
	}
	return &Query{q: q}, nil
}

// String returns the query as written.
func (q *Query) String() string { return q.q.src }

// Select returns the values the query selects in a JSON document, in
// document order (a comparison in the query keeps the nodes it holds
// for). The evaluation is bounded like a pricing rule's; body must be
// JSON.
func (q *Query) Select(body []byte) ([]any, error) {
	doc, err := parseJSON(body)
	if err != nil {
		return nil, err
	}
	e := &evaluator{root: doc.root}
	nodes, err := e.query(node{v: doc.root}, q.q.path)
	if err != nil {
		return nil, err
	}
	if e.steps > maxJSONSteps {
		return nil, errTooComplex
	}
	out := make([]any, 0, len(nodes))
	for _, n := range nodes {
		if q.q.op == "" || e.compare(q.q.op, n.v, true, q.q.lit, true) {
			out = append(out, plain(n.v))
		}
	}
	return out, nil
}

// plain turns a parsed value into encoding/json's forms (objects become
// maps), so that callers need not know the document's representation.
func plain(v any) any {
	switch x := v.(type) {
	case *object:
		m := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			m[k] = plain(x.vals[i])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}
