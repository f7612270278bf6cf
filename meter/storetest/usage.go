package storetest

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func testUsageByRoute(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(100), c(5), 0)
	p1, p2 := month(0), month(1)
	spend(t, s, id, "/convert", c(3), 3, p1)
	spend(t, s, id, "/scan", c(4), 2, p1)
	spend(t, s, id, "/convert", c(2.5), 1, p1)
	rid := newRID()
	mustReserveIn(t, s, id, rid, c(9), p1)
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: 0, Route: "/free"}); err != nil {
		t.Fatal(err)
	}
	// A hold made in p1 and committed once p2 has begun counts in p1.
	held := newRID()
	mustReserveIn(t, s, id, held, c(1), p1)
	spend(t, s, id, "/scan", c(1), 1, p2)
	spend(t, s, id, "/scan", c(2), 0, p2)
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: held, Amount: c(1), Route: "/held", Pages: 5}); err != nil {
		t.Fatal(err)
	}

	want := map[meter.Period][]meter.RouteUsage{
		p1: {{Route: "/convert", Requests: 2, Pages: 4, Credits: c(5.5)}, {Route: "/scan", Requests: 1, Pages: 2, Credits: c(4)},
			{Route: "/held", Requests: 1, Pages: 5, Credits: c(1)}, {Route: "/free", Requests: 1}},
		p2:       {{Route: "/scan", Requests: 2, Pages: 1, Credits: c(3)}},
		month(2): {},
		{}:       {},
	}
	for p, w := range want {
		got, err := s.Usage(ctx, id, p)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("Usage(%v): %+v, %v; want %+v", p.Start, got, err, w)
		}
	}
	// The routes' credits are the ledger's usage, from every pool.
	var sum meter.Credits
	for _, e := range oldestFirst(t, s, id) {
		if e.Type == meter.EntryUsage {
			sum += e.Quota - e.Amount
		}
	}
	if sum != c(5.5+4+3+1) {
		t.Errorf("ledger usage %s", sum)
	}
	_, err := s.Usage(ctx, newID("missing"), p1)
	wantCode(t, err, meter.ECodeAccountNotFound)
}

// Accounts without a period count their usage under the zero Period.
func testUsageWithoutPeriod(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(10))
	mustReserve(t, s, id, "r1", c(2))
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Amount: c(2), Route: "/x", Pages: 7}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Usage(ctx, id, meter.Period{})
	if want := []meter.RouteUsage{{Route: "/x", Requests: 1, Pages: 7, Credits: c(2)}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Usage: %+v, %v; want %+v", got, err, want)
	}
	es := oldestFirst(t, s, id)
	if u := es[len(es)-1]; u.Pages != 7 || u.Route != "/x" || u.ReservationID != "r1" {
		t.Errorf("usage entry %+v", u)
	}
}
