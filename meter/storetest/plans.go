package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// testPlans: plans are stored by name, replaced whole, listed by name and
// deleted; a bad name or an account's own setting is refused.
func testPlans(t *testing.T, s meter.Store) {
	a, b := newID("plan-a"), newID("plan-b")
	// Names are lowercase; newID's are not always.
	a, b = "p"+sanitize(a), "p"+sanitize(b)
	for _, p := range []meter.Plan{
		{Name: b, Settings: meter.Settings{MonthlyQuota: c(10), QuotaUnit: "scans"}},
		{Name: a, Settings: meter.Settings{OverageCap: c(5)}},
		{Name: b, Settings: meter.Settings{MonthlyQuota: c(20), QuotaUnit: "scans", Rates: map[string]meter.Credits{"pages": c(2)}}},
	} {
		if err := s.PutPlan(ctx, p); err != nil {
			t.Fatalf("PutPlan(%s): %v", p.Name, err)
		}
	}
	got := map[string]meter.Plan{}
	var order []string
	ps, err := s.Plans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == a || p.Name == b {
			got[p.Name] = p
			order = append(order, p.Name)
		}
	}
	if !reflect.DeepEqual(order, []string{a, b}) {
		t.Errorf("plans in order %v; want %v", order, []string{a, b})
	}
	if p := got[b]; p.MonthlyQuota != c(20) || p.Rates["pages"] != c(2) || p.QuotaUnit != "scans" {
		t.Errorf("replaced plan %+v", p)
	}
	if err := s.DeletePlan(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeletePlan(ctx, a), meter.ECodeNotFound)
	wantCode(t, s.PutPlan(ctx, meter.Plan{Name: "Bad Name"}), meter.ECodeInvalid)
	wantCode(t, s.PutPlan(ctx, meter.Plan{Name: b, Settings: meter.Settings{WebhookURL: "https://x"}}), meter.ECodeInvalid)
	wantCode(t, s.PutPlan(ctx, meter.Plan{Name: b, Settings: meter.Settings{MonthlyQuota: -1}}), meter.ECodeInvalid)
	_ = s.DeletePlan(ctx, b)
}

func sanitize(id string) string {
	out := []byte{}
	for _, ch := range []byte(id) {
		switch {
		case ch >= 'A' && ch <= 'Z':
			out = append(out, ch+'a'-'A')
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-':
			out = append(out, ch)
		default:
			out = append(out, '-')
		}
	}
	if len(out) > 60 {
		out = out[len(out)-60:]
	}
	return string(out)
}

// testLimitsInForce: ApplySettings sets the limits the atomic steps read
// (a plan's) apart from the account's own settings, and changing them
// mid-period recomputes what remains; it never touches the balance.
// PITFALLS: "Lowering a quota or cap mid-period left remaining above the
// new maximum"; "A changed default turned one-time credits into a monthly
// refill".
func testLimitsInForce(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(5))
	own := meter.Settings{Plan: "builder", Rates: map[string]meter.Credits{"pages": c(2)}}
	if _, err := s.UpdateSettings(ctx, id, own); err != nil {
		t.Fatal(err)
	}
	acct, err := s.ApplySettings(ctx, id, nil, meter.Limits{MonthlyQuota: c(10), QuotaUnit: "scans", OverageCap: c(3)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(acct.Settings, own) {
		t.Errorf("own settings %+v; want them kept: %+v", acct.Settings, own)
	}
	p := month(0)
	mustReserveIn(t, s, id, "r1", c(7), p)
	mustCommit(t, s, id, "r1", c(7))
	expectPools(t, s, id, c(5), 0, qs(10, 7, 0, 3), ovs(3, 0, 0, 3), use{0, c(7), 0, c(5)})

	// The plan's quota drops to 5: nothing remains, the balance is
	// untouched, and a quota-priced request now takes the balance.
	if _, err := s.ApplySettings(ctx, id, nil, meter.Limits{MonthlyQuota: c(5), QuotaUnit: "scans", OverageCap: c(1)}); err != nil {
		t.Fatal(err)
	}
	expectPools(t, s, id, c(5), 0, qs(5, 7, 0, 0), ovs(1, 0, 0, 1), use{0, c(7), 0, c(5)})
	mustReserveIn(t, s, id, "r2", c(6), p) // 5 balance + 1 overage
	_, err = reserveIn(s, id, "r3", c(0.001), p, time.Minute)
	wantCode(t, err, meter.ECodeOverageLimitReached)
	mustCommit(t, s, id, "r2", c(6))

	// Raised to 20: 13 remain this period; a new period starts afresh at
	// 20, and the purchase made once is never granted again.
	if _, err := s.ApplySettings(ctx, id, nil, meter.Limits{MonthlyQuota: c(20), OverageCap: c(1)}); err != nil {
		t.Fatal(err)
	}
	expectPools(t, s, id, -c(1), 0, qs(20, 7, 0, 13), ovs(1, 1, 0, 0), use{0, c(7), 0, c(5)}, use{-c(6), 0, c(1), -c(1)})
	mustReserveIn(t, s, id, "r4", c(1), month(1))
	expectPools(t, s, id, -c(1), 0, qs(20, 0, 1, 19), ovs(1, 0, 0, 0), use{0, c(7), 0, c(5)}, use{-c(6), 0, c(1), -c(1)})
	a, _ := s.Account(ctx, id)
	if a.TotalPurchased != c(5) || !reflect.DeepEqual(a.Settings, own) {
		t.Errorf("purchased %s settings %+v", a.TotalPurchased, a.Settings)
	}
}

func commitUncapped(t *testing.T, s meter.Store, id, rid string, amount meter.Credits) meter.Settlement {
	t.Helper()
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount, Route: "/out",
		Pages: 134, Uncapped: true})
	if err != nil {
		t.Fatalf("Commit(%s, %s, uncapped): %v", rid, amount, err)
	}
	return st
}

