package storetest

import (
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

// Where a refund moves credits (the paid part, once per entry, never
// beyond what it took; nothing for a quota-only entry) and the totals are
// Scripts/Refunds' (refund_scripts.go) and meter/ledger TestRefunds'; here,
// what the store records of a refund and which entries it refuses.
func testRefund(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(10), c(1), c(5))
	p := month(0)
	e1 := spend(t, s, id, "/a", c(4), 0, p) // 1 quota + 3 balance
	e3 := spend(t, s, id, "/a", c(5), 0, p)

	full, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e1, Description: "bad scan"})
	if err != nil {
		t.Fatal(err)
	}
	if full.Type != meter.EntryRefund || full.Amount != c(3) || full.BalanceAfter != c(5) ||
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

	es := oldestFirst(t, s, id)
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: es[0].ID}) // the purchase
	wantCode(t, err, meter.ECodeNotFound)
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: es[len(es)-1].ID}) // a refund
	wantCode(t, err, meter.ECodeNotFound)
	for _, bad := range []string{"1-1", "nope", ""} {
		_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: bad})
		wantCode(t, err, meter.ECodeNotFound)
	}
	_, err = s.Refund(ctx, meter.Refund{AccountID: newID("missing"), EntryID: e3})
	wantCode(t, err, meter.ECodeAccountNotFound)
}
