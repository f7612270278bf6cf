package pricing

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// schedule prices a count (pages or units): per unit, per started block,
// or by a tier table. It is shared by input, output and header rules.
type schedule struct {
	name  string
	rate  meter.Credits // per unit, or per block
	block int64         // > 0: blocks of this many
	tiers []Tier        // non-nil: a tier table
}

func compileSchedule(kind string, s Spec) (schedule, error) {
	switch kind {
	case "per_page", "per_unit":
		c := s.PerPage
		if kind == "per_unit" {
			c = s.PerUnit
		}
		return schedule{rate: *c}, nonNegative(kind, *c)
	case "blocks":
		if s.Blocks.Pages < 1 {
			return schedule{}, fmt.Errorf("a block must have at least 1 page, got %d", s.Blocks.Pages)
		}
		return schedule{rate: s.Blocks.Credits, block: s.Blocks.Pages}, nonNegative("blocks credits", s.Blocks.Credits)
	}
	// tiers
	ts := s.Tiers
	if len(ts) == 0 {
		return schedule{}, fmt.Errorf("the tier table is empty")
	}
	for i, t := range ts {
		if err := nonNegative("tier credits", t.Credits); err != nil {
			return schedule{}, err
		}
		last := i == len(ts)-1
		switch {
		case last && t.UpTo != 0:
			return schedule{}, fmt.Errorf("the last tier must be open-ended (*:<credits>), so every count has a price")
		case !last && t.UpTo < 1:
			return schedule{}, fmt.Errorf("tier %d: only the last tier may be open-ended; others need up_to >= 1", i+1)
		case i > 0 && !last && t.UpTo <= ts[i-1].UpTo:
			return schedule{}, fmt.Errorf("tier %d: up_to %d must be larger than the previous tier's %d", i+1, t.UpTo, ts[i-1].UpTo)
		}
	}
	return schedule{tiers: ts}, nil
}

// price returns what a count n costs: units, unit cost, cost and a label
// saying which tier applied ("" for per unit and blocks).
func (s schedule) price(in Input, n int64) (units int64, unit, cost meter.Credits, label string, err error) {
	switch {
	case s.tiers != nil:
		if n == 0 {
			return 0, 0, 0, "", nil
		}
		i := s.tier(n)
		unit = rate(in, s.tierRateName(i), s.tiers[i].Credits)
		return 1, unit, unit, s.tierLabel(i), nil
	case s.block > 0:
		units = ceilDiv(n, s.block)
	default:
		units = n
	}
	unit = rate(in, s.name, s.rate)
	cost, err = mulCredits(units, unit)
	return units, unit, cost, "", err
}

func (s schedule) tier(n int64) int {
	for i, t := range s.tiers {
		if t.UpTo == 0 || n <= t.UpTo {
			return i
		}
	}
	return len(s.tiers) - 1 // unreachable: the last tier is open-ended
}

// tierRateName is the account-overridable name of tier i's price:
// "<name>.<up_to>", or "<name>.more" for the open-ended tier.
func (s schedule) tierRateName(i int) string {
	if s.tiers[i].UpTo == 0 {
		return s.name + ".more"
	}
	return s.name + "." + strconv.FormatInt(s.tiers[i].UpTo, 10)
}

// tierLabel says what tier i covers: "1", "2-5", "21+".
func (s schedule) tierLabel(i int) string {
	lo := int64(1)
	if i > 0 {
		lo = s.tiers[i-1].UpTo + 1
	}
	switch hi := s.tiers[i].UpTo; {
	case hi == 0:
		return strconv.FormatInt(lo, 10) + "+"
	case hi == lo:
		return strconv.FormatInt(lo, 10)
	default:
		return strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(hi, 10)
	}
}

// countRule prices the request's input pages, per file or per request.
type countRule struct {
	sched   schedule
	perFile bool
}

func (r *countRule) Lines(in Input) ([]Line, error) {
	if !r.perFile {
		n := int64(in.Usage.Pages)
		units, unit, cost, label, err := r.sched.price(in, n)
		// Every metered request prices here (twice: quote and final):
		// no fmt.
		src := "request: " + strconv.FormatInt(n, 10) + " pages"
		if label != "" {
			src += ", tier " + label
		}
		return []Line{{Name: r.sched.name, Units: units, UnitCost: unit, Cost: cost, Source: src}}, err
	}
	// Per file: one line per tier used (one line for per page and blocks),
	// so each line stays units x unit cost.
	var lines []Line
	var files [][]string
	for i, f := range in.Usage.Files {
		if f.Pages == 0 && f.Kind == usage.KindOther {
			continue // a form field or other attachment: not a document
		}
		units, unit, cost, label, err := r.sched.price(in, int64(f.Pages))
		if err != nil {
			return nil, err
		}
		j := 0
		for j < len(lines) && (lines[j].UnitCost != unit || lines[j].Source != label) {
			j++
		}
		if j == len(lines) {
			lines = append(lines, Line{Name: r.sched.name, UnitCost: unit, Source: label})
			files = append(files, nil)
		}
		lines[j].Units += units
		if lines[j].Cost, err = addCredits(lines[j].Cost, cost); err != nil {
			return nil, err
		}
		files[j] = append(files[j], fileLabel(f, i))
	}
	if len(lines) == 0 {
		return []Line{{Name: r.sched.name, UnitCost: r.sched.rate, Source: "no documents"}}, nil
	}
	for j := range lines {
		src := "files: " + listSome(files[j], 10)
		if lines[j].Source != "" {
			src = "tier " + lines[j].Source + " pages, " + src
		}
		lines[j].Source = src
	}
	return lines, nil
}

func (r *countRule) Final(in Input, _ Response) ([]Line, error) { return r.Lines(in) }

func (r *countRule) Needs() Needs { return Needs{Pages: true} }

// fileLabel names file i for a Source: its name, or its position.
func fileLabel(f usage.File, i int) string {
	if f.Name != "" {
		return strconv.Quote(f.Name) + " (" + strconv.Itoa(f.Pages) + " p.)"
	}
	return "#" + strconv.Itoa(i+1) + " (" + strconv.Itoa(f.Pages) + " p.)"
}

// listSome joins at most n items, saying how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// perCall charges a fixed price for every request.
type perCall struct {
	name    string
	credits meter.Credits
}

func (p perCall) Lines(in Input) ([]Line, error) {
	c := rate(in, p.name, p.credits)
	return []Line{{Name: p.name, Units: 1, UnitCost: c, Cost: c, Source: "request"}}, nil
}

func (p perCall) Final(in Input, _ Response) ([]Line, error) { return p.Lines(in) }

// Needs is empty: a fixed price reads nothing, so nothing is measured.
func (perCall) Needs() Needs { return Needs{} }
