package redisstore

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// One group settle through every branch of lib.lua's settle as
// lease_settle.lua uses it: a request's share of the lease from a credit
// grant, one from the rest of the grant and the balance, one uncapped
// beyond what is left of the lease, one late, and one uncapped beyond all
// the pools (a shortfall). Charges, balances, entries and their parts are
// computed by hand.
func TestSettleLeaseParts(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	g, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: id, Amount: c(4), Description: "promo"})
	if err != nil {
		t.Fatal(err)
	}
	// The lease: the grant's 4, then 4 of the balance.
	if r := mustReserve(t, s, id, "lease", c(8)); r.Amount != c(8) || r.Available != c(6) {
		t.Fatalf("lease %+v", r)
	}
	req := func(rid string, amount float64, uncapped bool) meter.CommitRequest {
		return meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(amount), Route: "/convert",
			Description: "d", RequestID: "req-" + rid, Pages: 1, Uncapped: uncapped}
	}
	sts, err := s.SettleLease(ctx, id, "lease", []meter.CommitRequest{req("a", 3, false), req("b", 3, false),
		req("c", 5, true), req("d", 1, false), req("e", 5, true)}, []bool{false, false, false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		charged, balance, short float64
		late                    bool
	}{
		{3, 11, 0, false}, // 3 of the grant
		{3, 8, 0, false},  // the grant's last 1, 2 of the balance
		{5, 3, 0, false},  // the lease's last 2, 3 more from the balance
		{1, 2, 0, true},   // from the balance, late
		{5, -3, 3, false}, // the balance's last 2 and 3 it cannot give
	}
	for i, w := range want {
		st := sts[i]
		if st.Charged != c(w.charged) || st.Balance != c(w.balance) || st.Shortfall != c(w.short) || st.Late != w.late {
			t.Errorf("request %d: %+v, want %+v", i, st, w)
		}
	}
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Type: meter.EntryUsage})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		rid                    string
		amount, granted, short float64
		late                   bool
	}
	wantE := []entry{{"e", -5, 0, 3, false}, {"d", -1, 0, 0, true}, {"c", -5, 0, 0, false}, {"b", -3, 1, 0, false},
		{"a", -3, 3, 0, false}} // newest first
	if len(es) != len(wantE) {
		t.Fatalf("entries %+v", es)
	}
	var sum meter.Credits
	for i, w := range wantE {
		e := es[i]
		sum += e.Amount
		if e.ReservationID != w.rid || e.Amount != c(w.amount) || e.Granted != c(w.granted) ||
			e.Shortfall != c(w.short) || e.Late != w.late || e.Pages != 1 || e.Route != "/convert" {
			t.Errorf("entry %d: %+v, want %+v", i, e, w)
		}
		if w.granted > 0 && e.GrantIDs != g.ID {
			t.Errorf("entry %d: grants %q, want %q", i, e.GrantIDs, g.ID)
		}
	}
	if sum != c(-17) {
		t.Errorf("entries sum to %s, want -17 (14 before, -3 after)", sum)
	}
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != c(-3) || a.Reserved != 0 {
		t.Errorf("account %+v", a)
	}
	// The lease is spent but held until voided.
	if _, err := s.Void(ctx, id, "lease"); err != nil {
		t.Fatal(err)
	}
}

// go-redis resends a call whose reply was lost. A resent group settle
// answers the first call's reply and charges nothing again (it charged the
// whole group twice before the nonce); a new call is a new group. Also
// for a group of late requests, which has no lease.
func TestSettleLeaseResentCallChargesOnce(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(20))
	mustReserve(t, s, id, "lease", c(6))
	call := func(lid, nonce string, late string, rids ...string) []any {
		t.Helper()
		args := []any{lid, int64(0), nonce}
		for _, rid := range rids {
			args = append(args, rid, int64(c(2)), "d", "/convert", "req-"+rid, 1, "0", late)
		}
		keys := append(s.accountKeys(id), s.usageKey(id, 0), s.seriesKey(id))
		r, err := s.runKeys(ctx, leaseSettleScript, id, keys, args...)
		if err != nil {
			t.Fatal(err)
		}
		return r.v
	}
	first := call("lease", "n1", "0", "a", "b")
	if again := call("lease", "n1", "0", "a", "b"); !reflect.DeepEqual(again, first) {
		t.Errorf("resend answered %v, want %v", again, first)
	}
	call("lease", "n2", "0", "c")
	lateFirst := call("", "n3", "1", "d")
	if again := call("", "n3", "1", "d"); !reflect.DeepEqual(again, lateFirst) {
		t.Errorf("late resend answered %v, want %v", again, lateFirst)
	}
	if _, err := s.Void(ctx, id, "lease"); err != nil {
		t.Fatal(err)
	}
	expect(t, s, id, c(12), 0, entry{"purchase", c(20), c(20), false}, entry{"usage", -c(2), c(18), false},
		entry{"usage", -c(2), c(16), false}, entry{"usage", -c(2), c(14), false}, entry{"usage", -c(2), c(12), true})
	u, err := s.Usage(ctx, id, meter.Period{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []meter.RouteUsage{{Route: "/convert", Requests: 4, Pages: 4, Credits: c(8)}}; !reflect.DeepEqual(u, want) {
		t.Errorf("usage %+v, want %+v", u, want)
	}
}
