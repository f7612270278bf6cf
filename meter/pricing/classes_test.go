package pricing

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

func box(w, h float32, rotate int16) usage.PageBox {
	return usage.PageBox{MediaBox: [4]float32{0, 0, w, h}, CropBox: [4]float32{0, 0, w, h}, Rotate: rotate}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string][2]float64{
		"11x17in":   {792, 1224},
		"17x11in":   {792, 1224},
		"A3":        {841.89, 1190.55},
		"a4":        {595.28, 841.89},
		"A0":        {2383.94, 3370.39},
		"B4":        {708.66, 1000.63},
		"297x420mm": {841.89, 1190.55},
		"29.7x42cm": {841.89, 1190.55},
		"612x792pt": {612, 792},
		"Letter":    {612, 792},
		"tabloid":   {792, 1224},
	} {
		s, err := ParseSize(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if d0, d1 := s.Short-want[0], s.Long-want[1]; d0 > 0.01 || d0 < -0.01 || d1 > 0.01 || d1 < -0.01 {
			t.Errorf("%s = %+v, want %v", in, s, want)
		}
	}
	for _, bad := range []string{"", "A11", "C4", "11x17", "11in", "0x5in", "-1x5in", "axbin", "11x17ft"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPageClasses(t *testing.T) {
	plangrep := []PageClass{{Name: "drawing", PerPage: cr("10"), LargerThan: "11x17in"}, {Name: "document", PerPage: cr("1")}}
	rs := mustCompile(t, Spec{PageClasses: plangrep})
	onA3 := mustCompile(t, Spec{PageClasses: []PageClass{{Name: "drawing", PerPage: cr("10"), LargerThan: "A3"}, {Name: "document", PerPage: cr("1")}}})
	for _, tt := range []struct {
		name        string
		boxes       []usage.PageBox
		want, wantA string // drawing pages with 11x17in, with A3
	}{
		{"letter", []usage.PageBox{box(612, 792, 0)}, "0", "0"},
		{"tabloid exactly", []usage.PageBox{box(792, 1224, 0)}, "0", "1"},
		{"tabloid landscape", []usage.PageBox{box(1224, 792, 0)}, "0", "1"},
		{"A3 is wider than 11 in", []usage.PageBox{box(842, 1191, 0)}, "1", "0"},
		{"A3 exact mm in points", []usage.PageBox{box(841.89, 1190.55, 0)}, "1", "0"},
		{"a point over tabloid still fits", []usage.PageBox{box(792.9, 1224.9, 0)}, "0", "1"},
		{"two points over does not", []usage.PageBox{box(794, 1224, 0)}, "1", "1"},
		{"ARCH D rotated", []usage.PageBox{box(1728, 2592, 90)}, "1", "1"},
		{"letter rotated 270", []usage.PageBox{box(612, 792, 270)}, "0", "0"},
		{"square larger than 11 in", []usage.PageBox{box(864, 864, 0)}, "1", "1"},
		{"mixed", []usage.PageBox{box(612, 792, 0), box(2592, 1728, 0), box(612, 792, 180), box(1728, 2592, 90)}, "2", "2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := files(usage.File{Kind: usage.KindPDF, Pages: len(tt.boxes), PageSizes: each(tt.boxes...)})
			for rules, want := range map[*Rules]string{&rs: tt.want, &onA3: tt.wantA} {
				q, err := rules.Quote(Input{Usage: u})
				if err != nil {
					t.Fatal(err)
				}
				if got := q.Lines[0].Units; got != int64(cr(want)/meter.Scale) {
					t.Errorf("drawing pages = %d, want %s (lines %+v)", got, want, q.Lines)
				}
				if q.Lines[0].Units+q.Lines[1].Units != int64(len(tt.boxes)) {
					t.Errorf("pages lost: %+v", q.Lines)
				}
			}
		})
	}
	t.Run("images, missing boxes and many files", func(t *testing.T) {
		u := files(
			usage.File{Kind: usage.KindImage, Pages: 1},
			usage.File{Kind: usage.KindPDF, Pages: 3, PageSizes: each(box(2592, 1728, 0))},
			usage.File{Kind: usage.KindPDF, Pages: 2, PageSizes: each(box(2592, 1728, 0), box(612, 792, 0))},
			usage.File{Kind: usage.KindOther},
		)
		q, _ := rs.Quote(Input{Usage: u})
		if q.Lines[0].Units != 2 || q.Lines[1].Units != 4 || q.Total != cr("24") {
			t.Errorf("quote = %+v", q)
		}
		q, _ = rs.Quote(Input{Usage: u, Rates: map[string]meter.Credits{"drawing": cr("8"), "document": cr("2")}})
		if q.Total != cr("24") || q.Lines[0].UnitCost != cr("8") {
			t.Errorf("with overrides: %+v", q)
		}
	})
	t.Run("zero pages keeps both lines", func(t *testing.T) {
		q, _ := rs.Quote(Input{})
		if len(q.Lines) != 2 || q.Total != 0 || q.Lines[0].Name != "drawing" || q.Lines[1].Name != "document" {
			t.Errorf("quote = %+v", q)
		}
	})
	t.Run("three classes, first match wins", func(t *testing.T) {
		three := mustCompile(t, Spec{PageClasses: []PageClass{
			{Name: "large", PerPage: cr("20"), LargerThan: "A1"},
			{Name: "drawing", PerPage: cr("10"), LargerThan: "11x17in"},
			{Name: "document", PerPage: cr("1")},
		}})
		u := files(usage.File{Kind: usage.KindPDF, Pages: 3, PageSizes: each(box(2592, 3456, 0), box(1224, 1584, 0), box(612, 792, 0))})
		if got := total(t, three, Input{Usage: u}); got != cr("31") {
			t.Errorf("total %s", got)
		}
	})
}

// each gives every box one page.
func each(boxes ...usage.PageBox) []usage.PageSize {
	out := make([]usage.PageSize, len(boxes))
	for i, b := range boxes {
		out[i] = usage.PageSize{Box: b, Pages: 1}
	}
	return out
}

// Pages repeated through a shared page tree come as a few sizes with
// large counts; they are priced exactly, and a size list that claims more
// pages than the file has is cut to its pages.
func TestClassesCountedSizes(t *testing.T) {
	rs := mustCompile(t, Spec{PageClasses: []PageClass{
		{Name: "drawing", PerPage: cr("10"), LargerThan: "11x17in"},
		{Name: "document", PerPage: cr("1")},
	}})
	u := files(usage.File{Kind: usage.KindPDF, Pages: 1<<40 + 7, PageSizes: []usage.PageSize{
		{Box: box(2592, 1728, 0), Pages: 1 << 40}, {Box: box(612, 792, 0), Pages: 3},
	}})
	q, err := rs.Quote(Input{Usage: u})
	if err != nil {
		t.Fatal(err)
	}
	if q.Lines[0].Units != 1<<40 || q.Lines[1].Units != 7 {
		t.Errorf("lines = %+v, want 2^40 drawing pages and 7 document pages (4 without a box)", q.Lines)
	}
	u = files(usage.File{Kind: usage.KindPDF, Pages: 2, PageSizes: []usage.PageSize{{Box: box(2592, 1728, 0), Pages: 5}}})
	if q, _ := rs.Quote(Input{Usage: u}); q.Lines[0].Units != 2 || q.Lines[1].Units != 0 {
		t.Errorf("lines = %+v, want 2 drawing pages", q.Lines)
	}
}
