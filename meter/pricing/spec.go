package pricing

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// Spec is the declarative form of a rule, as it appears in config
// ("rules": [...] of the meter handler). Exactly one kind is set; the
// modifiers below it apply to some kinds only.
type Spec struct {
	// Name of the quote line, and of the rate an account may override.
	// Default: the kind's ("pages", "output_pages", "units", "blocks",
	// "tiers", "call"); required for json rules; unused by page_classes,
	// whose lines are named by class.
	Name string `json:"name,omitempty"`

	// PerPage charges this many credits for every page (of every input
	// document, or of the output with Output).
	PerPage *meter.Credits `json:"per_page,omitempty"`
	// PageClasses charges every input page at the rate of its class: the
	// first class whose LargerThan the page exceeds, else the last class,
	// which has no LargerThan. Images are one page of the last class.
	PageClasses []PageClass `json:"page_classes,omitempty"`
	// Blocks charges Credits per started block of Pages pages (or units).
	Blocks *Blocks `json:"blocks,omitempty"`
	// Tiers charges the price of the first tier whose UpTo is at least the
	// page (or unit) count; the last tier has no UpTo. Zero pages cost 0.
	Tiers []Tier `json:"tiers,omitempty"`
	// PerCall charges this many credits for every request.
	PerCall *meter.Credits `json:"per_call,omitempty"`
	// PerMatch charges this many credits for every node that the JSON
	// queries select in the request body.
	PerMatch *meter.Credits `json:"per_match,omitempty"`
	// PerUnit charges this many credits per unit reported by the upstream
	// in the response header Header.
	PerUnit *meter.Credits `json:"per_unit,omitempty"`

	// JSON are the queries of a per_match rule (JSONPath, RFC 9535 subset,
	// optionally followed by a comparison: `$.output.type == 'pdfa'`).
	JSON []string `json:"json,omitempty"`
	// Part names the multipart form field whose JSON a per_match rule
	// reads when the request is multipart (PSPDFKit's `instructions`); a
	// JSON body is read as it is. Default: none, a multipart request is
	// refused. All per_match rules of a route name the same part.
	Part string `json:"part,omitempty"`
	// Per is "file" (default) or "request": whether blocks and tiers count
	// the pages of each input file separately or of the whole request.
	Per string `json:"per,omitempty"`
	// Output counts the pages of the upstream's response PDF instead of
	// the request's (per_page, blocks, tiers). Requires a reservation.
	Output bool `json:"output,omitempty"`
	// Header counts units the upstream reports in this response header
	// (per_unit, blocks, tiers). Requires a reservation.
	Header string `json:"header,omitempty"`
	// Reserve is the count (output pages or header units) priced before
	// forwarding: the estimate that is reserved. The real count is
	// charged in full, above it too (unless Ceiling).
	Reserve int64 `json:"reserve,omitempty"`
	// ReserveInput reserves the request's own page count instead (for
	// services whose output has as many pages as their input).
	ReserveInput bool `json:"reserve_input,omitempty"`
	// AtLeast is the smallest count the route may reserve instead of the
	// estimate when the account cannot hold the estimate: an account that
	// can pay for AtLeast units is served, and charged the real count.
	// 0 (default): the estimate must be held.
	AtLeast int64 `json:"at_least,omitempty"`
	// Ceiling makes the reservation the most a request is charged (the
	// behaviour before estimates): a larger real count is charged as the
	// reservation. Default false.
	Ceiling bool `json:"ceiling,omitempty"`
}

// PageClass is one page class of a page_classes rule.
type PageClass struct {
	// Name of the class: its quote line and its overridable rate.
	Name string `json:"name"`
	// PerPage is the price of one page of this class.
	PerPage meter.Credits `json:"per_page"`
	// LargerThan is a size ("11x17in", "A3", "297x420mm"): a page is in
	// this class when it does not fit within that size in either
	// orientation. Empty for the last (default) class.
	LargerThan string `json:"larger_than,omitempty"`
}

