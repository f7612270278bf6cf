package pricing

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func TestJSONRulePart(t *testing.T) {
	two := meter.Credits(2000)
	spec := func(name, part string) Spec {
		return Spec{Name: name, PerMatch: &two, JSON: []string{"$..ocr"}, Part: part}
	}
	rs, err := Compile([]Spec{spec("a", "instructions"), spec("b", "instructions")})
	if err != nil {
		t.Fatal(err)
	}
	if n := rs.Needs(); !n.JSON || n.JSONPart != "instructions" {
		t.Fatalf("needs %+v", n)
	}
	// Without the JSON: the refusal says how to send it.
	_, err = rs.Quote(Input{})
	if meter.ErrorCode(err) != meter.ECodeBadRequest || !strings.Contains(err.Error(), `one "instructions" part`) {
		t.Fatalf("no JSON: %v", err)
	}
	q, err := rs.Quote(Input{JSON: []byte(`{"ocr": 1}`)})
	if err != nil || q.Total != 4000 {
		t.Fatalf("quote %+v, %v", q, err)
	}
	for _, tt := range []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{spec("a", "instructions"), spec("b", "other")}, "a route reads one JSON document"},
		{[]Spec{spec("a", ""), spec("b", "instructions")}, "a route reads one JSON document"},
		{[]Spec{spec("a", "in/structions")}, "use letters"},
		{[]Spec{{PerCall: &two, Part: "instructions"}}, "part belongs to per_match rules"},
	} {
		if _, err := Compile(tt.specs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.specs, err, tt.want)
		}
	}
}