// testUncappedCommit: a hold is an estimate. Uncapped, the commit charges
// the real amount: the hold's parts, then the excess from the pools in
// the usual order (quota, balance, overage), in the same atomic step.
// PDF Generator API: "credits are calculated based on the number of pages
// in the generated PDF": 134 pages with 100 reserved charge 27, not 20.
func testUncappedCommit(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(30))
	mustReserve(t, s, id, "r1", c(20))
	st := commitUncapped(t, s, id, "r1", c(27))
	if st.Charged != c(27) || st.Balance != c(3) || st.Available != c(3) || st.Shortfall != 0 {
		t.Errorf("settlement %+v", st)
	}
	expect(t, s, id, c(3), 0, entry{"purchase", c(30), c(30), false}, usage(27, 3))
	if again := commitUncapped(t, s, id, "r1", c(27)); again.Charged != c(27) || again.Balance != c(3) {
		t.Errorf("second commit %+v: want the first settlement", again)
	}
	// Capped (the default), the same commit charges the hold only.
	id2 := newAccount(t, s, c(30))
	mustReserve(t, s, id2, "r1", c(20))
	if st := mustCommit(t, s, id2, "r1", c(27)); st.Charged != c(20) {
		t.Errorf("capped commit charged %s; want 20", st.Charged)
	}

	// The excess after the hold's parts: quota, then balance, then overage.
	q := quotaAccount(t, s, c(5), c(10), c(5))
	p := month(0)
	mustReserveIn(t, s, q, "r1", c(8), p) // quota
	mustReserveIn(t, s, q, "r2", c(1), p) // quota; held while r1 settles
	st = commitUncapped(t, s, q, "r1", c(18))
	if st.Charged != c(18) || st.Shortfall != 0 || st.Balance != -c(4) {
		t.Errorf("settlement %+v", st)
	}
	// r1: 8 held + 1 quota + 5 balance + 4 overage.
	expectPools(t, s, q, -c(4), 0, qs(10, 9, 1, 0), ovs(5, 4, 0, 1), use{-c(9), c(9), c(4), -c(4)})
	mustCommit(t, s, q, "r2", c(1))
	expectPools(t, s, q, -c(4), 0, qs(10, 10, 0, 0), ovs(5, 4, 0, 1), use{-c(9), c(9), c(4), -c(4)}, use{0, c(1), 0, -c(4)})
	u, err := s.Usage(ctx, q, p)
	if err != nil || len(u) != 2 || u[0] != (meter.RouteUsage{Route: "/out", Requests: 1, Pages: 134, Credits: c(18)}) {
		t.Errorf("usage %+v %v", u, err)
	}
}

