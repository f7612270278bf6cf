package pricing

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// Size is a sheet size in PDF points (1/72 in), Short <= Long.
type Size struct{ Short, Long float64 }

// sizeTolerance is how much a page may exceed a size and still fit it:
// sizes defined in millimetres are not whole points (A3 is 841.89 x
// 1190.55 pt, and producers round either way).
const sizeTolerance = 1.0

// Fits reports whether a page of displayed width w and height h fits
// within s in either orientation: its short side is at most s.Short and
// its long side at most s.Long (each within 1 pt). A page "larger than"
// s is one that does not fit.
func (s Size) Fits(w, h float64) bool {
	short, long := min(w, h), max(w, h)
	return short <= s.Short+sizeTolerance && long <= s.Long+sizeTolerance
}

var namedSizes = map[string][2]float64{ // width x height, in points
	"letter":  {8.5 * 72, 11 * 72},
	"legal":   {8.5 * 72, 14 * 72},
	"tabloid": {11 * 72, 17 * 72},
	"ledger":  {11 * 72, 17 * 72},
}

const ptPerMM = 72 / 25.4

// ParseSize reads a sheet size: a name (A0-A10, B0-B10, letter, legal,
// tabloid, ledger) or <w>x<h><unit> with unit in, mm, cm or pt ("11x17in",
// "297x420mm", "8.5x11in"). Case does not matter; orientation neither.
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if wh, ok := namedSizes[t]; ok {
		return sizeOf(wh[0], wh[1]), nil
	}
	if len(t) >= 2 && (t[0] == 'a' || t[0] == 'b') {
		if n, err := strconv.Atoi(t[1:]); err == nil && n >= 0 && n <= 10 {
			w, h := 841.0, 1189.0 // A0 in mm
			if t[0] == 'b' {
				w, h = 1000, 1414
			}
			for range n { // ISO 216: halve the long side, rounding down to a mm
				w, h = float64(int(h/2)), w
			}
			return sizeOf(w*ptPerMM, h*ptPerMM), nil
		}
	}
	units := map[string]float64{"in": 72, "mm": ptPerMM, "cm": 10 * ptPerMM, "pt": 1}
	for u, k := range units {
		num, ok := strings.CutSuffix(t, u)
		if !ok {
			continue
		}
		ws, hs, ok := strings.Cut(num, "x")
		if !ok {
			break
		}
		w, err1 := strconv.ParseFloat(strings.TrimSpace(ws), 64)
		h, err2 := strconv.ParseFloat(strings.TrimSpace(hs), 64)
		if err1 != nil || err2 != nil || !(w > 0 && h > 0 && w < 1e5 && h < 1e5) {
			break
		}
		return sizeOf(w*k, h*k), nil
	}
	return Size{}, fmt.Errorf("invalid size %q: expected A0-A10, B0-B10, letter, legal, tabloid, or WxH with in, mm, cm or pt (11x17in, 297x420mm)", s)
}

func sizeOf(w, h float64) Size { return Size{Short: min(w, h), Long: max(w, h)} }

// classRule prices each input page at the rate of its class.
type classRule struct {
	classes []pageClass // the last one is the default
}

type pageClass struct {
	name    string
	credits meter.Credits
	larger  Size   // unused on the default class
	label   string // larger_than as configured
}

func compileClasses(cs []PageClass) (*classRule, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("page_classes is empty")
	}
	r := &classRule{}
	seen := map[string]bool{}
	for i, c := range cs {
		if !nameRE.MatchString(c.Name) {
			return nil, fmt.Errorf("class %d: name %q: use a letter then letters, digits, _ or -", i+1, c.Name)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("class %q given twice", c.Name)
		}
		seen[c.Name] = true
		if err := nonNegative("class "+c.Name+" per_page", c.PerPage); err != nil {
			return nil, err
		}
		pc := pageClass{name: c.Name, credits: c.PerPage}
		last := i == len(cs)-1
		switch {
		case last && c.LargerThan != "":
			return nil, fmt.Errorf("class %q: the last class is the default, for pages in no other class: it takes no larger_than; add one such as `document 1`", c.Name)
		case !last && c.LargerThan == "":
			return nil, fmt.Errorf("class %q: only the last class may omit larger_than", c.Name)
		case !last:
			sz, err := ParseSize(c.LargerThan)
			if err != nil {
				return nil, fmt.Errorf("class %q: %w", c.Name, err)
			}
			pc.larger, pc.label = sz, c.LargerThan
		}
		r.classes = append(r.classes, pc)
	}
	return r, nil
}

func (r *classRule) names() []string {
	ns := make([]string, len(r.classes))
	for i, c := range r.classes {
		ns[i] = c.name
	}
	return ns
}

// classOf returns the index of the class of a page with box b.
func (r *classRule) classOf(b usage.PageBox) int {
	w, h := b.Size()
	last := len(r.classes) - 1
	for i, c := range r.classes[:last] {
		if !c.larger.Fits(float64(w), float64(h)) {
			return i
		}
	}
	return last
}

// Lines returns one line per class, in config order, zeros included so
// the breakdown always has the same shape.
func (r *classRule) Lines(in Input) ([]Line, error) {
	counts := make([]int64, len(r.classes))
	last := len(r.classes) - 1
	for _, f := range in.Usage.Files {
		left := int64(f.Pages)
		for _, s := range f.PageSizes {
			n := min(int64(s.Pages), left)
			counts[r.classOf(s.Box)] += n
			left -= n
		}
		// Images, and pages whose box is unknown, are of the default class.
		counts[last] += left
	}
	if len(in.Usage.Files) == 0 {
		counts[last] = int64(in.Usage.Pages)
	}
	lines := make([]Line, len(r.classes))
	for i, c := range r.classes {
		unit := rate(in, c.name, c.credits)
		cost, err := mulCredits(counts[i], unit)
		if err != nil {
			return nil, err
		}
		src := "pages that fit no larger class"
		if i < last {
			src = "pages larger than " + c.label
		}
		lines[i] = Line{Name: c.name, Units: counts[i], UnitCost: unit, Cost: cost, Source: src, PageClass: true}
	}
	return lines, nil
}

func (r *classRule) Final(in Input, _ Response) ([]Line, error) { return r.Lines(in) }

func (r *classRule) Needs() Needs { return Needs{Pages: true, Boxes: true} }
