package storetest

import (
	"fmt"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// testLedgerOffset pages a ledger by offset, with and without a type
// filter, and counts it with LedgerTotal.
func testLedgerOffset(t *testing.T, s meter.Store) {
	id := newAccount(t, s, 0)
	for i := 1; i <= 30; i++ {
		typ := meter.EntryPurchase
		if i%3 == 0 {
			typ = meter.EntryAdjustment
		}
		grant(t, s, id, c(1), typ, fmt.Sprint(i))
	}
	desc := func(es []meter.LedgerEntry) string {
		out := ""
		for _, e := range es {
			out += e.Description + " "
		}
		return out
	}
	for _, tc := range []struct {
		typ           string
		offset, limit int
		want          string
	}{
		{"", 0, 3, "30 29 28 "},
		{"", 3, 3, "27 26 25 "},
		{"", 28, 5, "2 1 "},
		{"", 30, 5, ""},
		{"", meter.MaxLedgerOffset, 5, ""},
		{meter.EntryAdjustment, 2, 3, "24 21 18 "},
		{meter.EntryPurchase, 18, 5, "2 1 "},
	} {
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Type: tc.typ, Offset: tc.offset, Limit: tc.limit})
		if err != nil || desc(es) != tc.want {
			t.Errorf("type %q offset %d limit %d: %q, %v; want %q", tc.typ, tc.offset, tc.limit, desc(es), err, tc.want)
		}
	}
	for _, bad := range []int{-1, meter.MaxLedgerOffset + 1} {
		_, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Offset: bad})
		wantCode(t, err, meter.ECodeInvalid)
	}
	for typ, want := range map[string]int{"": 30, meter.EntryAdjustment: 10, meter.EntryPurchase: 20, meter.EntryUsage: 0} {
		// The cursor, offset and limit do not change the total.
		n, err := s.LedgerTotal(ctx, meter.LedgerQuery{AccountID: id, Type: typ, Offset: 5, Limit: 1})
		if err != nil || n != want {
			t.Errorf("total of type %q: %d, %v; want %d", typ, n, err, want)
		}
	}
	all, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 30})
	from := all[9].CreatedAt // entries 21.. were written at or after it
	n, err := s.LedgerTotal(ctx, meter.LedgerQuery{AccountID: id, From: from})
	if err != nil || n < 10 || n > 30 {
		t.Errorf("total from %v: %d, %v", from, n, err)
	}
	_, err = s.LedgerTotal(ctx, meter.LedgerQuery{AccountID: "nobody_" + id})
	wantCode(t, err, meter.ECodeAccountNotFound)
}
