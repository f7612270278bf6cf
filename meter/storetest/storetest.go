// Package storetest is the behaviour of a meter.Store, as tests that every
// implementation runs:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) meter.Store { ... })
//	}
//
// The cases were ported from meter/redisstore's tests, the first
// specification of the semantics; a case that one store passes and
// another fails names a bug in one of them. Every case works on accounts
// of its own, with ids unique in the process and across runs, so stores
// may share a backend (one Redis server) between cases and test binaries.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// MaxCredits is the largest amount and balance a store accepts: 2^53,
// where redisstore's Lua numbers stop being exact. The suite asserts it,
// so that every store accepts and refuses the same amounts.
const MaxCredits = meter.Credits(1 << 53)

// Run runs the suite. newStore returns a store for one group of cases; it
// may return the same store (or stores on the same backend) every time,
// and is responsible for closing what it opens (t.Cleanup). The cases run
// through meter.Validated, as the app does: the stores leave input checks
// to it.
func Run(t *testing.T, newStore func(t *testing.T) meter.Store) {
	groups := []struct {
		name string
		run  func(t *testing.T, s meter.Store)
	}{
		{"Accounts", testAccounts},
		{"Settings", testSettings},
		{"ListAccounts", testListAccounts},
		{"Keys", testKeys},
		{"Grant", testGrant},
		{"ReserveCommitVoid", testReserveCommitVoid},
		{"UnknownAccount", testUnknownAccount},
		{"ExpiryAndIdempotency", testExpiryAndIdempotency},
		{"IdempotencyFingerprint", testIdempotencyFingerprint},
		{"QuotaExceeded", testQuotaExceeded},
		{"Refund", testRefund},
		{"UsageByRoute", testUsageByRoute},
		{"UsageWithoutPeriod", testUsageWithoutPeriod},
		{"UsageSeries", testUsageSeries},
		{"LedgerLimits", testLedgerLimits},
		{"LedgerFilters", testLedgerFilters},
		{"LedgerOffset", testLedgerOffset},
		{"TrimLedger", testTrimLedger},
		{"ConcurrentReserveNeverOverspends", testConcurrentReserve},
		{"ConcurrentMixed", testConcurrentMixed},
		{"ConcurrentPoolsNeverOverspend", testConcurrentPools},
		{"ConcurrentPoolsMixed", testConcurrentPoolsMixed},
		{"Events", testEvents},
		{"PendingEvents", testPendingEvents},
		{"AccountUpdatedAt", testAccountUpdatedAt},
		{"Jobs", testJobs},
		{"Scripts", testScripts},
		{"JobExpiry", testJobExpiry},
		{"JobsConcurrent", testJobsConcurrent},
		{"JobEvents", testJobEvents},
		{"Plans", testPlans},
		{"LimitsInForce", testLimitsInForce},
		{"UncappedCommit", testUncappedCommit},
		{"GrantsSpendingOrder", testGrantsSpendingOrder},
		{"GrantsExpire", testGrantsExpire},
		{"GrantsVoidAndRefund", testGrantsVoidAndRefund},
		{"GrantsConcurrent", testGrantsConcurrent},
		{"GrantsPayJobAcrossExpiry", testGrantsPayJobAcrossExpiry},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, meter.Validated(newStore(t))) })
	}
}

var ctx = context.Background()

// c is n credits, to keep tables readable; amounts are in milli-credits.
func c(n float64) meter.Credits { return meter.Credits(n * meter.Scale) }

// runID keeps ids of separate test runs on one backend apart.
var (
	runID = strings.ToLower(rand.Text()[:6])
	seq   atomic.Int64
)

// newID is unique in the process and, with runID, across runs.
func newID(prefix string) string { return fmt.Sprintf("%s.%s.%d", prefix, runID, seq.Add(1)) }

func newRID() string { return newID("res") }

// newAccount creates a fresh account holding initial credits.
func newAccount(t testing.TB, s meter.Store, initial meter.Credits) string {
	t.Helper()
	id := newID("st")
	if _, err := s.CreateAccount(ctx, id, initial); err != nil {
		t.Fatalf("CreateAccount(%s): %v", id, err)
	}
	return id
}

