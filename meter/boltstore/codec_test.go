package boltstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// fill sets every field of v (a pointer to a struct), nested ones
// included, to a value that is not zero and differs from the others', so
// that a field the binary layout leaves out fails the round trip. A field
// added to a record (or to ledger.Account, Hold, Lot, LotPart) without a
// place in its layout fails here.
func fill(v reflect.Value, n *int64) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("json") == "-" {
				continue // not stored (ledger.Account.Threshold)
			}
			fill(v.Field(i), n)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			*n++
			v.SetBytes([]byte(fmt.Sprintf(`{"v":%d}`, *n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Int, reflect.Int64:
		*n++
		v.SetInt(*n * 1_000_003)
	case reflect.String:
		*n++
		v.SetString(fmt.Sprint("s", *n))
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic("fill: " + v.Kind().String())
	}
}

type record interface {
	encode() []byte
	decode(*rbuf)
}

// Each record's binary layout round-trips every field, and its decoder
// still reads the JSON the store wrote before (the same struct marshalled
// by encoding/json), to the same value.
func TestRecordFormats(t *testing.T) {
	for _, mk := range []func() record{
		func() record { return new(account) },
		func() record { return new(reservation) },
		func() record { return new(entry) },
		func() record { return new(counters) },
	} {
		in := mk()
		var n int64
		fill(reflect.ValueOf(in), &n)
		t.Run(fmt.Sprintf("%T", in), func(t *testing.T) {
			raw := in.encode()
			out := mk()
			if err := decodeRecord(raw, out, out.decode); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("binary round trip:\n got %+v\nwant %+v", out, in)
			}
			old, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out = mk()
			if err := decodeRecord(old, out, out.decode); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("JSON record:\n got %+v\nwant %+v", out, in)
			}
			// A record cut short anywhere but at a field's end is an
			// error, never a panic or a silently wrong value beyond it.
			for i := 1; i < len(raw); i++ {
				out = mk()
				_ = decodeRecord(raw[:i], out, out.decode)
			}
			if err := decodeRecord(nil, out, out.decode); err == nil {
				t.Error("empty record read")
			}
		})
	}
}

// A layout read with fields missing at its end (a record written before
// a field was added) reads them as zero.
func TestRecordShorterLayout(t *testing.T) {
	w := newRecord(8)
	w.int(7) // Requests only
	var n counters
	if err := decodeCounters(w, &n); err != nil || n != (counters{Requests: 7}) {
		t.Errorf("%+v, %v", n, err)
	}
	var a account
	if err := decodeRecord(newRecord(0), &a, a.decode); err != nil || !reflect.DeepEqual(a, account{}) {
		t.Errorf("%+v, %v", a, err)
	}
}
