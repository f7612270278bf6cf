package redisstore

import (
	"reflect"
	"strings"
	"testing"
	"time"

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
		req("c", 5, true), req("d", 1, false), req("e", 5, true)}, []meter.Credits{c(3), c(3), c(2), c(1), c(5)},
		[]bool{false, false, false, true, false})
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
	// The shortfall's event, numbered by the account's sequence, saved
	// with the pools.
	cl := srv.Client()
	defer cl.Close()
	k := s.accountKeys(id)
	if n, err := cl.HLen(ctx, k[6]).Result(); err != nil || n != 1 {
		t.Errorf("%d events (%v), want 1", n, err)
	}
	if seq, err := cl.HGet(ctx, k[0], "evt_seq").Result(); err != nil || seq != "1" {
		t.Errorf("evt_seq %q (%v), want 1", seq, err)
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
			args = append(args, rid, int64(c(2)), "d", "/convert", "req-"+rid, 1, leaseOpt(false, late == "1", c(2), c(2)))
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
	// The kept reply has the period's state too (it is the reply), and
	// both requests' values.
	if rep := leaseSettleScript.reply(first); len(first) != 14 {
		t.Errorf("reply %v: want 13 values, then the requests' string", first)
	} else if _, err := settledRows(rep.strOf("settled"), 2); err != nil {
		t.Errorf("reply %v: %v", first, err)
	} else if rep.periodState(); rep.check() != nil {
		t.Errorf("no period state in %v: %v", first, rep.check())
	}
	second := call("lease", "n2", "0", "c")
	lateFirst := call("", "n3", "1", "d")
	if again := call("", "n3", "1", "d"); !reflect.DeepEqual(again, lateFirst) {
		t.Errorf("late resend answered %v, want %v", again, lateFirst)
	}
	if _, err := s.Void(ctx, id, "lease"); err != nil {
		t.Fatal(err)
	}
	// The last group's reply, kept next to the lease's record, still
	// answers a resend after the void, and is purged REPLAY_MS after it
	// rather than with the record.
	if again := call("lease", "n2", "0", "c"); !reflect.DeepEqual(again, second) {
		t.Errorf("resend after the void answered %v, want %v", again, second)
	}
	k := s.accountKeys(id)
	cl := srv.Client()
	defer cl.Close()
	if err := cl.ZScore(ctx, k[1], "L:lease").Err(); err != nil {
		t.Errorf("no purge of the voided lease's kept reply: %v", err)
	}
	// A group of late requests naming the lease, voided: its reply is kept
	// apart from the lease's record (the call found it settled).
	voided := call("lease", "n4", "1", "e")
	if again := call("lease", "n4", "1", "e"); !reflect.DeepEqual(again, voided) {
		t.Errorf("resend on a voided lease answered %v, want %v", again, voided)
	}
	// A lease whose expiry the sweep has not reached (the next-due marker
	// set ahead, as when it is beyond the sweep limit): the call expires it
	// and charges its requests late, and a resend still finds its reply.
	mustReserve(t, s, id, "lease2", c(2))
	if err := cl.HSet(ctx, k[0], "due", time.Now().Add(time.Hour).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	raw, err := cl.HGet(ctx, k[2], "lease2").Result()
	if err != nil {
		t.Fatal(err)
	}
	rec := strings.Split(raw, "|")
	rec[5] = "1" // its expiry, long past
	if err := cl.HSet(ctx, k[2], "lease2", strings.Join(rec, "|")).Err(); err != nil {
		t.Fatal(err)
	}
	expired := call("lease2", "n5", "0", "f")
	if again := call("lease2", "n5", "0", "f"); !reflect.DeepEqual(again, expired) {
		t.Errorf("resend on a lease it expired answered %v, want %v", again, expired)
	}
	expect(t, s, id, c(8), 0, entry{"purchase", c(20), c(20), false}, entry{"usage", -c(2), c(18), false},
		entry{"usage", -c(2), c(16), false}, entry{"usage", -c(2), c(14), false}, entry{"usage", -c(2), c(12), true},
		entry{"usage", -c(2), c(10), true}, entry{"usage", -c(2), c(8), true})
	u, err := s.Usage(ctx, id, meter.Period{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []meter.RouteUsage{{Route: "/convert", Requests: 6, Pages: 6, Credits: c(12)}}; !reflect.DeepEqual(u, want) {
		t.Errorf("usage %+v, want %+v", u, want)
	}
}

// An uncapped request charged beyond its carve, settled first in a group
// with other carves of the same lease: its carve comes from the lease and
// the excess from what the pools have now, as Commit charges an uncapped
// excess beyond a reservation, its entry not late; the other requests
// still get their carves from the lease (before the carve was passed, the
// uncapped one took its whole charge from the lease and the next capped
// one was charged only what was left), and the lease keeps exactly what
// no request took. On a balance account, and on one with a monthly quota
// and an overage cap, whose period state after the group is in every
// answer. Computed by hand.
func TestSettleLeaseUncappedBeyondItsCarve(t *testing.T) {
	type want struct {
		charged, balance, available float64
		quota                       float64 // the entry's quota part
	}
	for _, tc := range []struct {
		name         string
		quota, ocap  float64
		lease        float64
		reservedLeft float64 // of the lease after the group: its balance part
		want         []want
		q            meter.QuotaState
		o            meter.OverageState
		after        meter.QuotaState // once the lease is voided
	}{
		// A lease of 6 from a balance of 20 (14 available): b takes its 2
		// from the lease and 3 from the 14, a its 2, c 1 of its 2; the
		// lease keeps 1.
		{name: "balance", lease: 6, reservedLeft: 1, want: []want{{5, 15, 11, 0}, {2, 13, 11, 0}, {1, 12, 11, 0}},
			q: qs(0, 0, 0, 0), o: ovs(0, 0, 0, 0), after: qs(0, 0, 0, 0)},
		// Quota 8, a lease of 6 of it (all quota): b's 2 from the lease,
		// then 2 of the quota left (8 - 2 used - 4 held) and 1 of the
		// balance; a's 2 and c's 1 from the lease, 1 of it left.
		{name: "quota", quota: 8, ocap: 5, lease: 6, want: []want{{5, 19, 19, 4}, {2, 19, 19, 2}, {1, 19, 19, 1}},
			q: qs(8, 7, 1, 0), o: ovs(5, 0, 0, 5), after: qs(8, 7, 0, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			id := newAccount(t, s, c(20))
			if tc.quota > 0 {
				if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: c(tc.quota),
					OverageCap: c(tc.ocap)}); err != nil {
					t.Fatal(err)
				}
			}
			r := mustReserveIn(t, s, id, "lease", c(tc.lease), month(0))
			if tc.quota > 0 && r.Quota.Reserved != c(tc.lease) {
				t.Fatalf("lease %+v: want all quota", r)
			}
			req := func(rid string, amount float64, uncapped bool) meter.CommitRequest {
				return meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(amount), Route: "/convert",
					Description: "d", RequestID: "req-" + rid, Pages: 1, Uncapped: uncapped}
			}
			// Carved 2 each: 6, the whole lease.
			sts, err := s.SettleLease(ctx, id, "lease", []meter.CommitRequest{req("b", 5, true), req("a", 2, false),
				req("c", 1, false)}, []meter.Credits{c(2), c(2), c(2)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				st := sts[i]
				if st.Charged != c(w.charged) || st.Balance != c(w.balance) || st.Available != c(w.available) ||
					st.Late || st.Shortfall != 0 {
					t.Errorf("request %d: %+v, want %+v", i, st, w)
				}
				// The period's state after the group, in every answer.
				q := st.Quota
				if tc.quota > 0 && !q.ResetsAt.Equal(month(0).End) {
					t.Errorf("request %d: quota resets at %v, want %v", i, q.ResetsAt, month(0).End)
				}
				q.ResetsAt = time.Time{}
				if q != tc.q || st.Overage != tc.o {
					t.Errorf("request %d: quota %+v overage %+v, want %+v %+v", i, st.Quota, st.Overage, tc.q, tc.o)
				}
			}
			// The answers' state is the store's.
			a, err := s.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if a.Quota != sts[2].Quota || a.Overage != sts[2].Overage || a.Reserved != c(tc.reservedLeft) {
				t.Errorf("account %+v; the group answered %+v %+v", a, sts[2].Quota, sts[2].Overage)
			}
			es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Type: meter.EntryUsage})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 3 {
				t.Fatalf("entries %+v", es)
			}
			for i, rid := range []string{"c", "a", "b"} { // newest first
				e, w := es[i], tc.want[2-i]
				if e.ReservationID != rid || e.Late || e.Quota != c(w.quota) || e.Amount != -c(w.charged-w.quota) ||
					e.BalanceAfter != c(w.balance) || e.Shortfall != 0 {
					t.Errorf("entry of %s: %+v, want %+v", rid, e, w)
				}
			}
			// What is left of the lease is exactly what c did not use: it
			// is released by the void, and nothing stays reserved.
			if _, err := s.Void(ctx, id, "lease"); err != nil {
				t.Fatal(err)
			}
			balance := tc.want[2].balance
			uses := make([]use, 3)
			for i, w := range tc.want {
				uses[i] = use{Amount: -c(w.charged - w.quota), Quota: c(w.quota), After: c(w.balance)}
			}
			expectPools(t, s, id, c(balance), 0, tc.after, tc.o, uses...) // also: the ledger sums to the balance
			if sum, _ := ledgerTotal(t, s, id); sum != c(balance) {
				t.Errorf("ledger sums to %s, want %s", sum, c(balance))
			}
		})
	}
}

// ledgerTotal is the sum of an account's whole ledger and its entries'
// count.
func ledgerTotal(t *testing.T, s *Store, id string) (meter.Credits, int) {
	t.Helper()
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var sum meter.Credits
	for _, e := range es {
		sum += e.Amount
	}
	return sum, len(es)
}

// settledRows refuses a packed reply that is short, long or cut inside an
// entry id, rather than reading what is not there.
func TestSettledRowsRefusesBadShapes(t *testing.T) {
	row := strings.Repeat("\x00", 32) + "\x01" + "1-1\x00"
	if rows, err := settledRows(row+row, 2); err != nil || len(rows) != 2 || !rows[1].Late || rows[1].EntryID != "1-1" {
		t.Fatalf("settledRows = %+v, %v", rows, err)
	}
	for _, bad := range []struct {
		packed string
		n      int
	}{{row, 2}, {row + row, 1}, {row[:20], 1}, {row[:len(row)-1], 1}, {"", 1}} {
		if _, err := settledRows(bad.packed, bad.n); err == nil {
			t.Errorf("settledRows(%q, %d): no error", bad.packed, bad.n)
		}
	}
}