// testShortfall: what the pools cannot give of an uncapped commit is
// charged all the same, recorded as the entry's shortfall with a
// credits.shortfall event, and the account is refused with credits_owed
// until it buys credits. An account with 3 credits held 1 (the smallest
// charge) and produced 134 pages (27 credits).
func testShortfall(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(3))
	drain(t, s, id)
	mustReserve(t, s, id, "r1", c(1))
	st := commitUncapped(t, s, id, "r1", c(27))
	if st.Charged != c(27) || st.Shortfall != c(24) || st.Balance != -c(24) {
		t.Errorf("settlement %+v; want 27 charged, 24 short, balance -24", st)
	}
	es := oldestFirst(t, s, id)
	if u := es[len(es)-1]; u.Type != meter.EntryUsage || u.Amount != -c(27) || u.Shortfall != c(24) || u.BalanceAfter != -c(24) || u.Pages != 134 {
		t.Errorf("usage entry %+v", u)
	}
	checkInvariant(t, es, -c(24))
	evs := drain(t, s, id, meter.EventShortfall)
	if evs[0].Used != c(24) || evs[0].Balance != -c(24) {
		t.Errorf("event %+v", evs[0])
	}
	_, err := reserve(s, id, "r2", c(1), time.Minute, "")
	e := wantCode(t, err, meter.ECodeCreditsOwed)
	if e.Details["owed"] != c(24) || e.Details["available"] != -c(24) {
		t.Errorf("details %v", e.Details)
	}
	// Owing, even the quota gives nothing.
	if _, err := s.ApplySettings(ctx, id, nil, meter.Limits{MonthlyQuota: c(10)}); err != nil {
		t.Fatal(err)
	}
	_, err = reserveIn(s, id, "r3", c(1), month(0), time.Minute)
	wantCode(t, err, meter.ECodeCreditsOwed)
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(24), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "r4", c(1), month(0)) // paid: the quota serves again
	expectPools(t, s, id, 0, 0, qs(10, 0, 1, 9), ovs(0, 0, 0, 0), use{-c(27), 0, 0, -c(24)})
}

// testUncappedLate: a reservation that expired before its uncapped commit
// is charged the real amount from what the pools have now, marked late,
// and the rest is the shortfall.
func testUncappedLate(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(30))
	if _, err := reserve(s, id, "r1", c(20), shortTTL, ""); err != nil {
		t.Fatal(err)
	}
	pastTTL()
	st := commitUncapped(t, s, id, "r1", c(27))
	if !st.Late || st.Charged != c(27) || st.Shortfall != 0 || st.Balance != c(3) {
		t.Errorf("late settlement %+v", st)
	}
	if _, err := reserve(s, id, "r2", c(2), shortTTL, ""); err != nil {
		t.Fatal(err)
	}
	pastTTL()
	st = commitUncapped(t, s, id, "r2", c(5))
	if !st.Late || st.Charged != c(5) || st.Shortfall != c(2) || st.Balance != -c(2) {
		t.Errorf("late settlement with a shortfall %+v", st)
	}
	es := oldestFirst(t, s, id)
	checkInvariant(t, es, -c(2))
	if e := es[len(es)-1]; !e.Late || e.Shortfall != c(2) || e.Amount != -c(5) {
		t.Errorf("entry %+v", e)
	}
	drain(t, s, id, meter.EventShortfall)
}

// testReserveMinimum: with a Minimum, an account whose pools cannot give
// the estimate holds all they give, if that is at least the minimum; so
// a concurrent request finds nothing left and is refused, naming the
// minimum.
func testReserveMinimum(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(19))
	est := func(rid string) (meter.Reservation, error) {
		return s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(20), Minimum: c(1), TTL: time.Minute})
	}
	r, err := est("r1")
	if err != nil || r.Amount != c(19) || r.Available != 0 {
		t.Fatalf("partial hold %+v %v", r, err)
	}
	_, err = est("r2")
	if e := wantCode(t, err, meter.ECodeInsufficientCredits); e.Details["required"] != c(1) || e.Details["available"] != meter.Credits(0) {
		t.Errorf("details %v", e.Details)
	}
	st := commitUncapped(t, s, id, "r1", c(27))
	if st.Charged != c(27) || st.Shortfall != c(8) || st.Balance != -c(8) {
		t.Errorf("settlement %+v", st)
	}
	drain(t, s, id, meter.EventShortfall)
	// The estimate is held whole when the pools give it.
	id2 := newAccount(t, s, c(30))
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id2, ID: "r1", Amount: c(20), Minimum: c(1), TTL: time.Minute}); err != nil || r.Amount != c(20) {
		t.Errorf("whole hold %+v %v", r, err)
	}
	// From the quota first, as any hold.
	q := quotaAccount(t, s, 0, c(5), 0)
	r, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: q, ID: "r1", Amount: c(20), Minimum: c(1), TTL: time.Minute, Period: month(0)})
	if err != nil || r.Amount != c(5) || r.Quota.Reserved != c(5) {
		t.Errorf("quota partial hold %+v %v", r, err)
	}
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: q, ID: "r2", Amount: c(20), Minimum: c(1), TTL: time.Minute, Period: month(0)})
	wantCode(t, err, meter.ECodeQuotaExceeded)
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: id2, ID: "r3", Amount: c(1), Minimum: c(2), TTL: time.Minute})
	wantCode(t, err, meter.ECodeInvalid)
}
