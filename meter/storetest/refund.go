package storetest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// spend reserves and commits amount on route and returns the usage entry.
func spend(t *testing.T, s meter.Store, id, route string, amount meter.Credits, pages int, p meter.Period) string {
	t.Helper()
	rid := newRID()
	mustReserveIn(t, s, id, rid, amount, p)
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount, Route: route, Pages: pages})
	if err != nil {
		t.Fatal(err)
	}
	return st.EntryID
}

func testRefund(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(10), c(1), c(5))
	p := month(0)
	e1 := spend(t, s, id, "/a", c(4), 0, p) // 1 quota + 3 balance
	e2 := spend(t, s, id, "/a", c(4), 0, p)
	e3 := spend(t, s, id, "/a", c(5), 0, p) // 3 balance + 2 overage

	full, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e1, Description: "bad scan"})
	if err != nil {
		t.Fatal(err)
	}
	if full.Type != meter.EntryRefund || full.Amount != c(3) || full.BalanceAfter != c(1) ||
		full.RefundOf != e1 || full.Description != "bad scan" || full.CreatedAt.IsZero() {
		t.Errorf("refund %+v", full)
	}
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e1})
	if e := wantCode(t, err, meter.ECodeRefundNotAllowed); !strings.Contains(e.Message, "already refunded") {
		t.Errorf("message %q", e.Message)
	}

	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e3, Amount: c(5.001)})
	if e := wantCode(t, err, meter.ECodeRefundNotAllowed); e.Message != "a refund of 5.001 credits exceeds the 5 credits the entry took" {
		t.Errorf("message %q", e.Message)
	}
	if _, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e3, Amount: c(5)}); err != nil {
		t.Fatal(err) // the refused attempt did not count as the refund
	}
	if _, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e2, Amount: c(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e2, Amount: c(1)})
	wantCode(t, err, meter.ECodeRefundNotAllowed) // once per entry, even partly

	es := oldestFirst(t, s, id)
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: es[0].ID}) // the purchase
	wantCode(t, err, meter.ECodeNotFound)
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: es[len(es)-1].ID}) // a refund
	wantCode(t, err, meter.ECodeNotFound)
	for _, bad := range []string{"1-1", "nope", ""} {
		_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: bad})
		wantCode(t, err, meter.ECodeNotFound)
	}
	_, err = s.Refund(ctx, meter.Refund{AccountID: newID("missing"), EntryID: e2})
	wantCode(t, err, meter.ECodeAccountNotFound)

	type row struct {
		Type     string
		Amount   meter.Credits
		After    meter.Credits
		RefundOf string
	}
	var got []row
	for _, e := range es {
		got = append(got, row{e.Type, e.Amount, e.BalanceAfter, e.RefundOf})
	}
	want := []row{{"purchase", c(10), c(10), ""}, {"usage", -c(3), c(7), ""}, {"usage", -c(4), c(3), ""},
		{"usage", -c(5), -c(2), ""}, {"refund", c(3), c(1), e1}, {"refund", c(5), c(6), e3}, {"refund", c(1), c(7), e2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ledger:\n got %v\nwant %v", got, want)
	}
	checkInvariant(t, es, c(7))
	a, _ := s.Account(ctx, id)
	if a.Balance != c(7) || a.TotalPurchased != c(10) || a.TotalUsed != c(13)-c(9) {
		t.Errorf("account %+v", a)
	}
}

func testRefundOfQuotaOnlyUsage(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, 0, c(10), 0)
	e := spend(t, s, id, "/scan", c(1), 1, month(0))
	_, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e})
	wantCode(t, err, meter.ECodeRefundNotAllowed)
}

func testTotals(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(10), c(2), 0)
	for _, g := range []meter.Grant{
		{Amount: c(5), Type: meter.EntryPurchase},
		{Amount: c(1), Type: meter.EntryAdjustment},
		{Amount: -c(2), Type: meter.EntryAdjustment}, // a removal is not a negative purchase
	} {
		g.AccountID = id
		if _, err := s.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	e := spend(t, s, id, "/a", c(3), 0, month(0)) // 2 quota + 1 balance
	if _, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account(ctx, id)
	if err != nil || a.TotalPurchased != c(16) || a.TotalUsed != c(2) || a.Balance != c(14) {
		t.Errorf("account %+v, %v; want purchased 16, used 2 (3 used, 1 refunded), balance 14", a, err)
	}
}
