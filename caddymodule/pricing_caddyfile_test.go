package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

// adaptRules adapts a meter block and returns its "rules" as JSON.
func adaptRules(t *testing.T, block string) (string, error) {
	t.Helper()
	m, err := adapt(t, ":8080 {\n\tmeter {\n"+block+"\n\t}\n\treverse_proxy localhost:9000\n}")
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(find(m, "meter")["rules"])
	return string(b), nil
}

func TestPricingCaddyfileAdapt(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"per_page unchanged", `per_page 0.5`, `[{"per_page":0.5}]`},
		{"named per_page", `per_page sheets 2`, `[{"name":"sheets","per_page":2}]`},
		{"page classes", "per_page {\n drawing 10 larger_than 11x17in\n document 1\n}",
			`[{"page_classes":[{"name":"drawing","per_page":10,"larger_than":"11x17in"},{"name":"document","per_page":1}]}]`},
		{"blocks", `blocks 5 1`, `[{"blocks":{"pages":5,"credits":1}}]`},
		{"blocks per request", `blocks pdf_blocks 5 1 per_request`, `[{"name":"pdf_blocks","blocks":{"pages":5,"credits":1},"per":"request"}]`},
		{"tiers", `tiers 1:1 5:2 10:3 20:5 *:8`,
			`[{"tiers":[{"up_to":1,"credits":1},{"up_to":5,"credits":2},{"up_to":10,"credits":3},{"up_to":20,"credits":5},{"credits":8}]}]`},
		{"tiers per file, named", `tiers document 1:1 *:2.5 per_file`, `[{"name":"document","tiers":[{"up_to":1,"credits":1},{"credits":2.5}],"per":"file"}]`},
		{"per call", `per_call qr_code 1`, `[{"name":"qr_code","per_call":1}]`},
		{"json", "json ocr_api 2 \"$..actions[?@.type == 'ocr']\"", `[{"name":"ocr_api","per_match":2,"json":["$..actions[?@.type == 'ocr']"]}]`},
		{"json, several queries", "json editor 1 $.parts[1] `$..actions[?@.type=='rotate']`", `[{"name":"editor","per_match":1,"json":["$.parts[1]","$..actions[?@.type=='rotate']"]}]`},
		{"json read from a multipart part", "json ocr_api 2 part instructions $..ocr\njson pdfa 1 part instructions $.output",
			`[{"name":"ocr_api","per_match":2,"json":["$..ocr"],"part":"instructions"},{"name":"pdfa","per_match":1,"json":["$.output"],"part":"instructions"}]`},
		{"output blocks", `blocks 5 1 output reserve 50`, `[{"blocks":{"pages":5,"credits":1},"output":true,"reserve":50}]`},
		{"output estimate at least", `blocks 5 1 output reserve 50 at_least 1`, `[{"blocks":{"pages":5,"credits":1},"output":true,"reserve":50,"at_least":1}]`},
		{"output ceiling", `blocks 5 1 output reserve 50 ceiling`, `[{"blocks":{"pages":5,"credits":1},"output":true,"reserve":50,"ceiling":true}]`},
		{"output per page, reserve input", `per_page 0.1 output reserve input`, `[{"per_page":0.1,"output":true,"reserve_input":true}]`},
		{"header units", `per_unit 0.01 header X-Billable-Units reserve 1000`, `[{"per_unit":0.01,"header":"X-Billable-Units","reserve":1000}]`},
		{"rules add up", "per_call 1\nper_page 0.5", `[{"per_call":1},{"per_page":0.5}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := adaptRules(t, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var w any
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(w); got != string(b) {
				t.Errorf("\n got %s\nwant %s", got, b)
			}
		})
	}
}

func TestPricingCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"bad credits", `per_page lots`, `per_page: expected a non-negative number of credits`},
		{"negative", `per_call -1`, `expected a non-negative number`},
		{"json without name", `json 2 $.a`, "expected `json <name> <credits> <query>...`"},
		{"json without query", `json ocr 2`, `missing the JSON query`},
		{"json part without name", `json ocr 2 part`, `part needs the multipart field's name`},
		{"json part without query", `json ocr 2 part instructions`, `missing the JSON query`},
		{"json parts differ", "json ocr 2 part instructions $.a\njson pdfa 1 part other $.b", `a route reads one JSON document`},
		{"json part on one rule only", "json ocr 2 part instructions $.a\njson pdfa 1 $.b", `a route reads one JSON document`},
		{"json part name", "json ocr 2 part a/b $.a", `part "a/b": use letters`},
		{"bad query names rule", `json ocr 2 $.a[?@.b==]`, `json: rule 1 (per_match ocr): query`},
		{"bad size", "per_page {\n drawing 10 larger_than huge\n document 1\n}", `class "drawing": invalid size "huge"`},
		{"class syntax", "per_page {\n drawing 10 bigger A3\n document 1\n}", "expected `<class> <credits> [larger_than <size>]`"},
		{"no default class", "per_page {\n drawing 10 larger_than A3\n}", `the last class is the default`},
		{"block size", `blocks 0 1`, `block size must be a positive whole number`},
		{"tier syntax", `tiers 1:1 x:2 *:3`, `tiers: "x:2"`},
		{"tier table", `tiers 5:1 1:2 *:3`, `tier 2: up_to 1 must be larger`},
		{"open tier missing", `tiers 1:1 5:2`, `last tier must be open-ended`},
		{"unknown option", `blocks 5 1 per_page`, `unexpected or repeated "per_page"`},
		{"repeated option", `blocks 5 1 per_file per_request`, `unexpected or repeated "per_request"`},
		{"reserve needed", `per_page 1 output`, `needs a reservation`},
		{"reserve value", `per_page 1 output reserve lots`, `reserve: expected a positive whole count`},
		{"at_least value", `per_page 1 output reserve 5 at_least 0`, `at_least: expected a positive whole count`},
		{"at_least above reserve", `per_page 1 output reserve 5 at_least 6`, `at_least must be between 0 and the reserve`},
		{"at_least without output", `per_page 1 at_least 1`, `at_least and ceiling apply to output and header rules only`},
		{"two unnamed", "per_page 1\nper_page 2", `per_page given more than once`},
		{"duplicate line", "per_call a 1\nper_page a 2", `rule 2 (per_page a): line name "a" is already used by rule 1`},
		{"block on rule", "per_call 1 {\n x\n}", `per_call takes no block`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adaptRules(t, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error does not name the line: %v", err)
			}
		})
	}
}
