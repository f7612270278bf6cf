// Package pricing turns what a request consumes into a Quote: a total and
// the named lines it is the sum of. The same Quote is what a request is
// charged and what a dry run shows.
//
// A price list is a list of Specs (the config form), compiled once into
// Rules. Every rule yields one or more named lines; the request costs the
// sum of all lines. See docs/pricing.md for the language.
package pricing

import (
	"net/http"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// Line is one named part of a quote.
type Line struct {
	// Name says what is priced, e.g. "pages", "drawing", "ocr_api".
	Name string `json:"name"`
	// Units is how many of it the request has.
	Units int64 `json:"units"`
	// UnitCost is the price of one unit.
	UnitCost meter.Credits `json:"unit_cost"`
	// Cost is Units * UnitCost (or the rule's own formula: a capped
	// response-priced line says so in Source).
	Cost meter.Credits `json:"cost"`
	// Source says where in the request the units came from.
	Source string `json:"source,omitempty"`
	// PageClass marks a line that counts the pages of one page class
	// (Name is the class): the gateway's metrics count pages by class.
	PageClass bool `json:"page_class,omitempty"`
	// Estimate marks a line priced before the upstream answered from a
	// count it will report (output pages, header units): what is
	// reserved, not what will be charged.
	Estimate bool `json:"estimate,omitempty"`
}

// Quote is the price of one request.
type Quote struct {
	Total meter.Credits `json:"total"`
	Lines []Line        `json:"lines"`
	// Estimate is true when a line is an estimate (see Line.Estimate):
	// the charge is known only once the upstream answered.
	Estimate bool `json:"estimate,omitempty"`
	// Minimum is the smallest hold the route accepts when the account
	// cannot hold Total (rules with at_least); Total otherwise.
	Minimum meter.Credits `json:"minimum,omitempty"`
}

// Input is what a rule may look at before the request is forwarded.
type Input struct {
	// Usage is what the request body carries: files, pages, page boxes.
	Usage usage.Usage
	// JSON is the request body when a rule needs it and the body is JSON
	// (Content-Type application/json or +json), or the content of the
	// multipart part Needs.JSONPart names; nil otherwise. A JSON rule
	// given nil refuses the request (bad_request), so a client cannot
	// dodge JSON pricing by mislabelling its body.
	JSON []byte
	// Rates are the account's overrides of this route's named rates (e.g.
	// "drawing" -> 8 credits per drawing page), already scoped to the route
	// (Scope.For). A rate not listed keeps the route's.
	Rates map[string]meter.Credits

	doc *jsonDoc // JSON parsed once by Rules.Prepare
}

// Response is what a rule may look at after the upstream answered 2xx.
type Response struct {
	// OutputPages is the page count of the PDF the upstream returned, when
	// a rule needs it.
	OutputPages int
	// Header is the upstream's response header.
	Header http.Header
}

// Needs says what a rule reads, so the gateway measures nothing more.
type Needs struct {
	// Pages: the request body's documents must be opened and counted.
	Pages bool
	// Boxes: the page sizes are needed too (page classes).
	Boxes bool
	// JSON: the request body is read as JSON.
	JSON bool
	// JSONPart, with JSON, is the multipart form field whose content is
	// the JSON when the request is multipart ("" : none).
	JSONPart string
	// OutputPages: the response body's PDF pages are counted.
	OutputPages bool
	// ResponseHeaders are read from the upstream's response, then removed
	// before the client sees it. Canonical names, no duplicates.
	ResponseHeaders []string
	// Uncapped: Final may exceed Quote (a response-priced rule without a
	// ceiling): the commit charges the excess over the hold.
	Uncapped bool
}

// Rule prices one aspect of a request.
type Rule interface {
	// Lines prices the request before it is forwarded. A rule priced on
	// the response returns its estimate: what is reserved.
	Lines(in Input) ([]Line, error)
	// Final prices the request once the upstream answered 2xx. Rules not
	// priced on the response return what Lines returned; rules priced on
	// it return the real count's price (never more than their Lines with
	// a ceiling).
	Final(in Input, resp Response) ([]Line, error)
	Needs() Needs
}

// Rules is a price list: the quote is the sum of its rules' lines.
type Rules []Rule

// Prepare parses what several rules read (the JSON body) once and returns
// the Input to give Quote and Final. Calling it is optional: without it
// each JSON rule parses the body itself. Its error is a *meter.Error with
// code bad_request.
func (rs Rules) Prepare(in Input) (Input, error) {
	if in.doc != nil || !rs.Needs().JSON || in.JSON == nil {
		return in, nil
	}
	doc, err := parseJSON(in.JSON)
	if err != nil {
		return in, err
	}
	in.doc = doc
	return in, nil
}

// Quote prices a request before it is forwarded: what is reserved, and
// what a dry run shows.
func (rs Rules) Quote(in Input) (Quote, error) {
	in, err := rs.Prepare(in)
	if err != nil {
		return Quote{}, err
	}
	q, err := rs.sum(func(r Rule) ([]Line, error) { return r.Lines(in) })
	if err != nil {
		return q, err
	}
	q.Minimum = q.Total
	for _, l := range q.Lines {
		q.Estimate = q.Estimate || l.Estimate
	}
	if q.Estimate {
		min, err := rs.sum(func(r Rule) ([]Line, error) {
			if m, ok := r.(interface{ MinLines(Input) ([]Line, error) }); ok {
				return m.MinLines(in)
			}
			return r.Lines(in)
		})
		if err != nil {
			return Quote{}, err
		}
		q.Minimum = min.Total
	}
	return q, nil
}

// Final prices a request after the upstream answered 2xx: what is charged.
// For rules not priced on the response it equals Quote; it exceeds Quote's
// total only when Needs().Uncapped.
func (rs Rules) Final(in Input, resp Response) (Quote, error) {
	in, err := rs.Prepare(in)
	if err != nil {
		return Quote{}, err
	}
	return rs.sum(func(r Rule) ([]Line, error) { return r.Final(in, resp) })
}

func (rs Rules) sum(lines func(Rule) ([]Line, error)) (Quote, error) {
	q := Quote{Lines: make([]Line, 0, len(rs))}
	for _, r := range rs {
		ls, err := lines(r)
		if err != nil {
			return Quote{}, err
		}
		for _, l := range ls {
			if q.Total, err = addCredits(q.Total, l.Cost); err != nil {
				return Quote{}, err
			}
			q.Lines = append(q.Lines, l)
		}
	}
	return q, nil
}

// Needs is the union of what the rules read.
func (rs Rules) Needs() Needs {
	var n Needs
	seen := map[string]bool{}
	for _, r := range rs {
		rn := r.Needs()
		n.Pages = n.Pages || rn.Pages
		n.Boxes = n.Boxes || rn.Boxes
		n.JSON = n.JSON || rn.JSON
		if rn.JSONPart != "" {
			n.JSONPart = rn.JSONPart
		}
		n.OutputPages = n.OutputPages || rn.OutputPages
		n.Uncapped = n.Uncapped || rn.Uncapped
		for _, h := range rn.ResponseHeaders {
			h = http.CanonicalHeaderKey(h)
			if !seen[h] {
				seen[h] = true
				n.ResponseHeaders = append(n.ResponseHeaders, h)
			}
		}
	}
	return n
}

// rate returns the account's override of the named rate, or def. A
// negative override is a store bug, not a refund: it is ignored.
func rate(in Input, name string, def meter.Credits) meter.Credits {
	if r, ok := in.Rates[name]; ok && r >= 0 {
		return r
	}
	return def
}
