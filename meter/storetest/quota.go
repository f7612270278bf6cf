package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// month is the quota period n months after January 2030: tests move
// through periods by passing them, as the gateway does from its clock.
func month(n int) meter.Period {
	start := time.Date(2030, time.January+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return meter.Period{Start: start, End: start.AddDate(0, 1, 0)}
}

// quotaAccount creates an account with a balance, a monthly quota (in
// "scans") and an overage cap.
func quotaAccount(t testing.TB, s meter.Store, balance, quota, overageCap meter.Credits) string {
	t.Helper()
	id := newAccount(t, s, balance)
	st := meter.Settings{MonthlyQuota: quota, OverageCap: overageCap, QuotaUnit: "scans"}
	if _, err := s.UpdateSettings(ctx, id, st); err != nil {
		t.Fatal(err)
	}
	return id
}

func reserveIn(s meter.Store, id, rid string, amount meter.Credits, p meter.Period, ttl time.Duration) (meter.Reservation, error) {
	return s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: ttl, Period: p})
}

func mustReserveIn(t testing.TB, s meter.Store, id, rid string, amount meter.Credits, p meter.Period) meter.Reservation {
	t.Helper()
	r, err := reserveIn(s, id, rid, amount, p, time.Minute)
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", rid, amount, err)
	}
	return r
}

// use is a usage entry as the tables state it: the balance debit, the
// quota and overage parts, the balance after.
type use struct{ Amount, Quota, Overage, After meter.Credits }

// expectPools asserts the account's balances and period state and its
// usage entries, oldest first, with the ledger invariants. A zero
// q.ResetsAt is not checked.
func expectPools(t *testing.T, s meter.Store, id string, balance, reserved meter.Credits,
	q meter.QuotaState, o meter.OverageState, uses ...use) {
	t.Helper()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != balance || a.Reserved != reserved || a.Available != balance-reserved {
		t.Errorf("balance %s reserved %s available %s; want %s, %s", a.Balance, a.Reserved, a.Available, balance, reserved)
	}
	if !q.ResetsAt.IsZero() && !a.Quota.ResetsAt.Equal(q.ResetsAt) {
		t.Errorf("quota resets at %v, want %v", a.Quota.ResetsAt, q.ResetsAt)
	}
	a.Quota.ResetsAt, q.ResetsAt = time.Time{}, time.Time{}
	if a.Quota != q || a.Overage != o {
		t.Errorf("quota %+v overage %+v;\nwant  %+v overage %+v", a.Quota, a.Overage, q, o)
	}
	es := oldestFirst(t, s, id)
	got := []use{}
	for _, e := range es {
		if e.Type == meter.EntryUsage {
			got = append(got, use{e.Amount, e.Quota, e.Overage, e.BalanceAfter})
		}
	}
	if uses == nil {
		uses = []use{}
	}
	if !reflect.DeepEqual(got, uses) {
		t.Errorf("usage entries:\n got %v\nwant %v", got, uses)
	}
	checkInvariant(t, es, balance)
}

// qs and ovs spell period states: limit or cap, used, reserved, remaining.
func qs(limit, used, reserved, remaining float64) meter.QuotaState {
	return meter.QuotaState{Limit: c(limit), Used: c(used), Reserved: c(reserved), Remaining: c(remaining)}
}

func ovs(limit, used, reserved, remaining float64) meter.OverageState {
	return meter.OverageState{Cap: c(limit), Used: c(used), Reserved: c(reserved), Remaining: c(remaining)}
}

