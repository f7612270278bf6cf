package pdfscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParserObjects(t *testing.T) {
	tests := []struct {
		in   string
		want Object
	}{
		{"null", nil},
		{"true", true},
		{"false", false},
		{"123", int64(123)},
		{"-4", int64(-4)},
		{"+5", int64(5)},
		{"3.14", 3.14},
		{"-.5", -0.5},
		{"4.", 4.0},
		{"--3", -3.0}, // a known writer bug, read as readers do
		{"-", 0.0},
		{"99999999999999999999", 1e20},
		{"/Name", Name("Name")},
		{"/A#20B", Name("A B")},
		{"/", Name("")},
		{"/Type/Page", Name("Type")},
		{"(hello)", String("hello")},
		{"(a(b)c)", String("a(b)c")},
		{`(\(x\))`, String("(x)")},
		{`(\101\n\t\\)`, String("A\n\t\\")},
		{"(line\\\ncont)", String("linecont")},
		{"(line\\\r\ncont)", String("linecont")},
		{`(\q)`, String("q")},
		{"<48656c6C6F>", String("Hello")},
		{"<4 8\n6>", String("H`")},
		{"<>", String(nil)},
		{"()", String(nil)},
		{"[1 2 0 R /X]", Array{int64(1), Ref{2, 0}, Name("X")}},
		{"[1 2 R]", Array{Ref{1, 2}}},
		{"[]", Array{}},
		{"[[1][2]]", Array{Array{int64(1)}, Array{int64(2)}}},
		{"<</A 1 /B [true] /C <</D 5 0 R>>>>", Dict{"A": int64(1), "B": Array{true}, "C": Dict{"D": Ref{5, 0}}}},
		{"<</A>>", Dict{"A": nil}},
		{"<</Length 10 0 R/Filter/FlateDecode>>", Dict{"Length": Ref{10, 0}, "Filter": Name("FlateDecode")}},
		{"1 0 R", Ref{1, 0}},
		{"12 3 R", Ref{12, 3}},
		{"-1 0 R", int64(-1)},
		{"1 0", int64(1)},
		{"1 0 obj", int64(1)},
		{"1 0 Rx", int64(1)},
		{"% comment\n5", int64(5)},
		{"obj", keyword("obj")},
		{"endstream", keyword("endstream")},
	}
	// With a free list (recycled maps, an array stack that already holds
	// items), as a scan parses, the objects are the same.
	free := &freeList{dicts: []Dict{{"Stale": int64(1)}}, items: Array{"below"}}
	clear(free.dicts[0])
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			for _, f := range []*freeList{nil, free} {
				p := parser{b: []byte(tc.in), eof: true, free: f}
				got, err := p.object()
				if err != nil {
					t.Fatalf("object(%q): %v", tc.in, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("object(%q) = %#v, want %#v", tc.in, got, tc.want)
				}
			}
		})
	}
	if !reflect.DeepEqual(free.items, Array{"below"}) {
		t.Errorf("array stack left as %v", free.items)
	}
}

