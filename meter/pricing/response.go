package pricing

import (
	"fmt"
	"strconv"
	"strings"
)

// responseRule prices a count known only from the upstream's answer: the
// pages of its response PDF, or units it reports in a header. Before
// forwarding it quotes an estimate (a configured count, or the input page
// count), which is reserved; after, the real count, charged in full even
// above the estimate (the store takes the excess from the account's pools
// at commit), unless the rule has a ceiling.
type responseRule struct {
	sched        schedule
	header       string // "" for output pages
	reserve      int64
	reserveInput bool
	atLeast      int64
	ceiling      bool
}

func compileResponse(sch schedule, s Spec) *responseRule {
	return &responseRule{sched: sch, header: s.Header, reserve: s.Reserve, reserveInput: s.ReserveInput,
		atLeast: s.AtLeast, ceiling: s.Ceiling}
}

func (r *responseRule) what() string {
	if r.header != "" {
		return "units in " + r.header
	}
	return "output pages"
}

func (r *responseRule) reserved(in Input) int64 {
	if r.reserveInput {
		return int64(in.Usage.Pages)
	}
	return r.reserve
}

// Lines quotes the estimate.
func (r *responseRule) Lines(in Input) ([]Line, error) {
	n := r.reserved(in)
	l, err := r.line(in, n)
	if r.ceiling {
		l.Source = fmt.Sprintf("reserved for %d %s, the most charged", n, r.what())
	} else {
		l.Source = fmt.Sprintf("estimate: %d %s; the real count is charged", n, r.what())
	}
	l.Estimate = true
	return []Line{l}, err
}

// MinLines quotes the smallest hold the rule accepts (at_least), or the
// estimate.
func (r *responseRule) MinLines(in Input) ([]Line, error) {
	if r.atLeast == 0 || (r.reserveInput && int64(in.Usage.Pages) <= r.atLeast) {
		return r.Lines(in)
	}
	l, err := r.line(in, r.atLeast)
	l.Source = fmt.Sprintf("at least %d %s; the real count is charged", r.atLeast, r.what())
	l.Estimate = true
	return []Line{l}, err
}

func (r *responseRule) line(in Input, n int64) (Line, error) {
	units, unit, cost, label, err := r.sched.price(in, n)
	l := Line{Name: r.sched.name, Units: units, UnitCost: unit, Cost: cost}
	if label != "" {
		l.Source = "tier " + label
	}
	return l, err
}

// Final prices the real count. A header that is missing or not a count
// charges the estimate: the upstream did the work but did not say how
// much, and the estimate is what the client was quoted. A count too large
// to price is an error (the gateway then charges the quote, and logs it).
func (r *responseRule) Final(in Input, resp Response) ([]Line, error) {
	var n int64
	var src string
	if r.header == "" {
		n, src = int64(resp.OutputPages), fmt.Sprintf("%d output pages", resp.OutputPages)
	} else {
		v := strings.TrimSpace(resp.Header.Get(r.header))
		u, err := strconv.ParseInt(v, 10, 64)
		if err != nil || u < 0 {
			n = r.reserved(in)
			src = fmt.Sprintf("%s missing or not a whole number (%q): charged the estimate", r.header, limit(v, 32))
		} else {
			n, src = u, fmt.Sprintf("%s: %d", r.header, u)
		}
	}
	l, err := r.line(in, n)
	if r.ceiling {
		max, merr := r.line(in, r.reserved(in))
		if merr != nil {
			return nil, merr
		}
		// With a ceiling, a request is never charged more than it
		// reserved; an overflowing count is capped like any count too large.
		if err != nil || l.Cost > max.Cost {
			if err != nil {
				l = max
			}
			l.Cost = max.Cost
			src += fmt.Sprintf(", capped at the reservation (%d)", r.reserved(in))
		}
	} else if err != nil {
		return nil, err
	}
	if l.Source != "" {
		src += ", " + l.Source
	}
	l.Source = src
	return []Line{l}, nil
}

func (r *responseRule) Needs() Needs {
	n := Needs{Pages: r.reserveInput, OutputPages: r.header == ""}
	if r.header != "" {
		n.ResponseHeaders = []string{r.header}
	}
	if !r.ceiling {
		n.Uncapped = true
	}
	return n
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