// Quota 10, balance 5, overage cap 5: charges take the quota, then the
// balance, then the overage, and the period can spend 20 at most.
func testQuotaThenBalanceThenOverage(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(5), c(10), c(5))
	p := month(0)

	r := mustReserveIn(t, s, id, "r1", c(3), p)
	if r.Quota != (meter.QuotaState{Limit: c(10), Reserved: c(3), Remaining: c(7), ResetsAt: p.End}) ||
		r.Overage != ovs(5, 0, 0, 5) || r.Available != c(5) {
		t.Errorf("reservation %+v", r)
	}
	expectPools(t, s, id, c(5), 0, qs(10, 0, 3, 7), ovs(5, 0, 0, 5))
	st := mustCommit(t, s, id, "r1", c(3))
	if st.Charged != c(3) || st.Balance != c(5) || st.EntryID == "" || st.Quota.Used != c(3) {
		t.Errorf("settlement %+v", st)
	}

	mustReserveIn(t, s, id, "r2", c(9), p) // 7 quota + 2 balance
	expectPools(t, s, id, c(5), c(2), qs(10, 3, 7, 0), ovs(5, 0, 0, 5), use{0, c(3), 0, c(5)})
	mustCommit(t, s, id, "r2", c(9))

	mustReserveIn(t, s, id, "r3", c(5), p) // 3 balance + 2 overage
	expectPools(t, s, id, c(3), c(5), qs(10, 10, 0, 0), ovs(5, 0, 2, 3),
		use{0, c(3), 0, c(5)}, use{-c(2), c(7), 0, c(3)})
	mustCommit(t, s, id, "r3", c(5))

	_, err := reserveIn(s, id, "r4", c(4), p, time.Minute)
	e := wantCode(t, err, meter.ECodeOverageLimitReached)
	if e.Details["required"] != c(4) || e.Details["available"] != -c(2) || e.Details["cap"] != c(5) {
		t.Errorf("details %v", e.Details)
	}
	mustReserveIn(t, s, id, "r5", c(3), p) // the last 3 of the overage
	mustCommit(t, s, id, "r5", c(3))
	_, err = reserveIn(s, id, "r6", c(0.001), p, time.Minute)
	wantCode(t, err, meter.ECodeOverageLimitReached)

	expectPools(t, s, id, -c(5), 0, qs(10, 10, 0, 0), ovs(5, 5, 0, 0),
		use{0, c(3), 0, c(5)}, use{-c(2), c(7), 0, c(3)}, use{-c(5), 0, c(2), -c(2)}, use{-c(3), 0, c(3), -c(5)})
	a, _ := s.Account(ctx, id)
	if a.TotalPurchased != c(5) || a.TotalUsed != c(20) {
		t.Errorf("totals: purchased %s used %s; want 5, 20", a.TotalPurchased, a.TotalUsed)
	}
}

func testQuotaExceeded(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, 0, c(10), 0)
	p := month(0)
	mustReserveIn(t, s, id, "r1", c(6), p)
	mustCommit(t, s, id, "r1", c(6))
	mustReserveIn(t, s, id, "r2", c(3), p) // held: counts as used in the refusal

	_, err := reserveIn(s, id, "r3", c(2), p, time.Minute)
	e := wantCode(t, err, meter.ECodeQuotaExceeded)
	if want := meter.QuotaMessage(c(10), "scans", p.End); e.Message != want {
		t.Errorf("message %q; want %q", e.Message, want)
	}
	if e.Message != "You've used all 10 scans of this period. Your quota resets on 2030-02-01." {
		t.Errorf("message %q", e.Message)
	}
	resets, _ := e.Details["resets_at"].(time.Time)
	if e.Details["limit"] != c(10) || e.Details["used"] != c(9) || !resets.Equal(p.End) {
		t.Errorf("details %v", e.Details)
	}
	expectPools(t, s, id, 0, 0, meter.QuotaState{Limit: c(10), Used: c(6), Reserved: c(3), Remaining: c(1), ResetsAt: p.End},
		ovs(0, 0, 0, 0), use{0, c(6), 0, 0})

	// With some balance but not enough, the refusal is about credits.
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(0.5), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	_, err = reserveIn(s, id, "r4", c(2), p, time.Minute)
	e = wantCode(t, err, meter.ECodeInsufficientCredits)
	if e.Details["required"] != c(2) || e.Details["available"] != c(0.5) {
		t.Errorf("details %v", e.Details)
	}
}

