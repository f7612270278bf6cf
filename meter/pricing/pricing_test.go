package pricing

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

func credits(s string) *meter.Credits {
	c, err := meter.ParseCredits(s)
	if err != nil {
		panic(err)
	}
	return &c
}

func TestPerPageQuote(t *testing.T) {
	tests := []struct {
		name  string
		rate  string
		pages int
		want  meter.Credits
	}{
		{"zero pages", "1", 0, 0},
		{"one page", "1", 1, 1000},
		{"many pages", "2", 37, 74000},
		{"fractional rate", "0.5", 23, 11500},
		{"free", "0", 9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := Compile([]Spec{{PerPage: credits(tt.rate)}})
			if err != nil {
				t.Fatal(err)
			}
			q, err := rules.Quote(Input{Usage: usage.Usage{Pages: tt.pages}})
			if err != nil {
				t.Fatal(err)
			}
			if q.Total != tt.want {
				t.Fatalf("total = %s, want %s", q.Total, tt.want)
			}
			if len(q.Lines) != 1 || q.Lines[0].Units != int64(tt.pages) || q.Lines[0].Cost != tt.want || q.Lines[0].Name != "pages" {
				t.Fatalf("lines = %+v", q.Lines)
			}
			if !rules.Needs().Pages {
				t.Fatal("per_page must need pages")
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	for name, specs := range map[string][]Spec{
		"negative": {{PerPage: credits("-1")}},
		"empty":    {{Name: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Compile(specs); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