// A window that ends inside an object asks for more data; the end of the
// data is damage.
func TestParserShortData(t *testing.T) {
	for _, in := range []string{"(abc", "<414", "[1 2", "<</A 1", "5 0", "5", "/Nam", "tru", "<", "<</A 1 0"} {
		t.Run(in, func(t *testing.T) {
			p := parser{b: []byte(in)}
			if _, err := p.object(); !errors.Is(err, errShort) {
				t.Errorf("err = %v, want errShort", err)
			}
		})
	}
	for _, in := range []string{"(abc", "<414", "[1 2", "<</A 1", "<</A 1 0"} {
		t.Run(in+" at eof", func(t *testing.T) {
			p := parser{b: []byte(in), eof: true}
			if _, err := p.object(); !errors.Is(err, ErrDamaged) {
				t.Errorf("err = %v, want ErrDamaged", err)
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{strings.Repeat("[", 200), ErrLimit},
		{strings.Repeat("<</A ", 200), ErrLimit},
		{"<</A 1 2>>", ErrDamaged}, // a key that is not a name
		{"<zz>", ErrDamaged},
		{"[1 endobj]", ErrDamaged},
		{"[1 R]", ErrDamaged}, // a stray R
		{"<</A endobj>>", ErrDamaged},
	}
	for _, tc := range tests {
		t.Run(tc.in[:min(len(tc.in), 20)], func(t *testing.T) {
			p := parser{b: []byte(tc.in), eof: true}
			if _, err := p.object(); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// skipValue ends where object does, and asks for more data where it does,
// on every prefix of values found in page dictionaries.
func TestSkipValueEndsWhereObjectEnds(t *testing.T) {
	values := []string{
		"12 0 R", "12 0 Rx", "12 0", "12", "-3 0 R", "3.5 0 R", "3 0.5 R", "1234567890123456789 0 R", "+7", ".5", "1.2.3",
		"/Name", "true", "null",
		"(a(b)c)", `(a\)b)`, `(\\)`, "(%not a comment)", "<48 65>", "<>",
		"[0 0 595.275 841.889]", "[1 [2 (])] <</A >>]", "[% comment ]\n1]",
		"<</Font <</F1 5 0 R /F2 6 0 R>> /ProcSet [/PDF /Text] /XObject <<>>>>",
		"<</A (>>) /B <3E3E> /C [<<>>]>>",
		"<</S /GoTo /D (page.1)>>",
	}
	for _, v := range values {
		for n := 1; n <= len(v); n++ {
			in := v[:n] + " /Next"
			if n < len(v) {
				in = v[:n]
			}
			p := parser{b: []byte(in)}
			_, err := p.object()
			q := parser{b: []byte(in)}
			skipErr := q.skipValue()
			switch {
			case errors.Is(err, errShort):
				if !errors.Is(skipErr, errShort) {
					t.Errorf("%q: object asks for more data, skipValue: %v", in, skipErr)
				}
			case err == nil:
				if skipErr != nil || q.pos != p.pos {
					t.Errorf("%q: object ends at %d, skipValue at %d (%v)", in, p.pos, q.pos, skipErr)
				}
			}
		}
	}
}

// decimal reads reals as strconv.ParseFloat does.
func TestDecimal(t *testing.T) {
	ins := []string{"595.275", "841.889", "0.1", "-0.0", "+.5", "5.", "123456789012.345", "0.00000000000001", "999999999999999.", "-12.5"}
	for i := range 2000 {
		ins = append(ins, strconv.FormatFloat(float64(i*7919%100000)/1000, 'f', 1+i%6, 64))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 { // up to 15 random digits, the dot anywhere
		b := make([]byte, 1+r.IntN(15))
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		dot := r.IntN(len(b) + 1)
		ins = append(ins, string(b[:dot])+"."+string(b[dot:]))
	}
	for _, in := range ins {
		got, ok := decimal([]byte(in))
		want, err := strconv.ParseFloat(in, 64)
		if !ok || err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("decimal(%q) = %v, %v; ParseFloat: %v, %v", in, got, ok, want, err)
		}
	}
	for _, in := range []string{"1", "1.2.3", ".", "-", "1e5", "1234567890123456.7", "--1.5", "0x1.8"} {
		if _, ok := decimal([]byte(in)); ok {
			t.Errorf("decimal(%q) accepted", in)
		}
	}
}

// TestQuadReadsAsNumbersWould checks that the boxes a shallow parser reads
// as quads give what numbers gives for the Array a full parse reads.
func TestQuadReadsAsNumbersWould(t *testing.T) {
	d := newDoc(context.Background(), bytes.NewReader(nil), 0, testLimits) // references resolve to null
	for _, box := range []string{
		"[0 0 612 792]", "[ 0 0 595.28 841.89 ]", "[-1 +2 .5 3.]", "[--1 1.2.3 0 9999999999999999999]",
		"[0 0 612]", "[0 0 612 792 1]", "[0 0 1 0 R 5]", "[0 0 612 /X]", "[0 0 612 792", "[0 0 612 (x)]",
		"[0 0 1 2 0 R]", "[1 2 3 4%c\n]", "[1\n2\r3\t4]", "1 0 R", "[ ]",
	} {
		src := "<</MediaBox " + box + " /CropBox " + box + ">>"
		full := parser{b: []byte(src), eof: true}
		shallow := parser{b: []byte(src), eof: true, shallow: true}
		want, wantErr := full.object()
		got, gotErr := shallow.object()
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || full.pos != shallow.pos {
			t.Fatalf("%s: shallow err %v at %d, full %v at %d", src, gotErr, shallow.pos, wantErr, full.pos)
		}
		if wantErr != nil {
			continue
		}
		for _, key := range []Name{"MediaBox", "CropBox"} {
			w, err1 := d.numbers(want.(Dict)[key], new([4]float64))
			g, err2 := d.numbers(got.(Dict)[key], new([4]float64))
			if err1 != nil || err2 != nil || !reflect.DeepEqual(w, g) {
				t.Errorf("%s: %s is %v (%v) from a quad, %v (%v) from the Array", box, key, g, err2, w, err1)
			}
		}
	}
}

// TestCharClasses checks the table against the PDF character classes.
func TestCharClasses(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		w := c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0 || c == '\v'
		d := strings.IndexByte("()<>[]{}/%", c) >= 0
		if isWhite(c) != w || isDelim(c) != d || isRegular(c) != (!w && !d) {
			t.Errorf("%q: white %v delim %v regular %v", c, isWhite(c), isDelim(c), isRegular(c))
		}
	}
}