func testRaisingTheOverageCap(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, 0, 0, c(5))
	p := month(0)
	mustReserveIn(t, s, id, "r1", c(5), p)
	mustCommit(t, s, id, "r1", c(5))
	_, err := reserveIn(s, id, "r2", c(3), p, time.Minute)
	e := wantCode(t, err, meter.ECodeOverageLimitReached)
	if e.Details["available"] != -c(5) || e.Details["cap"] != c(5) {
		t.Errorf("details %v", e.Details)
	}
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{OverageCap: c(8)}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "r2", c(3), p)
	mustCommit(t, s, id, "r2", c(3))
	expectPools(t, s, id, -c(8), 0, qs(0, 0, 0, 0), ovs(8, 8, 0, 0),
		use{-c(5), 0, c(5), -c(5)}, use{-c(3), 0, c(3), -c(8)})
}

// Without a period (callers that pass none, before any that does) the
// per-period pools are not usable: the quota would have nothing to reset
// it. The first period makes them so; a zero one then means the stored.
func testNoPeriodNoQuota(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(1), c(10), c(5))
	_, err := reserve(s, id, "r1", c(2), time.Minute, "")
	wantCode(t, err, meter.ECodeInsufficientCredits)
	mustReserveIn(t, s, id, "r2", c(2), month(0))
	mustReserve(t, s, id, "r3", c(2))
	expectPools(t, s, id, c(1), 0, qs(10, 0, 4, 6), ovs(5, 0, 0, 5))
}

func testPeriodRollover(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, 0, c(10), c(5))
	p1, p2 := month(0), month(1)
	mustReserveIn(t, s, id, "held", c(4), p1) // 4 quota, committed in p2
	mustReserveIn(t, s, id, "r1", c(11), p1)  // 6 quota + 5 overage
	mustCommit(t, s, id, "r1", c(11))
	_, err := reserveIn(s, id, "r2", c(1), month(-1), time.Minute) // an older id is p1
	wantCode(t, err, meter.ECodeOverageLimitReached)

	// A new period: fresh quota and overage used. But the 5 owed from p1
	// are still owed, and the balance goes no lower than -cap.
	r := mustReserveIn(t, s, id, "r3", c(10), p2)
	if !r.Quota.ResetsAt.Equal(p2.End) || r.Quota.Remaining != 0 || r.Overage != ovs(5, 0, 0, 0) {
		t.Errorf("reservation %+v", r)
	}
	_, err = reserveIn(s, id, "r4", c(1), p2, time.Minute)
	wantCode(t, err, meter.ECodeOverageLimitReached)
	// Paying the invoice makes the new period's overage usable.
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "r5", c(2), p2)

	// p1 again, from a gateway whose clock lags: read as p2, nothing resets.
	mustReserveIn(t, s, id, "r6", c(1), p1)
	expectPools(t, s, id, 0, c(3), meter.QuotaState{Limit: c(10), Reserved: c(10), ResetsAt: p2.End},
		ovs(5, 0, 3, 2), use{-c(5), c(6), c(5), -c(5)})

	// The hold made in p1 (4 of its quota) is charged from its parts, but
	// the quota it used is p1's: p2's used does not grow.
	st := mustCommit(t, s, id, "held", c(4))
	if st.Charged != c(4) || st.Quota.Used != 0 || st.Quota.Reserved != c(10) {
		t.Errorf("settlement %+v", st)
	}
	mustCommit(t, s, id, "r3", c(10))
	mustCommit(t, s, id, "r5", c(2))
	mustCommit(t, s, id, "r6", c(1))
	expectPools(t, s, id, -c(3), 0, qs(10, 10, 0, 0), ovs(5, 3, 0, 2),
		use{-c(5), c(6), c(5), -c(5)}, use{0, c(4), 0, 0}, use{0, c(10), 0, 0},
		use{-c(2), 0, c(2), -c(2)}, use{-c(1), 0, c(1), -c(3)})
}

