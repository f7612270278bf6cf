package pricing

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func jsonUnits(t *testing.T, query, body string) (int64, string, error) {
	t.Helper()
	rs := mustCompile(t, Spec{Name: "f", PerMatch: credits("1"), JSON: []string{query}})
	q, err := rs.Quote(Input{JSON: []byte(body)})
	if err != nil {
		return 0, "", err
	}
	return q.Lines[0].Units, q.Lines[0].Source, nil
}

func TestJSONQueries(t *testing.T) {
	const build = `{"parts":[{"file":"a","content_type":"image/gif"},{"file":"b","actions":[{"type":"ocr"},{"type":"OCR"}]},{"html":"x","actions":[{"type":"ocr","language":"de"}]}],
		"actions":[{"type":"flatten"},{"type":"rotate","rotateBy":90}],"output":{"type":"pdf","optimize":{"linearize":false,"grayscale":true}},"weird key":{"n":3.5}}`
	for _, tt := range []struct {
		name, query string
		want        int64
		source      string
	}{
		{"filter in wildcard", "$.parts[*].actions[?(@.type=='ocr')]", 2, "$.parts[1].actions[0], $.parts[2].actions[0]"},
		{"descendants", "$..actions[?@.type == 'ocr']", 2, ""},
		{"missing field counts 0", "$.parts[*].pages[?@.type == 'ocr']", 0, ""},
		{"missing deep field counts 0", "$.output.encryption.password", 0, ""},
		{"comparison false", "$.output.optimize.linearize == true", 0, ""},
		{"comparison true", "$.output.optimize.grayscale == true", 1, "$.output.optimize.grayscale"},
		{"comparison on missing", "$.output.nope == null", 0, ""},
		{"string comparison", "$.output.type != 'pdfa'", 1, ""},
		{"existence test", "$.parts[?@.actions]", 2, "$.parts[1], $.parts[2]"},
		{"negated existence", "$.parts[?!@.actions]", 1, "$.parts[0]"},
		{"and or parentheses", "$.parts[?@.file && (@.content_type || @.actions)]", 2, ""},
		{"numbers", "$.actions[?@.rotateBy >= 90 && @.rotateBy < 180]", 1, "$.actions[1]"},
		{"negative index", "$.actions[-1]", 1, "$.actions[1]"},
		{"index out of range", "$.actions[5]", 0, ""},
		{"union", "$.parts[0,2]", 2, ""},
		{"bracket names", "$['weird key'].n", 1, `$["weird key"].n`},
		{"match is whole", "$.parts[?match(@.content_type, 'image/.*')]", 1, ""},
		{"match anchors", "$.parts[?match(@.content_type, 'image')]", 0, ""},
		{"search", "$..actions[?search(@.type, '(?i)ocr')]", 3, ""},
		{"length", "$.parts[?length(@.actions) > 1]", 1, "$.parts[1]"},
		{"count", "$[?count(@.*) == 3]", 1, "$.parts"},
		{"absolute query in filter", "$.parts[?$.output.type == 'pdf']", 3, ""},
		{"wildcard on object", "$.output.optimize.*", 2, ""},
		{"root", "$", 1, "$"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, src, err := jsonUnits(t, tt.query, build)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want || (tt.source != "" && src != tt.source) {
				t.Errorf("units %d source %q, want %d %q", n, src, tt.want, tt.source)
			}
		})
	}
}

func TestJSONHostileBodies(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65)
	okDeep := strings.Repeat(`[`, 64) + strings.Repeat("]", 64)
	wide := "[" + strings.Repeat("0,", maxJSONValues) + "0]"
	for _, tt := range []struct {
		name, body string
		wantErr    bool
	}{
		{"not JSON", "%PDF-1.7", true},
		{"truncated", `{"parts":[`, true},
		{"two values", `{} {}`, true},
		{"trailing garbage", `{"a":1}x`, true},
		{"empty", ``, true},
		{"too deep", deep, true},
		{"64 levels are fine", okDeep, false},
		{"too many values", wide, true},
		{"huge number", `{"a":1e999}`, true},
		{"duplicate keys: last wins", `{"actions":[{"type":"flatten","type":"ocr"}]}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := jsonUnits(t, "$..actions[?@.type=='ocr']", tt.body)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && meter.ErrorCode(err) != meter.ECodeBadRequest {
				t.Fatalf("code %s", meter.ErrorCode(err))
			}
		})
	}
	n, _, _ := jsonUnits(t, "$..actions[?@.type=='ocr']", `{"actions":[{"type":"flatten","type":"ocr"}]}`)
	if n != 1 {
		t.Errorf("duplicate key: %d", n)
	}
	t.Run("nil body", func(t *testing.T) {
		rs := mustCompile(t, Spec{Name: "f", PerMatch: credits("1"), JSON: []string{"$.a"}})
		if _, err := rs.Quote(Input{}); meter.ErrorCode(err) != meter.ECodeBadRequest {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("work is bounded", func(t *testing.T) {
		// A wide, nested document under a query that revisits every node
		// from every node would take quadratic time; the step budget stops it.
		body := "[" + strings.Repeat(`{"a":[1,2,3,4,5,6,7,8]},`, 20000) + "0]"
		_, _, err := jsonUnits(t, "$..*[?count($..*) > 0]", body)
		if meter.ErrorCode(err) != meter.ECodeBadRequest || !strings.Contains(err.Error(), "too complex") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPrepareParsesOnce(t *testing.T) {
	rs := mustCompile(t,
		Spec{Name: "a", PerMatch: credits("1"), JSON: []string{"$.x"}},
		Spec{Name: "b", PerMatch: credits("0.5"), JSON: []string{"$.x", "$.y"}},
	)
	in, err := rs.Prepare(Input{JSON: []byte(`{"x":1,"y":2}`)})
	if err != nil || in.doc == nil {
		t.Fatal(err)
	}
	in.JSON = []byte("not json") // the parsed document is used
	q, err := rs.Final(in, Response{})
	if err != nil || q.Total != cr("2") {
		t.Fatalf("%+v %v", q, err)
	}
	if _, err := rs.Prepare(Input{JSON: []byte("[")}); meter.ErrorCode(err) != meter.ECodeBadRequest {
		t.Fatalf("err = %v", err)
	}
}
