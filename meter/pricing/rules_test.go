package pricing

import (
	"net/http"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

func cr(s string) meter.Credits { return *credits(s) }

func pdf(name string, pages int) usage.File {
	return usage.File{Name: name, Kind: usage.KindPDF, Pages: pages}
}

func files(fs ...usage.File) usage.Usage {
	var u usage.Usage
	for _, f := range fs {
		u.Files = append(u.Files, f)
		u.Pages += f.Pages
	}
	return u
}

func mustCompile(t *testing.T, specs ...Spec) Rules {
	t.Helper()
	rs, err := Compile(specs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func total(t *testing.T, rs Rules, in Input) meter.Credits {
	t.Helper()
	q, err := rs.Quote(in)
	if err != nil {
		t.Fatal(err)
	}
	return q.Total
}

func TestBlocks(t *testing.T) {
	perFile := mustCompile(t, Spec{Blocks: &Blocks{Pages: 5, Credits: cr("1")}})
	perReq := mustCompile(t, Spec{Blocks: &Blocks{Pages: 5, Credits: cr("1")}, Per: "request"})
	for _, tt := range []struct {
		name          string
		u             usage.Usage
		file, request string
	}{
		{"no body", usage.Usage{}, "0", "0"},
		{"one page", files(pdf("a", 1)), "1", "1"},
		{"exactly one block", files(pdf("a", 5)), "1", "1"},
		{"one page over", files(pdf("a", 6)), "2", "2"},
		{"exactly two blocks", files(pdf("a", 10)), "2", "2"},
		{"three blocks", files(pdf("a", 11)), "3", "3"},
		{"two files: blocks per file", files(pdf("a", 3), pdf("b", 3)), "2", "2"},
		{"many files", files(pdf("a", 1), pdf("b", 1), pdf("c", 1), pdf("d", 1), pdf("e", 1), pdf("f", 1)), "6", "2"},
		{"image is one page", files(usage.File{Kind: usage.KindImage, Pages: 1}), "1", "1"},
		{"form field is not a file", files(usage.File{Kind: usage.KindOther}, pdf("a", 5)), "1", "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := total(t, perFile, Input{Usage: tt.u}); got != cr(tt.file) {
				t.Errorf("per file: %s, want %s", got, tt.file)
			}
			if got := total(t, perReq, Input{Usage: tt.u}); got != cr(tt.request) {
				t.Errorf("per request: %s, want %s", got, tt.request)
			}
		})
	}
	q, _ := perFile.Quote(Input{Usage: files(pdf("a.pdf", 7), pdf("b.pdf", 2))})
	if len(q.Lines) != 1 || q.Lines[0].Units != 3 || q.Lines[0].Name != "blocks" || !strings.Contains(q.Lines[0].Source, `"a.pdf" (7 p.)`) {
		t.Errorf("lines = %+v", q.Lines)
	}
	if got := total(t, perFile, Input{Usage: files(pdf("a", 6)), Rates: map[string]meter.Credits{"blocks": cr("0.5")}}); got != cr("1") {
		t.Errorf("override: %s", got)
	}
}

var docExtract = []Tier{{UpTo: 1, Credits: cr("1")}, {UpTo: 5, Credits: cr("2")}, {UpTo: 10, Credits: cr("3")}, {UpTo: 20, Credits: cr("5")}, {Credits: cr("8")}}

func TestTiers(t *testing.T) {
	rs := mustCompile(t, Spec{Tiers: docExtract})
	for pages, want := range map[int]string{0: "0", 1: "1", 2: "2", 5: "2", 6: "3", 10: "3", 11: "5", 20: "5", 21: "8", 15000: "8"} {
		if got := total(t, rs, Input{Usage: files(pdf("a", pages))}); got != cr(want) {
			t.Errorf("%d pages: %s, want %s", pages, got, want)
		}
	}
	q, _ := rs.Quote(Input{Usage: files(pdf("a", 3), pdf("b", 30), pdf("c", 4))})
	if q.Total != cr("12") || len(q.Lines) != 2 {
		t.Fatalf("per file: %+v", q)
	}
	if l := q.Lines[0]; l.Units != 2 || l.UnitCost != cr("2") || !strings.HasPrefix(l.Source, "tier 2-5 pages") {
		t.Errorf("line 0 = %+v", l)
	}
	if l := q.Lines[1]; l.Units != 1 || l.UnitCost != cr("8") || !strings.HasPrefix(l.Source, "tier 21+ pages") {
		t.Errorf("line 1 = %+v", l)
	}
	perReq := mustCompile(t, Spec{Tiers: docExtract, Per: "request"})
	if got := total(t, perReq, Input{Usage: files(pdf("a", 3), pdf("b", 3))}); got != cr("3") {
		t.Errorf("per request: %s", got)
	}
	over := Input{Usage: files(pdf("a", 25)), Rates: map[string]meter.Credits{"tiers.more": cr("6"), "tiers.5": cr("1")}}
	if got := total(t, rs, over); got != cr("6") {
		t.Errorf("override of the open tier: %s", got)
	}
}

func TestPerCallNeedsNothing(t *testing.T) {
	rs := mustCompile(t, Spec{PerCall: credits("1")})
	if n := rs.Needs(); n.Pages || n.JSON || n.Boxes || n.OutputPages || n.ResponseHeaders != nil {
		t.Errorf("needs = %+v", n)
	}
	q, _ := rs.Quote(Input{})
	if q.Total != cr("1") || q.Lines[0].Name != "call" {
		t.Errorf("quote = %+v", q)
	}
	if got := total(t, rs, Input{Rates: map[string]meter.Credits{"call": 0}}); got != 0 {
		t.Errorf("override to free: %s", got)
	}
}

func TestResponseRules(t *testing.T) {
	out := mustCompile(t, Spec{PerPage: credits("0.5"), Output: true, Reserve: 10})
	if n := out.Needs(); !n.OutputPages || n.Pages {
		t.Errorf("needs = %+v", n)
	}
	final := func(rs Rules, in Input, resp Response) meter.Credits {
		q, err := rs.Final(in, resp)
		if err != nil {
			t.Fatal(err)
		}
		return q.Total
	}
	if got := total(t, out, Input{}); got != cr("5") {
		t.Errorf("reserved %s", got)
	}
	// The reserve is an estimate: the real count is charged in full.
	for pages, want := range map[int]string{0: "0", 3: "1.5", 10: "5", 11: "5.5", 1 << 40: "549755813888"} {
		if got := final(out, Input{}, Response{OutputPages: pages}); got != cr(want) {
			t.Errorf("%d output pages: %s, want %s", pages, got, want)
		}
	}
	if n := out.Needs(); !n.Uncapped {
		t.Errorf("needs = %+v, want uncapped", n)
	}
	// With a ceiling, the reservation is the most charged.
	ceil := mustCompile(t, Spec{PerPage: credits("0.5"), Output: true, Reserve: 10, Ceiling: true})
	for pages, want := range map[int]string{3: "1.5", 11: "5", 1 << 40: "5"} {
		if got := final(ceil, Input{}, Response{OutputPages: pages}); got != cr(want) {
			t.Errorf("ceiling, %d output pages: %s, want %s", pages, got, want)
		}
	}
	if n := ceil.Needs(); n.Uncapped {
		t.Errorf("needs = %+v, want capped", n)
	}
	byInput := mustCompile(t, Spec{PerPage: credits("1"), Output: true, ReserveInput: true})
	in := Input{Usage: files(pdf("a", 4))}
	if n := byInput.Needs(); !n.Pages || !n.OutputPages {
		t.Errorf("needs = %+v", n)
	}
	if got, f := total(t, byInput, in), final(byInput, in, Response{OutputPages: 6}); got != cr("4") || f != cr("6") {
		t.Errorf("reserve input: quote %s final %s", got, f)
	}

	hdr := mustCompile(t, Spec{PerUnit: credits("2"), Header: "x-units", Reserve: 5}, Spec{PerCall: credits("1")})
	if n := hdr.Needs(); n.Pages || len(n.ResponseHeaders) != 1 || n.ResponseHeaders[0] != "X-Units" {
		t.Errorf("needs = %+v", n)
	}
	for v, want := range map[string]string{"3": "7", " 0 ": "1", "5": "11", "9": "19", "": "11", "abc": "11", "-4": "11", "1.5": "11", "99999999999999999999": "11"} {
		h := http.Header{}
		if v != "" {
			h.Set("X-Units", v)
		}
		if got := final(hdr, Input{}, Response{Header: h}); got != cr(want) {
			t.Errorf("header %q: %s, want %s", v, got, want)
		}
	}
	tiered := mustCompile(t, Spec{Tiers: docExtract, Header: "X-Pages", Reserve: 20})
	if got := final(tiered, Input{}, Response{Header: http.Header{"X-Pages": {"7"}}}); got != cr("3") {
		t.Errorf("tiers of header units: %s", got)
	}
	if got := final(tiered, Input{}, Response{Header: http.Header{"X-Pages": {"70"}}}); got != cr("8") {
		t.Errorf("tier of the real count: %s", got)
	}
}

func TestNeedsIsPrecise(t *testing.T) {
	for name, tt := range map[string]struct {
		spec Spec
		want Needs
	}{
		"per page":    {Spec{PerPage: credits("1")}, Needs{Pages: true}},
		"classes":     {Spec{PageClasses: []PageClass{{Name: "doc", PerPage: 1}}}, Needs{Pages: true, Boxes: true}},
		"blocks":      {Spec{Blocks: &Blocks{Pages: 5, Credits: 1}}, Needs{Pages: true}},
		"per call":    {Spec{PerCall: credits("1")}, Needs{}},
		"json":        {Spec{Name: "x", PerMatch: credits("1"), JSON: []string{"$.a"}}, Needs{JSON: true}},
		"output":      {Spec{PerPage: credits("1"), Output: true, Reserve: 1}, Needs{OutputPages: true}},
		"header once": {Spec{PerUnit: credits("1"), Header: "x-a", Reserve: 1}, Needs{ResponseHeaders: []string{"X-A"}}},
	} {
		t.Run(name, func(t *testing.T) {
			got := mustCompile(t, tt.spec).Needs()
			if got.Pages != tt.want.Pages || got.Boxes != tt.want.Boxes || got.JSON != tt.want.JSON ||
				got.OutputPages != tt.want.OutputPages || strings.Join(got.ResponseHeaders, ",") != strings.Join(tt.want.ResponseHeaders, ",") {
				t.Errorf("needs = %+v, want %+v", got, tt.want)
			}
		})
	}
	two := mustCompile(t, Spec{PerUnit: credits("1"), Header: "x-a", Reserve: 1}, Spec{Name: "b", Tiers: docExtract, Header: "X-A", Reserve: 1})
	if h := two.Needs().ResponseHeaders; len(h) != 1 {
		t.Errorf("headers not deduplicated: %v", h)
	}
}

func TestCompileErrorsNameTheRule(t *testing.T) {
	for name, tt := range map[string]struct {
		specs []Spec
		want  string
	}{
		"no kind":           {[]Spec{{PerCall: credits("1")}, {Name: "x"}}, "rule 2 (no kind x)"},
		"two kinds":         {[]Spec{{PerCall: credits("1"), PerPage: credits("1")}}, "rule 1 (per_page+per_call)"},
		"negative":          {[]Spec{{PerPage: credits("-1")}}, "per_page must not be negative"},
		"zero block":        {[]Spec{{Blocks: &Blocks{Pages: 0, Credits: 1}}}, "rule 1 (blocks): a block must have at least 1 page"},
		"tiers not open":    {[]Spec{{Tiers: []Tier{{UpTo: 1, Credits: 1}}}}, "last tier must be open-ended"},
		"tiers unordered":   {[]Spec{{Tiers: []Tier{{UpTo: 5, Credits: 1}, {UpTo: 5, Credits: 1}, {Credits: 2}}}}, "tier 2: up_to 5 must be larger"},
		"json no name":      {[]Spec{{PerMatch: credits("1"), JSON: []string{"$.a"}}}, "needs a name"},
		"json bad query":    {[]Spec{{Name: "ocr", PerMatch: credits("1"), JSON: []string{"$.a[?@.b ==]"}}}, "rule 1 (per_match ocr): query"},
		"json slice":        {[]Spec{{Name: "ocr", PerMatch: credits("1"), JSON: []string{"$.a[1:2]"}}}, "slices are not supported"},
		"json no dollar":    {[]Spec{{Name: "ocr", PerMatch: credits("1"), JSON: []string{"a.b"}}}, "starts with $"},
		"json bad regexp":   {[]Spec{{Name: "ocr", PerMatch: credits("1"), JSON: []string{"$[?match(@.a, '(')]"}}}, "match()"},
		"json non-singular": {[]Spec{{Name: "ocr", PerMatch: credits("1"), JSON: []string{"$[?@..a == 1]"}}}, "at most one node"},
		"json missing":      {[]Spec{{Name: "ocr", PerMatch: credits("1")}}, "at least one JSON query"},
		"duplicate names":   {[]Spec{{PerPage: credits("1")}, {PerPage: credits("2")}}, `rule 2 (per_page): line name "pages" is already used by rule 1`},
		"class clash":       {[]Spec{{Name: "drawing", PerCall: credits("1")}, {PageClasses: []PageClass{{Name: "drawing", PerPage: 1, LargerThan: "A3"}, {Name: "document", PerPage: 1}}}}, `"drawing" is already used`},
		"default class":     {[]Spec{{PageClasses: []PageClass{{Name: "a", PerPage: 1, LargerThan: "A3"}}}}, "the last class is the default"},
		"two defaults":      {[]Spec{{PageClasses: []PageClass{{Name: "a", PerPage: 1}, {Name: "b", PerPage: 1}}}}, "only the last class may omit"},
		"bad size":          {[]Spec{{PageClasses: []PageClass{{Name: "a", PerPage: 1, LargerThan: "huge"}, {Name: "b", PerPage: 1}}}}, `invalid size "huge"`},
		"no reservation":    {[]Spec{{PerPage: credits("1"), Output: true}}, "needs a reservation"},
		"per file output":   {[]Spec{{Blocks: &Blocks{Pages: 5, Credits: 1}, Output: true, Reserve: 5, Per: "file"}}, "per file does not apply"},
		"reserve on input":  {[]Spec{{PerPage: credits("1"), Reserve: 5}}, "reserve applies to output and header rules only"},
		"per on per_page":   {[]Spec{{PerPage: credits("1"), Per: "request"}}, "per applies to blocks and tiers only"},
		"per_unit no hdr":   {[]Spec{{PerUnit: credits("1"), Reserve: 5}}, "needs the header"},
		"bad header":        {[]Spec{{PerUnit: credits("1"), Header: "X Units", Reserve: 5}}, "not a valid header name"},
		"output and header": {[]Spec{{PerPage: credits("1"), Output: true, Header: "X-A", Reserve: 5}}, "exclusive"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(tt.specs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestOverflowIsRefused(t *testing.T) {
	rs := mustCompile(t, Spec{PerPage: credits("9000000000000")})
	_, err := rs.Quote(Input{Usage: usage.Usage{Pages: 1 << 30}})
	if meter.ErrorCode(err) != meter.ECodeBadRequest {
		t.Fatalf("err = %v", err)
	}
}

// PDF Generator API: "credits are calculated based on the number of pages
// in the generated PDF": 1 credit per started block of 5 pages. A
// 134-page output with 100 pages reserved costs 27, not 20; with
// at_least 1 the smallest hold is 1 credit.
func TestOutputEstimate(t *testing.T) {
	blocks := &Blocks{Pages: 5, Credits: cr("1")}
	rs := mustCompile(t, Spec{Blocks: blocks, Output: true, Reserve: 100, AtLeast: 1})
	q, err := rs.Quote(Input{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Total != cr("20") || q.Minimum != cr("1") || !q.Estimate || !q.Lines[0].Estimate {
		t.Errorf("quote %+v", q)
	}
	f, err := rs.Final(Input{}, Response{OutputPages: 134})
	if err != nil || f.Total != cr("27") {
		t.Errorf("134 pages: %+v %v", f, err)
	}
	plain := mustCompile(t, Spec{PerCall: credits("1")})
	if q, _ := plain.Quote(Input{}); q.Estimate || q.Minimum != q.Total {
		t.Errorf("a quote without estimates: %+v", q)
	}
	for _, bad := range []Spec{
		{Blocks: blocks, Output: true, Reserve: 10, AtLeast: 11},
		{Blocks: blocks, Output: true, Reserve: 10, AtLeast: -1},
		{Blocks: blocks, Output: true, Reserve: 10, AtLeast: 1, Ceiling: true},
		{PerCall: credits("1"), AtLeast: 1},
		{PerCall: credits("1"), Ceiling: true},
	} {
		if _, err := Compile([]Spec{bad}); err == nil {
			t.Errorf("%+v compiled", bad)
		}
	}
}
