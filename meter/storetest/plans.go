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

// testUncappedCommit: where an uncapped commit, a shortfall or a partial
// hold moves credits is Scripts/Settle's (settle_scripts.go) and meter/ledger
// TestSettles'. What is left is the store's record of it: the usage entry
// and the usage by route carry the commit's route and pages, shortfall
// included; and a minimum above the amount is invalid.
func testUncappedCommit(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(3))
	mustReserve(t, s, id, "r1", c(1))
	st := commitUncapped(t, s, id, "r1", c(27))
	es := oldestFirst(t, s, id)
	if u := es[len(es)-1]; u.ID != st.EntryID || u.Type != meter.EntryUsage || u.Amount != -c(27) || u.Shortfall != c(24) ||
		u.Pages != 134 || u.Route != "/out" {
		t.Errorf("usage entry %+v", u)
	}
	u, err := s.Usage(ctx, id, meter.Period{})
	if err != nil || len(u) != 1 || u[0] != (meter.RouteUsage{Route: "/out", Requests: 1, Pages: 134, Credits: c(27)}) {
		t.Errorf("usage %+v %v", u, err)
	}
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "r3", Amount: c(1), Minimum: c(2), TTL: time.Minute})
	wantCode(t, err, meter.ECodeInvalid)
}
