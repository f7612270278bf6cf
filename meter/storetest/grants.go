package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The credit grant cases run on stores that keep grants (meter.GrantStore)
// and are skipped on others.

// RunGrants runs only the credit grant cases of Run: on a backend where
// the whole suite is too long to run again (a Redis cluster).
func RunGrants(t *testing.T, newStore func(t *testing.T) meter.Store) {
	for _, g := range []struct {
		name string
		run  func(t *testing.T, s meter.Store)
	}{
		{"GrantsSpendingOrder", testGrantsSpendingOrder},
		{"GrantsExpire", testGrantsExpire},
		{"GrantsVoidAndRefund", testGrantsVoidAndRefund},
		{"GrantsConcurrent", testGrantsConcurrent},
		{"GrantsPayJobAcrossExpiry", testGrantsPayJobAcrossExpiry},
	} {
		t.Run(g.name, func(t *testing.T) { g.run(t, meter.Validated(newStore(t))) })
	}
}

func grantStore(t *testing.T, s meter.Store) meter.GrantStore {
	t.Helper()
	gs, ok := meter.StoreAs[meter.GrantStore](s)
	if !ok {
		t.Skip("this store keeps no credit grants")
	}
	return meter.ValidatedGrants(gs) // as the app uses it
}

func mustGrant(t testing.TB, gs meter.GrantStore, g meter.CreditGrantRequest) meter.CreditGrant {
	t.Helper()
	out, err := gs.CreateCreditGrant(ctx, g)
	if err != nil {
		t.Fatalf("CreateCreditGrant(%+v): %v", g, err)
	}
	return out
}

// grantEntry is a grant, expiration or grant_void entry in a table.
func grantEntry(typ string, amount, after float64) entry {
	return entry{typ, c(amount), c(after), false}
}

// A charge takes the quota, then the grants (priority, then soonest
// expiry, then age), then the paid balance, then the overage; each usage
// entry shows the part from grants, and the balance includes what the
// grants have left.
func testGrantsSpendingOrder(t *testing.T, s meter.Store) {
	gs := grantStore(t, s)
	id := quotaAccount(t, s, c(10), c(5), c(3))
	now := time.Now()
	ga := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(4), ExpiresAt: now.Add(2 * time.Hour), Description: "promo a"})
	gb := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(2), Priority: 1, ExpiresAt: now.Add(3 * time.Hour)})
	gc := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(3), ExpiresAt: now.Add(time.Hour)})
	if ga.Remaining != c(4) || ga.State != meter.GrantActive || ga.ExpiresAt == nil || ga.Description != "promo a" {
		t.Fatalf("grant %+v", ga)
	}
	a, err := s.Account(ctx, id)
	if err != nil || a.Balance != c(19) || len(a.Grants) != 3 || a.Grants[0].ID != gb.ID || a.Grants[1].ID != gc.ID || a.Grants[2].ID != ga.ID {
		t.Fatalf("account %+v %v: want balance 19 and grants b, c, a", a, err)
	}
	p := month(0)
	spend(t, s, id, "/a", c(7), 0, p)  // quota 5, b 2
	spend(t, s, id, "/a", c(18), 0, p) // c 3, a 4, paid 10, overage 1
	expectPools(t, s, id, c(-1), 0, qs(5, 5, 0, 0), ovs(3, 1, 0, 2),
		use{-c(2), c(5), 0, c(17)}, use{-c(18), 0, c(1), c(-1)})
	es := oldestFirst(t, s, id)
	u1, u2 := es[len(es)-2], es[len(es)-1]
	if u1.Granted != c(2) || u1.GrantIDs != gb.ID || u2.Granted != c(7) || u2.GrantIDs != gc.ID+","+ga.ID {
		t.Errorf("usage entries %+v, %+v", u1, u2)
	}
	list, err := gs.CreditGrants(ctx, id)
	if err != nil || len(list) != 3 || list[0].Remaining != 0 || list[2].Remaining != 0 {
		t.Errorf("grants %+v %v", list, err)
	}
}

// At its expiry (the store's clock) a grant's free part leaves with an
// expiration entry, on the next operation or read; a reservation keeps
// what it held until it settles, and what it releases then expires.
func testGrantsExpire(t *testing.T, s meter.Store) {
	gs := grantStore(t, s)
	id := newAccount(t, s, c(10))
	g := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(5), ExpiresAt: time.Now().Add(shortTTL)})
	mustReserve(t, s, id, "r1", c(3)) // all from the grant
	pastTTL()
	expect(t, s, id, c(13), c(3), entry{"purchase", c(10), c(10), false}, grantEntry("grant", 5, 15),
		grantEntry("expiration", -2, 13))
	list, err := gs.CreditGrants(ctx, id)
	if err != nil || len(list) != 1 || list[0].State != meter.GrantExpired || list[0].Remaining != c(3) || list[0].Held != c(3) {
		t.Fatalf("grants %+v %v", list, err)
	}
	if _, err := reserve(s, id, "r2", c(10.001), time.Minute, ""); meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
		t.Fatalf("an expired grant was spendable: %v", err)
	}
	if st := mustCommit(t, s, id, "r1", c(2)); st.Charged != c(2) || st.Balance != c(10) {
		t.Errorf("settlement %+v", st) // 2 of the grant charged, its last 1 expired
	}
	expect(t, s, id, c(10), 0, entry{"purchase", c(10), c(10), false}, grantEntry("grant", 5, 15),
		grantEntry("expiration", -2, 13), usage(2, 11), grantEntry("expiration", -1, 10))
	if list, _ := gs.CreditGrants(ctx, id); len(list) != 0 || g.ID == "" {
		t.Errorf("an ended grant nothing holds is still listed: %+v", list)
	}

	// A void after the expiry: all it held leaves at once.
	id2 := newAccount(t, s, c(1))
	mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id2, Amount: c(5), ExpiresAt: time.Now().Add(shortTTL)})
	mustReserve(t, s, id2, "r1", c(3))
	pastTTL()
	if st, err := s.Void(ctx, id2, "r1"); err != nil || st.Balance != c(1) || st.Available != c(1) {
		t.Fatalf("void %+v %v", st, err)
	}
	expect(t, s, id2, c(1), 0, entry{"purchase", c(1), c(1), false}, grantEntry("grant", 5, 6),
		grantEntry("expiration", -2, 4), grantEntry("expiration", -3, 1))
}