// Every case starts from an account with quota 2, balance 3, overage cap 5
// in month(0).
func testPartsAcrossPools(t *testing.T, s meter.Store) {
	p := month(0)
	tests := []struct {
		name              string
		run               func(t *testing.T, s meter.Store, id string)
		balance, reserved meter.Credits
		quota             meter.QuotaState
		overage           meter.OverageState
		uses              []use
	}{
		{"partial commit takes quota, then balance, and releases the rest", func(t *testing.T, s meter.Store, id string) {
			mustReserveIn(t, s, id, "r1", c(5), p) // 2 quota + 3 balance
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != c(4) || st.Balance != c(1) || st.Available != c(1) {
				t.Errorf("settlement %+v", st)
			}
		}, c(1), 0, qs(2, 2, 0, 0), ovs(5, 0, 0, 5), []use{{-c(2), c(2), 0, c(1)}}},

		{"partial commit reaches the overage last", func(t *testing.T, s meter.Store, id string) {
			mustReserveIn(t, s, id, "r1", c(7), p) // 2 + 3 + 2
			mustCommit(t, s, id, "r1", c(6))
		}, -c(1), 0, qs(2, 2, 0, 0), ovs(5, 1, 0, 4), []use{{-c(4), c(2), c(1), -c(1)}}},

		{"commit within the quota writes an entry that moves no balance", func(t *testing.T, s meter.Store, id string) {
			mustReserveIn(t, s, id, "r1", c(7), p)
			mustCommit(t, s, id, "r1", c(1))
		}, c(3), 0, qs(2, 1, 0, 1), ovs(5, 0, 0, 5), []use{{0, c(1), 0, c(3)}}},

		{"void releases every part", func(t *testing.T, s meter.Store, id string) {
			r := mustReserveIn(t, s, id, "r1", c(7), p)
			if r.Quota.Reserved != c(2) || r.Overage.Reserved != c(2) || r.Available != -c(2) {
				t.Errorf("reservation %+v", r)
			}
			st, err := s.Void(ctx, id, "r1")
			if err != nil || st.Available != c(3) || st.Quota.Remaining != c(2) || st.Overage.Remaining != c(5) {
				t.Errorf("void %+v, %v", st, err)
			}
		}, c(3), 0, qs(2, 0, 0, 2), ovs(5, 0, 0, 5), nil},

		{"expiry releases every part", func(t *testing.T, s meter.Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(7), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
		}, c(3), 0, qs(2, 0, 0, 2), ovs(5, 0, 0, 5), nil},

		{"a late commit takes quota, then balance, then overage, as they are now", func(t *testing.T, s meter.Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(4), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
			mustReserveIn(t, s, id, "r2", c(1), p) // takes 1 of the quota
			st := mustCommit(t, s, id, "r1", c(6))
			if st.Charged != c(4) || !st.Late {
				t.Errorf("settlement %+v", st)
			}
		}, 0, 0, meter.QuotaState{Limit: c(2), Used: c(1), Reserved: c(1)}, ovs(5, 0, 0, 5), []use{{-c(3), c(1), 0, 0}}},

		{"a late commit reaches into the overage", func(t *testing.T, s meter.Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(7), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
			mustCommit(t, s, id, "r1", c(7))
		}, -c(2), 0, qs(2, 2, 0, 0), ovs(5, 2, 0, 3), []use{{-c(5), c(2), c(2), -c(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // some sleep
			id := quotaAccount(t, s, c(3), c(2), c(5))
			tt.run(t, s, id)
			expectPools(t, s, id, tt.balance, tt.reserved, tt.quota, tt.overage, tt.uses...)
		})
	}
}
