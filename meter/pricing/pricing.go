// Package pricing turns what a request consumes into a Quote: a total and
// the named lines it is the sum of. The same Quote is what a request is
// charged and what a dry run shows.
package pricing

import (
	"fmt"

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

// Input is what a rule may look at.
type Input struct {
	Usage usage.Usage
}

// Needs says what a rule reads, so the gateway measures nothing more.
type Needs struct {
	// Pages: the request body's documents must be opened and counted.
	Pages bool
}

// Rule prices one aspect of a request.
type Rule interface {
	Lines(in Input) []Line
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

// Quote prices a request.
func (rs Rules) Quote(in Input) Quote {
	q := Quote{Lines: make([]Line, 0, len(rs))}
	for _, r := range rs {
		for _, l := range r.Lines(in) {
			q.Total += l.Cost
			q.Lines = append(q.Lines, l)
		}
	}
	return q
}

// Needs is the union of what the rules read.
func (rs Rules) Needs() Needs {
	var n Needs
	for _, r := range rs {
		n.Pages = n.Pages || r.Needs().Pages
	}
	return n
}

// PerPage charges Credits for every page in the request.
type PerPage struct {
	Name    string
	Credits meter.Credits
}

// Lines returns one line: the request's pages at the per-page rate.
func (p PerPage) Lines(in Input) []Line {
	n := int64(in.Usage.Pages)
	return []Line{{
		Name:     p.Name,
		Units:    n,
		UnitCost: p.Credits,
		Cost:     meter.Credits(n) * p.Credits,
		Source:   "request body",
	}}
}

// Needs reports that PerPage counts pages.
func (PerPage) Needs() Needs { return Needs{Pages: true} }
