package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func testLedgerLimits(t *testing.T, s meter.Store) {
	id := newAccount(t, s, 0)
	for i := 1; i <= 60; i++ {
		grant(t, s, id, c(1), meter.EntryPurchase, fmt.Sprint(i))
	}
	for _, tc := range []struct{ limit, want int }{{0, 50}, {3, 3}, {5000, 60}} {
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: tc.limit})
		if err != nil || len(es) != tc.want {
			t.Fatalf("limit %d: %d entries, %v; want %d", tc.limit, len(es), err, tc.want)
		}
		if es[0].Description != "60" || es[0].BalanceAfter != c(60) {
			t.Errorf("limit %d: newest first, got %+v", tc.limit, es[0])
		}
	}
	_, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: -1})
	wantCode(t, err, meter.ECodeInvalid)
	for _, bad := range []string{"x", "1", "1-", "-1", "a-b"} {
		_, err = s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Before: bad})
		wantCode(t, err, meter.ECodeInvalid)
	}
	empty := newAccount(t, s, 0)
	if es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: empty}); err != nil || es == nil || len(es) != 0 {
		t.Errorf("empty ledger: %#v, %v; want an empty list", es, err)
	}
}

// testLedgerFilters writes three groups of entries a few milliseconds
// apart, so that the groups have distinct times, then selects by type,
// date and cursor.
func testLedgerFilters(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(100)) // purchase 100
	e1 := grant(t, s, id, c(5), meter.EntryPurchase, "g1")
	sleepMillis()
	e2 := grant(t, s, id, -c(1), meter.EntryAdjustment, "g2")
	mustReserve(t, s, id, "r1", c(3))
	u1 := mustCommit(t, s, id, "r1", c(3))
	sleepMillis()
	e3 := grant(t, s, id, c(2), meter.EntryAdjustment, "g3")
	mustReserve(t, s, id, "r2", c(4))
	u2 := mustCommit(t, s, id, "r2", c(4))

	all := oldestFirst(t, s, id)
	if len(all) != 6 || all[1].ID != e1.ID || all[2].ID != e2.ID || all[3].ID != u1.EntryID ||
		all[4].ID != e3.ID || all[5].ID != u2.EntryID {
		t.Fatalf("ledger %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.Before(all[i-1].CreatedAt) {
			t.Errorf("entry %s is older than the one before it", all[i].ID)
		}
	}
	ids := func(es []meter.LedgerEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	newest := func(es ...meter.LedgerEntry) []string { // ids, newest first
		out := []string{}
		for i := len(es) - 1; i >= 0; i-- {
			out = append(out, es[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    meter.LedgerQuery
		want []string
	}{
		{"usage", meter.LedgerQuery{Type: meter.EntryUsage}, newest(all[3], all[5])},
		{"adjustment", meter.LedgerQuery{Type: meter.EntryAdjustment}, newest(all[2], all[4])},
		{"purchase", meter.LedgerQuery{Type: meter.EntryPurchase}, newest(all[0], all[1])},
		{"refund", meter.LedgerQuery{Type: meter.EntryRefund}, []string{}},
		{"from the second group", meter.LedgerQuery{From: all[2].CreatedAt}, newest(all[2:]...)},
		{"to the second group, excluded", meter.LedgerQuery{To: all[2].CreatedAt}, newest(all[:2]...)},
		{"the second group", meter.LedgerQuery{From: all[2].CreatedAt, To: all[4].CreatedAt}, newest(all[2:4]...)},
		{"usage of the second group", meter.LedgerQuery{Type: meter.EntryUsage, From: all[2].CreatedAt, To: all[4].CreatedAt},
			newest(all[3])},
		{"before a cursor", meter.LedgerQuery{Before: all[3].ID}, newest(all[:3]...)},
		{"before a cursor and a date", meter.LedgerQuery{Before: all[5].ID, To: all[4].CreatedAt}, newest(all[:4]...)},
		{"before a cursor, of a type", meter.LedgerQuery{Before: all[5].ID, Type: meter.EntryUsage}, newest(all[3])},
		{"a page", meter.LedgerQuery{Before: all[5].ID, Limit: 2}, newest(all[3:5]...)},
		{"after the end", meter.LedgerQuery{From: time.Now().Add(time.Hour)}, []string{}},
		{"before the start", meter.LedgerQuery{To: all[0].CreatedAt}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.AccountID = id
			got, err := s.Ledger(ctx, q)
			if err != nil || !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("Ledger(%+v): %v, %v;\nwant %v", q, ids(got), err, tc.want)
			}
		})
	}
	t.Run("paging with the cursor walks the whole ledger", func(t *testing.T) {
		var got []string
		cursor := ""
		for page := 0; page < 10; page++ {
			es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 3, Before: cursor})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(es)...)
			if len(es) < 3 {
				break
			}
			cursor = es[len(es)-1].ID
		}
		if want := newest(all...); !reflect.DeepEqual(got, want) {
			t.Errorf("pages %v; want %v", got, want)
		}
	})
}

func testTrimLedger(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(10))
	grant(t, s, id, c(1), meter.EntryPurchase, "old")
	sleepMillis()
	keep := grant(t, s, id, c(2), meter.EntryPurchase, "new")
	mustReserve(t, s, id, "r1", c(4))
	mustCommit(t, s, id, "r1", c(4))

	n, err := s.TrimLedger(ctx, id, keep.CreatedAt)
	if err != nil || n != 2 {
		t.Fatalf("TrimLedger: %d, %v; want 2", n, err)
	}
	es := oldestFirst(t, s, id)
	if len(es) != 2 || es[0].ID != keep.ID || es[1].Type != meter.EntryUsage {
		t.Errorf("after trim %+v", es)
	}
	// Balances do not depend on the ledger's history.
	a, err := s.Account(ctx, id)
	if err != nil || a.Balance != c(9) || a.TotalPurchased != c(13) || a.TotalUsed != c(4) {
		t.Errorf("account %+v, %v", a, err)
	}
	if n, err := s.TrimLedger(ctx, id, keep.CreatedAt); err != nil || n != 0 {
		t.Errorf("trimming again: %d, %v", n, err)
	}
	// New entries still come after the kept ones.
	e := grant(t, s, id, c(1), meter.EntryPurchase, "later")
	if es := oldestFirst(t, s, id); len(es) != 3 || es[2].ID != e.ID || e.BalanceAfter != c(10) {
		t.Errorf("after a new entry %+v", es)
	}
	if n, err := s.TrimLedger(ctx, id, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Errorf("trimming all: %d, %v", n, err)
	}
	if es := oldestFirst(t, s, id); len(es) != 0 {
		t.Errorf("after trimming all: %+v", es)
	}
	if a, err := s.Account(ctx, id); err != nil || a.Balance != c(10) {
		t.Errorf("account %+v, %v", a, err)
	}
}

// grant records a grant and returns its entry.
func grant(t testing.TB, s meter.Store, id string, amount meter.Credits, typ, desc string) meter.LedgerEntry {
	t.Helper()
	e, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: amount, Type: typ, Description: desc})
	if err != nil {
		t.Fatalf("Grant(%s): %v", amount, err)
	}
	return e
}

// sleepMillis makes the next entry's millisecond later than the last's.
func sleepMillis() { time.Sleep(5 * time.Millisecond) }
