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

// The pools' arithmetic is Scripts/Quota's (quota_scripts.go) and meter/ledger
// TestPools'; what is left is the refusal's message, which the store
// writes.
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
}