// Void takes what the grant has left; a refund of usage paid from a grant
// goes back to it while it is active, and gives nothing once it ended.
func testGrantsVoidAndRefund(t *testing.T, s meter.Store) {
	gs := grantStore(t, s)
	id := newAccount(t, s, c(1))
	g := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(5), IdempotencyKey: "promo-1"})
	if again := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(5), IdempotencyKey: "promo-1"}); again.ID != g.ID {
		t.Fatalf("a retried grant made %s, first %s", again.ID, g.ID)
	}
	p := month(0)
	e1 := spend(t, s, id, "/a", c(2), 0, p)
	e2 := spend(t, s, id, "/a", c(4), 0, p) // grant 3, paid 1
	r1, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e1})
	if err != nil || r1.Amount != c(2) || r1.Granted != c(2) || r1.GrantIDs != g.ID {
		t.Fatalf("refund %+v %v", r1, err)
	}
	v, err := gs.VoidCreditGrant(ctx, id, g.ID)
	if err != nil || v.State != meter.GrantVoided || v.Remaining != 0 {
		t.Fatalf("void %+v %v", v, err)
	}
	_, err = gs.VoidCreditGrant(ctx, id, g.ID)
	wantCode(t, err, meter.ECodeGrantNotFound)
	r2, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: e2}) // only the paid 1 comes back
	if err != nil || r2.Amount != c(1) || r2.Granted != 0 {
		t.Fatalf("refund %+v %v", r2, err)
	}
	expect(t, s, id, c(1), 0, entry{"purchase", c(1), c(1), false}, grantEntry("grant", 5, 6), usage(2, 4), usage(4, 0),
		grantEntry("refund", 2, 2), grantEntry("grant_void", -2, 0), grantEntry("refund", 1, 1))
	_, err = gs.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: id, Amount: c(1), ExpiresAt: time.Now().Add(-time.Second)})
	wantCode(t, err, meter.ECodeInvalid)
}

// Many concurrent reserves against a grant never take more than it has.
func testGrantsConcurrent(t *testing.T, s meter.Store) {
	gs := grantStore(t, s)
	id := newAccount(t, s, 0)
	mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(17), ExpiresAt: time.Now().Add(time.Hour)})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rid := newRID()
			_, err := reserve(s, id, rid, c(1), time.Minute, "")
			if meter.ErrorCode(err) == meter.ECodeInsufficientCredits {
				refused.Add(1)
				return
			}
			if err == nil {
				_, err = commit(s, id, rid, c(1))
			}
			if err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() != 17 || refused.Load() != 43 {
		t.Errorf("%d served, %d refused; want 17, 43", ok.Load(), refused.Load())
	}
	want := []entry{grantEntry("grant", 17, 17)}
	for i := 16; i >= 0; i-- {
		want = append(want, usage(1, float64(i)))
	}
	expect(t, s, id, 0, 0, want...)
}

// A job's hold takes from a grant as a request's does, and its charges
// take the hold's grant parts first: a grant that expires while the job
// runs keeps what the hold took (its free part expires at once), and what
// the hold gives back when the job ends expires then.
func testGrantsPayJobAcrossExpiry(t *testing.T, s meter.Store) {
	gs := grantStore(t, s)
	id := newAccount(t, s, c(1))
	expires := time.Now().Add(300 * time.Millisecond)
	g := mustGrant(t, gs, meter.CreditGrantRequest{AccountID: id, Amount: c(5), ExpiresAt: expires})
	r := jobReq(id, c(4), rates{"page": c(1)})
	mustCreateJob(t, s, r) // holds 4 of the grant
	mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
	sleepUntil(expires, 50*time.Millisecond)
	expect(t, s, id, c(4), c(3), entry{"purchase", c(1), c(1), false}, grantEntry("grant", 5, 6), usage(1, 5),
		grantEntry("expiration", -1, 4))
	res := mustReport(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: pages{"page": 3},
		Final: meter.JobCompleted, RequestID: newID("rq")})
	if res.Charged != c(2) || res.Balance != c(1) {
		t.Errorf("final report %+v: want 2 charged from the hold, balance 1", res)
	}
	expect(t, s, id, c(1), 0, entry{"purchase", c(1), c(1), false}, grantEntry("grant", 5, 6), usage(1, 5),
		grantEntry("expiration", -1, 4), usage(2, 2), grantEntry("expiration", -1, 1))
	for _, e := range jobEntries(t, s, id, r.ID) {
		if e.Granted != -e.Amount || e.GrantIDs != g.ID {
			t.Errorf("job entry %+v: want it all from grant %s", e, g.ID)
		}
	}
	if list, err := gs.CreditGrants(ctx, id); err != nil || len(list) != 0 {
		t.Errorf("grants %+v %v: want none left", list, err)
	}
}
