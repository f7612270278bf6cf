package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The helpers below are the suite's own assertions, exported for the tests
// each store keeps of its own (Redis-specific ones, for example), so that
// both check money the same way.

// Entry is a ledger entry as a test states it: type, amount, balance after.
type Entry = entry

// Use is a usage entry as a test states it: balance debit, quota and
// overage parts, balance after.
type Use = use

// Expect asserts an account's balance and reserved amount, and its whole
// ledger, oldest first, with the ledger invariants.
func Expect(t *testing.T, s meter.Store, id string, balance, reserved meter.Credits, ledger ...Entry) {
	t.Helper()
	expect(t, s, id, balance, reserved, ledger...)
}

// ExpectPools asserts balances, the period's quota and overage states and
// the usage entries, with the ledger invariants.
func ExpectPools(t *testing.T, s meter.Store, id string, balance, reserved meter.Credits,
	q meter.QuotaState, o meter.OverageState, uses ...Use) {
	t.Helper()
	expectPools(t, s, id, balance, reserved, q, o, uses...)
}

// OldestFirst returns an account's whole ledger, oldest first.
func OldestFirst(t testing.TB, s meter.Store, id string) []meter.LedgerEntry {
	t.Helper()
	return oldestFirst(t, s, id)
}

// WantCode asserts that err is a *meter.Error with code.
func WantCode(t testing.TB, err error, code string) *meter.Error {
	t.Helper()
	return wantCode(t, err, code)
}

// Month is the n-th monthly period of a fixed year, a controllable clock.
func Month(n int) meter.Period { return month(n) }

// ReserveIn reserves in a given period.
func ReserveIn(s meter.Store, id, rid string, amount meter.Credits, p meter.Period, ttl time.Duration) (meter.Reservation, error) {
	return reserveIn(s, id, rid, amount, p, ttl)
}

// MustReserveIn reserves in a given period, failing the test on error.
func MustReserveIn(t testing.TB, s meter.Store, id, rid string, amount meter.Credits, p meter.Period) meter.Reservation {
	t.Helper()
	return mustReserveIn(t, s, id, rid, amount, p)
}

// QS and OVS spell period states in credits: limit or cap, used, reserved,
// remaining.
func QS(limit, used, reserved, remaining float64) meter.QuotaState {
	return qs(limit, used, reserved, remaining)
}

// OVS: see QS.
func OVS(limit, used, reserved, remaining float64) meter.OverageState {
	return ovs(limit, used, reserved, remaining)
}
