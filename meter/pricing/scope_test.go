package pricing

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func TestRateNames(t *testing.T) {
	one, two := meter.Credits(1000), meter.Credits(2000)
	rs, err := Compile([]Spec{
		{Tiers: []Tier{{UpTo: 5, Credits: one}, {Credits: two}}},
		{PerCall: &one, Name: "call"},
		{PageClasses: []PageClass{{Name: "drawing", PerPage: two, LargerThan: "11x17in"}, {Name: "document", PerPage: one}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"call", "document", "drawing", "tiers.5", "tiers.more"}
	if got := rs.RateNames(); !reflect.DeepEqual(got, want) {
		t.Fatalf("RateNames = %v, want %v", got, want)
	}
}

// The demo's two routes both have "pages": an account's "convert.pages"
// applies to convert only, an unscoped "pages" to neither (and Check
// refuses it); a name only one route has applies unscoped.
func TestScope(t *testing.T) {
	var s Scope
	s.Add("convert", []string{"pages"})
	s.Add("ocr", []string{"pages", "ocr_api"})
	half, quarter := meter.Credits(500), meter.Credits(250)
	for _, tt := range []struct {
		name       string
		rates      map[string]meter.Credits
		convert    map[string]meter.Credits
		ocr        map[string]meter.Credits
		checkError bool
	}{
		{"scoped", map[string]meter.Credits{"convert.pages": half},
			map[string]meter.Credits{"pages": half}, map[string]meter.Credits{}, false},
		{"unscoped, ambiguous", map[string]meter.Credits{"pages": half},
			map[string]meter.Credits{}, map[string]meter.Credits{}, true},
		{"unscoped, one route", map[string]meter.Credits{"ocr_api": half},
			map[string]meter.Credits{}, map[string]meter.Credits{"ocr_api": half}, false},
		{"scoped wins", map[string]meter.Credits{"ocr.ocr_api": quarter, "ocr_api": half},
			map[string]meter.Credits{}, map[string]meter.Credits{"ocr_api": quarter}, false},
		{"unknown rate", map[string]meter.Credits{"convert.drawing": half},
			map[string]meter.Credits{}, map[string]meter.Credits{}, true},
		{"unknown route", map[string]meter.Credits{"extract.pages": half},
			map[string]meter.Credits{}, map[string]meter.Credits{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.For(tt.rates, "convert"); !reflect.DeepEqual(got, tt.convert) {
				t.Errorf("convert: %v, want %v", got, tt.convert)
			}
			if got := s.For(tt.rates, "ocr"); !reflect.DeepEqual(got, tt.ocr) {
				t.Errorf("ocr: %v, want %v", got, tt.ocr)
			}
			if err := s.Check(tt.rates); (err != nil) != tt.checkError {
				t.Errorf("Check: %v, want error %v", err, tt.checkError)
			}
		})
	}
	var empty Scope
	if err := empty.Check(map[string]meter.Credits{"anything": half}); err != nil {
		t.Fatalf("a gateway without routes refused a rate: %v", err)
	}
}
