// Package pricing turns what a request consumes into a Quote: a total and
// the named lines it is the sum of. The same Quote is what a request is
// charged and what a dry run shows.
package pricing

import (
	"fmt"
	"net/http"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// Line is one named part of a quote.
type Line struct {
	// Name says what is priced, e.g. "pages".
	Name string `json:"name"`
	// Units is how many of it the request has.
	Units int64 `json:"units"`
	// UnitCost is the price of one unit.
	UnitCost meter.Credits `json:"unit_cost"`
	// Cost is Units * UnitCost (or the rule's own formula).
	Cost meter.Credits `json:"cost"`
	// Source says where in the request the units came from.
	Source string `json:"source,omitempty"`
}

// Quote is the price of one request.
type Quote struct {
	Total meter.Credits `json:"total"`
	Lines []Line        `json:"lines"`
}

// Input is what a rule may look at before the request is forwarded.
type Input struct {
	// Usage is what the request body carries: files, pages, page boxes.
	Usage usage.Usage
	// JSON is the request body when a rule needs it and the body is JSON
	// (Content-Type application/json or +json); nil otherwise.
	JSON []byte
	// Rates are the account's overrides of named rates (e.g. "drawing" ->
	// 8 credits per drawing page). A rate not listed keeps the route's.
	Rates map[string]meter.Credits
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
	// OutputPages: the response body's PDF pages are counted.
	OutputPages bool
	// ResponseHeaders are read from the upstream's response, then removed
	// before the client sees it.
	ResponseHeaders []string
}

// Rule prices one aspect of a request.
type Rule interface {
	// Lines prices the request before it is forwarded. A rule priced on
	// the response returns its estimate: what is reserved.
	Lines(in Input) ([]Line, error)
	// Final prices the request once the upstream answered 2xx. Rules not
	// priced on the response return what Lines returned.
	Final(in Input, resp Response) ([]Line, error)
	Needs() Needs
}

// Spec is the declarative form of a rule, as it appears in config. Exactly
// one kind is set; more kinds come with the pricing language.
type Spec struct {
	// Name of the quote line (default: the rule's kind, e.g. "pages").
	Name string `json:"name,omitempty"`
	// PerPage charges this many credits for every page of every document
	// in the request body (PDF pages; an image counts one page).
	PerPage *meter.Credits `json:"per_page,omitempty"`
}

// Compile checks specs and returns the rules they describe.
func Compile(specs []Spec) (Rules, error) {
	rules := make(Rules, 0, len(specs))
	for i, s := range specs {
		switch {
		case s.PerPage != nil:
			if *s.PerPage < 0 {
				return nil, fmt.Errorf("rule %d: per_page must not be negative, got %s", i, s.PerPage)
			}
			name := s.Name
			if name == "" {
				name = "pages"
			}
			rules = append(rules, PerPage{Name: name, Credits: *s.PerPage})
		default:
			return nil, fmt.Errorf("rule %d: no pricing kind set (expected per_page)", i)
		}
	}
	return rules, nil
}

// Rules is a price list: the quote is the sum of its rules' lines.
type Rules []Rule

// Quote prices a request before it is forwarded: what is reserved, and
// what a dry run shows.
func (rs Rules) Quote(in Input) (Quote, error) {
	return rs.sum(func(r Rule) ([]Line, error) { return r.Lines(in) })
}

// Final prices a request after the upstream answered 2xx: what is charged.
// For rules not priced on the response it equals Quote.
func (rs Rules) Final(in Input, resp Response) (Quote, error) {
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
			q.Total += l.Cost
			q.Lines = append(q.Lines, l)
		}
	}
	return q, nil
}

// Needs is the union of what the rules read.
func (rs Rules) Needs() Needs {
	var n Needs
	for _, r := range rs {
		rn := r.Needs()
		n.Pages = n.Pages || rn.Pages
		n.Boxes = n.Boxes || rn.Boxes
		n.JSON = n.JSON || rn.JSON
		n.OutputPages = n.OutputPages || rn.OutputPages
		n.ResponseHeaders = append(n.ResponseHeaders, rn.ResponseHeaders...)
	}
	return n
}

// PerPage charges Credits for every page in the request.
type PerPage struct {
	Name    string
	Credits meter.Credits
}

// Lines returns one line: the request's pages at the per-page rate.
func (p PerPage) Lines(in Input) ([]Line, error) {
	rate := p.Credits
	if r, ok := in.Rates[p.Name]; ok {
		rate = r
	}
	n := int64(in.Usage.Pages)
	return []Line{{
		Name:     p.Name,
		Units:    n,
		UnitCost: rate,
		Cost:     meter.Credits(n) * rate,
		Source:   "request body",
	}}, nil
}

// Final is Lines: pages are known before the request is forwarded.
func (p PerPage) Final(in Input, _ Response) ([]Line, error) { return p.Lines(in) }

// Needs reports that PerPage counts pages.
func (PerPage) Needs() Needs { return Needs{Pages: true} }
