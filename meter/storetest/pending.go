package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// testPendingEvents: an account's undelivered events, with their failed
// attempts, read without claiming them.
func testPendingEvents(t *testing.T, s meter.Store) {
	id := lowBalanceAccount(t, s, c(10), c(5))
	pending := func(limit int) ([]meter.Event, int) {
		t.Helper()
		evs, n, err := s.PendingEvents(ctx, id, limit)
		if err != nil {
			t.Fatal(err)
		}
		return evs, n
	}
	if evs, n := pending(10); len(evs) != 0 || n != 0 || evs == nil {
		t.Fatalf("pending of a quiet account: %#v, %d", evs, n)
	}
	mustReserve(t, s, id, "r1", c(6))
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Amount: c(6)}); err != nil {
		t.Fatal(err)
	}
	evs, n := pending(10)
	if n != 1 || len(evs) != 1 || evs[0].Type != meter.EventLowBalance || evs[0].Balance != c(4) || evs[0].Attempts != 0 || evs[0].AccountID != id {
		t.Fatalf("pending: %+v, %d", evs, n)
	}
	// Reading claims nothing: a delivery worker still gets it; a failed
	// delivery shows as an attempt.
	claimed := claimOf(t, s, "worker", time.Minute, id)
	if len(claimed) != 1 || claimed[0].ID != evs[0].ID {
		t.Fatalf("claimed %+v", claimed)
	}
	if err := s.RetryEvent(ctx, id, claimed[0].ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if evs, n := pending(10); n != 1 || len(evs) != 1 || evs[0].Attempts != 1 {
		t.Fatalf("after a failed delivery: %+v, %d", evs, n)
	}
	if evs, n := pending(0); len(evs) != 0 || n != 1 {
		t.Fatalf("limit 0: %+v, %d", evs, n)
	}
	if err := s.AckEvent(ctx, id, claimed[0].ID); err != nil {
		t.Fatal(err)
	}
	if evs, n := pending(10); len(evs) != 0 || n != 0 {
		t.Fatalf("after delivery: %+v, %d", evs, n)
	}
	_, _, err := s.PendingEvents(ctx, newID("missing"), 10)
	wantCode(t, err, meter.ECodeAccountNotFound)
}
