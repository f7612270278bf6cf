package pricing

import (
	"fmt"
)

// StringSelector picks string values of a JSON body with JSONPath queries
// (the subset of per_match, without a comparison): the gateway reads the
// documents a JSON body carries base64-encoded from them.
type StringSelector struct {
	queries []*jsonQuery
}

// CompileStringSelector compiles queries such as `$.document` or
// `$.files[*].content`.
func CompileStringSelector(queries []string) (*StringSelector, error) {
	if len(queries) == 0 {
		return nil, fmt.Errorf("no JSON query")
	}
	s := &StringSelector{}
	for _, src := range queries {
		q, err := compileQuery(src)
		if err != nil {
			return nil, err
		}
		if q.op != "" {
			return nil, fmt.Errorf("%s: a document query selects fields; it takes no comparison", src)
		}
		s.queries = append(s.queries, q)
	}
	return s, nil
}

// Strings returns the path and value of every string the queries select
// in body, in query then document order; other values are skipped. A body
// that is not JSON, or too large or complex, is a bad_request *meter.Error.
func (s *StringSelector) Strings(body []byte) (paths, values []string, err error) {
	doc, err := parseJSON(body)
	if err != nil {
		return nil, nil, err
	}
	e := &evaluator{root: doc.root}
	for _, q := range s.queries {
		nodes, err := e.query(node{v: doc.root}, q.path)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range nodes {
			if v, ok := n.v.(string); ok {
				paths = append(paths, n.path.String())
				values = append(values, v)
			}
		}
	}
	if e.steps > maxJSONSteps {
		return nil, nil, errTooComplex
	}
	return paths, values, nil
}