// entry is a ledger entry as the tables state it.
type entry struct {
	Type   string
	Amount meter.Credits
	After  meter.Credits
	Late   bool
}

func usage(amount, after float64) entry { return entry{"usage", -c(amount), c(after), false} }

// expect asserts an account's balances and its whole ledger, oldest first,
// and the money invariants: each balance_after is the running sum of the
// amounts, and the sum of the ledger is the balance.
func expect(t *testing.T, s meter.Store, id string, balance, reserved meter.Credits, ledger ...entry) {
	t.Helper()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if a.Balance != balance || a.Reserved != reserved || a.Available != balance-reserved {
		t.Errorf("account: balance %s reserved %s available %s; want %s, %s, %s",
			a.Balance, a.Reserved, a.Available, balance, reserved, balance-reserved)
	}
	got := oldestFirst(t, s, id)
	gotE := []entry{}
	for _, e := range got {
		gotE = append(gotE, entry{e.Type, e.Amount, e.BalanceAfter, e.Late})
	}
	if ledger == nil {
		ledger = []entry{}
	}
	if !reflect.DeepEqual(gotE, ledger) {
		t.Errorf("ledger:\n got %v\nwant %v", gotE, ledger)
	}
	checkInvariant(t, got, balance)
}

// oldestFirst returns the account's whole ledger, oldest first.
func oldestFirst(t testing.TB, s meter.Store, id string) []meter.LedgerEntry {
	t.Helper()
	// Newest first, 1000 (the most a query returns) at a time.
	var es []meter.LedgerEntry
	for before := ""; ; {
		page, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000, Before: before})
		if err != nil {
			t.Fatalf("Ledger: %v", err)
		}
		es = append(es, page...)
		if len(page) < 1000 {
			break
		}
		before = page[len(page)-1].ID
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

// checkInvariant asserts that each entry's balance_after is the running
// sum, that only overage takes a balance below zero, and that the ledger
// sums to the balance.
func checkInvariant(t testing.TB, oldest []meter.LedgerEntry, balance meter.Credits) {
	t.Helper()
	var sum meter.Credits
	overage := false
	for _, e := range oldest {
		sum += e.Amount
		// Overage and an output's shortfall (see CommitRequest.Uncapped)
		// take the balance below zero, nothing else does.
		overage = overage || e.Overage > 0 || e.Shortfall > 0
		if e.BalanceAfter != sum {
			t.Errorf("entry %s: balance_after %s, running sum %s", e.ID, e.BalanceAfter, sum)
		}
		if e.BalanceAfter < 0 && !overage {
			t.Errorf("entry %s: balance_after %s is negative", e.ID, e.BalanceAfter)
		}
	}
	if sum != balance {
		t.Errorf("ledger sums to %s, balance is %s", sum, balance)
	}
}

// wantCode fails unless err is a *meter.Error with code.
func wantCode(t testing.TB, err error, code string) *meter.Error {
	t.Helper()
	var me *meter.Error
	if !errors.As(err, &me) || me.Code != code {
		t.Fatalf("error %v; want code %s", err, code)
	}
	return me
}

func reserve(s meter.Store, id, rid string, amount meter.Credits, ttl time.Duration, idem string) (meter.Reservation, error) {
	return s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: ttl, IdempotencyKey: idem})
}

func mustReserve(t testing.TB, s meter.Store, id, rid string, amount meter.Credits) meter.Reservation {
	t.Helper()
	r, err := reserve(s, id, rid, amount, time.Minute, "")
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", rid, amount, err)
	}
	return r
}

func commit(s meter.Store, id, rid string, amount meter.Credits) (meter.Settlement, error) {
	return s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount,
		Description: "test", Route: "/convert", RequestID: "req-" + rid})
}

func mustCommit(t testing.TB, s meter.Store, id, rid string, amount meter.Credits) meter.Settlement {
	t.Helper()
	st, err := commit(s, id, rid, amount)
	if err != nil {
		t.Fatalf("Commit(%s, %s): %v", rid, amount, err)
	}
	return st
}

// shortTTL is the TTL of reservations meant to expire; pastTTL waits
// until they have, on the store's clock.
const shortTTL = 50 * time.Millisecond

func pastTTL() { time.Sleep(shortTTL + 30*time.Millisecond) }