// Blocks is the schedule of a blocks rule: ceil(pages / Pages) * Credits.
type Blocks struct {
	Pages   int64         `json:"pages"`
	Credits meter.Credits `json:"credits"`
}

// Tier is one row of a tier table.
type Tier struct {
	// UpTo is the largest count this tier covers; 0 on the last tier,
	// which covers everything above the previous one.
	UpTo    int64         `json:"up_to,omitempty"`
	Credits meter.Credits `json:"credits"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Compile checks specs and returns the rules they describe. Errors name
// the rule by its position (from 1) and kind.
func Compile(specs []Spec) (Rules, error) {
	rules := make(Rules, 0, len(specs))
	names := map[string]int{}
	part, partRule := "", 0 // the JSON part of the route, and the first rule that read JSON
	for i, s := range specs {
		if s.PerMatch != nil {
			if partRule > 0 && s.Part != part {
				return nil, fmt.Errorf("rule %d (%s): reads multipart part %q, rule %d reads %q: a route reads one JSON document", i+1, s.describe(), s.Part, partRule, part)
			}
			part, partRule = s.Part, i+1
		}
		r, lineNames, err := compileOne(s)
		if err != nil {
			return nil, fmt.Errorf("rule %d (%s): %w", i+1, s.describe(), err)
		}
		for _, n := range lineNames {
			if j, dup := names[n]; dup {
				return nil, fmt.Errorf("rule %d (%s): line name %q is already used by rule %d; give one a name", i+1, s.describe(), n, j)
			}
			names[n] = i + 1
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// describe names a spec's kind (and name) for error messages.
func (s Spec) describe() string {
	kinds := s.kinds()
	k := strings.Join(kinds, "+")
	if len(kinds) == 0 {
		k = "no kind"
	}
	if s.Name != "" {
		return k + " " + s.Name
	}
	return k
}

func (s Spec) kinds() []string {
	var ks []string
	add := func(set bool, k string) {
		if set {
			ks = append(ks, k)
		}
	}
	add(s.PerPage != nil, "per_page")
	add(s.PageClasses != nil, "page_classes")
	add(s.Blocks != nil, "blocks")
	add(s.Tiers != nil, "tiers")
	add(s.PerCall != nil, "per_call")
	add(s.PerMatch != nil, "per_match")
	add(s.PerUnit != nil, "per_unit")
	return ks
}

// compileOne returns the rule and the line names it may produce.
func compileOne(s Spec) (Rule, []string, error) {
	kinds := s.kinds()
	if len(kinds) != 1 {
		return nil, nil, fmt.Errorf("exactly one of per_page, page_classes, blocks, tiers, per_call, per_match or per_unit must be set, got %d", len(kinds))
	}
	kind := kinds[0]
	if err := s.checkModifiers(kind); err != nil {
		return nil, nil, err
	}
	name := s.Name
	if name == "" && kind == "per_match" {
		return nil, nil, fmt.Errorf("a per_match rule needs a name: the feature it prices, e.g. ocr_api")
	}
	if name == "" {
		name = defaultName(kind, s)
	}
	if kind != "page_classes" && !nameRE.MatchString(name) {
		return nil, nil, fmt.Errorf("name %q: use a letter then letters, digits, _ or - (at most 64)", name)
	}
	switch kind {
	case "page_classes":
		r, err := compileClasses(s.PageClasses)
		if err != nil {
			return nil, nil, err
		}
		return r, r.names(), nil
	case "per_call":
		if err := nonNegative("per_call", *s.PerCall); err != nil {
			return nil, nil, err
		}
		return perCall{name: name, credits: *s.PerCall}, []string{name}, nil
	case "per_match":
		r, err := compileJSONRule(name, *s.PerMatch, s.JSON)
		if r != nil {
			r.part = s.Part
		}
		return r, []string{name}, err
	}
	sch, err := compileSchedule(kind, s)
	if err != nil {
		return nil, nil, err
	}
	sch.name = name
	if s.Output || s.Header != "" {
		return compileResponse(sch, s), []string{name}, nil
	}
	// per_page is per request: per file would give the same sum.
	perFile := kind != "per_page" && s.Per != "request"
	return &countRule{sched: sch, perFile: perFile}, []string{name}, nil
}

func defaultName(kind string, s Spec) string {
	switch {
	case kind == "per_page" && s.Output:
		return "output_pages"
	case kind == "per_page":
		return "pages"
	case kind == "per_unit":
		return "units"
	case kind == "per_call":
		return "call"
	}
	return kind
}

// checkModifiers refuses modifiers that the kind would silently ignore.
func (s Spec) checkModifiers(kind string) error {
	counted := kind == "per_page" || kind == "blocks" || kind == "tiers" || kind == "per_unit"
	respPriced := s.Output || s.Header != ""
	switch {
	case s.JSON != nil && kind != "per_match":
		return fmt.Errorf("json queries belong to per_match rules")
	case s.Part != "" && kind != "per_match":
		return fmt.Errorf("part belongs to per_match rules")
	case s.Part != "" && !validPartName(s.Part):
		return fmt.Errorf("part %q: use letters, digits, _, - or . (at most 128)", s.Part)
	case s.Per != "" && s.Per != "file" && s.Per != "request":
		return fmt.Errorf("per must be \"file\" or \"request\", got %q", s.Per)
	case s.Per != "" && (kind != "blocks" && kind != "tiers"):
		return fmt.Errorf("per applies to blocks and tiers only")
	case s.Per == "file" && respPriced:
		return fmt.Errorf("a response is one count: per file does not apply to output or header")
	case s.Output && s.Header != "":
		return fmt.Errorf("output and header are exclusive")
	case (s.Output || s.Header != "") && !counted:
		return fmt.Errorf("output and header apply to per_page, per_unit, blocks and tiers only")
	case kind == "per_unit" && s.Header == "":
		return fmt.Errorf("per_unit needs the header the upstream reports its units in")
	case kind == "per_page" && s.Header != "":
		return fmt.Errorf("header units are priced with per_unit, not per_page")
	case s.Header != "" && !validHeader(s.Header):
		return fmt.Errorf("header %q is not a valid header name", s.Header)
	case !respPriced && (s.Reserve != 0 || s.ReserveInput):
		return fmt.Errorf("reserve applies to output and header rules only")
	case respPriced && s.Reserve < 0:
		return fmt.Errorf("reserve must not be negative, got %d", s.Reserve)
	case respPriced && s.Reserve > 0 && s.ReserveInput:
		return fmt.Errorf("reserve a number or the input pages, not both")
	case respPriced && s.Reserve == 0 && !s.ReserveInput:
		return fmt.Errorf("a rule priced on the response needs a reservation (reserve <n> or reserve input)")
	case !respPriced && (s.AtLeast != 0 || s.Ceiling):
		return fmt.Errorf("at_least and ceiling apply to output and header rules only")
	case s.AtLeast < 0 || (s.Reserve > 0 && s.AtLeast > s.Reserve):
		return fmt.Errorf("at_least must be between 0 and the reserve, got %d", s.AtLeast)
	case s.AtLeast > 0 && s.Ceiling:
		return fmt.Errorf("at_least and ceiling are exclusive: a ceiling charges at most what was reserved")
	}
	return nil
}

func validPartName(p string) bool {
	if len(p) > 128 {
		return false
	}
	for _, c := range p {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func validHeader(h string) bool {
	if h == "" || len(h) > 128 {
		return false
	}
	for _, c := range h {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return http.CanonicalHeaderKey(h) != ""
}

func nonNegative(what string, c meter.Credits) error {
	if c < 0 {
		return fmt.Errorf("%s must not be negative, got %s", what, c)
	}
	return nil
}
