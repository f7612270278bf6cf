package pricing

import (
	"fmt"

	"github.com/creditgate/creditgate/meter"
)

// jsonRule charges credits per node its queries select in the request's
// JSON body: units are the sum over the queries, so one rule can price a
// feature that several parts of a request use.
type jsonRule struct {
	name    string
	credits meter.Credits
	queries []*jsonQuery
	part    string // the multipart part read instead of a JSON body
}

func compileJSONRule(name string, credits meter.Credits, queries []string) (*jsonRule, error) {
	if err := nonNegative("per_match", credits); err != nil {
		return nil, err
	}
	if len(queries) == 0 {
		return nil, fmt.Errorf("per_match needs at least one JSON query")
	}
	r := &jsonRule{name: name, credits: credits}
	for _, src := range queries {
		q, err := compileQuery(src)
		if err != nil {
			return nil, err
		}
		r.queries = append(r.queries, q)
	}
	return r, nil
}

// Lines counts the matches. A missing field selects nothing and counts 0;
// a body that is not JSON is refused, since the upstream would be asked
// to do work that could not be priced.
func (r *jsonRule) Lines(in Input) ([]Line, error) {
	doc := in.doc
	if doc == nil {
		if in.JSON == nil && r.part != "" {
			return nil, meter.Errorf(meter.ECodeBadRequest, "this route is priced by its JSON: send Content-Type: application/json and a JSON body, or a multipart/form-data body with one %q part", r.part).
				With("part", r.part)
		}
		if in.JSON == nil {
			return nil, meter.Errorf(meter.ECodeBadRequest, "this route is priced by its JSON body: send Content-Type: application/json and a JSON body")
		}
		var err error
		if doc, err = parseJSON(in.JSON); err != nil {
			return nil, err
		}
	}
	e := &evaluator{root: doc.root}
	var paths []string
	for _, q := range r.queries {
		nodes, err := e.query(node{v: doc.root}, q.path)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if q.op == "" || e.compare(q.op, n.v, true, q.lit, true) {
				paths = append(paths, n.path.String())
			}
		}
	}
	if e.steps > maxJSONSteps {
		return nil, errTooComplex
	}
	units := int64(len(paths))
	unit := rate(in, r.name, r.credits)
	cost, err := mulCredits(units, unit)
	return []Line{{Name: r.name, Units: units, UnitCost: unit, Cost: cost, Source: listSome(paths, 10)}}, err
}

func (r *jsonRule) Final(in Input, _ Response) ([]Line, error) { return r.Lines(in) }

func (r *jsonRule) Needs() Needs { return Needs{JSON: true, JSONPart: r.part} }
