package redisstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// One private redis-server for the package; every test uses its own
// account ids, so tests do not see one another's keys.
var srv *redistest.Server

func TestMain(m *testing.M) {
	// The outage tests would fill the output with go-redis's dial retries.
	redis.SetLogger(quiet{})
	var err error
	srv, err = redistest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var ctx = context.Background()

// c is n credits, to keep tables readable; amounts are in milli-credits.
func c(n float64) meter.Credits { return meter.Credits(n * meter.Scale) }

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cl.Close() })
	return New(cl, opts)
}

var seq atomic.Int64

// newAccount creates a fresh account holding initial credits.
func newAccount(t testing.TB, s *Store, initial meter.Credits) string {
	t.Helper()
	id := newID("acct")
	if _, err := s.CreateAccount(ctx, id, initial); err != nil {
		t.Fatalf("CreateAccount(%s): %v", id, err)
	}
	return id
}

func newRID() string { return newID("res") }

// newID is unique in the test binary, which shares one server across
// tests and -count runs.
func newID(prefix string) string { return fmt.Sprintf("%s_%d", prefix, seq.Add(1)) }

// entry is a ledger entry as the tables state it.
type entry struct {
	Type   string
	Amount meter.Credits
	After  meter.Credits
	Late   bool
}

// expect asserts an account's balances and its whole ledger, oldest first,
// and the money invariants: each balance_after is the running sum of the
// amounts, and the sum of the ledger is the balance.
func expect(t *testing.T, s *Store, id string, balance, reserved meter.Credits, ledger ...entry) {
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
	var gotE []entry
	for _, e := range got {
		gotE = append(gotE, entry{e.Type, e.Amount, e.BalanceAfter, e.Late})
	}
	if ledger == nil {
		ledger = []entry{}
	}
	if gotE == nil {
		gotE = []entry{}
	}
	if !reflect.DeepEqual(gotE, ledger) {
		t.Errorf("ledger:\n got %v\nwant %v", gotE, ledger)
	}
	checkInvariant(t, got, balance)
}

// oldestFirst returns the account's whole ledger, oldest first.
func oldestFirst(t testing.TB, s *Store, id string) []meter.LedgerEntry {
	t.Helper()
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000})
	if err != nil {
		t.Fatalf("Ledger: %v", err)
	}
	if len(es) == 1000 {
		t.Fatalf("ledger of %s too long to check whole", id)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

func checkInvariant(t testing.TB, oldest []meter.LedgerEntry, balance meter.Credits) {
	t.Helper()
	var sum meter.Credits
	overage := false // only overage may take a balance below zero
	for _, e := range oldest {
		sum += e.Amount
		overage = overage || e.Overage > 0
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

func reserve(t testing.TB, s *Store, id, rid string, amount meter.Credits, ttl time.Duration, idem string) (meter.Reservation, error) {
	t.Helper()
	return s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: ttl, IdempotencyKey: idem})
}

func mustReserve(t testing.TB, s *Store, id, rid string, amount meter.Credits) meter.Reservation {
	t.Helper()
	r, err := reserve(t, s, id, rid, amount, time.Minute, "")
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", rid, amount, err)
	}
	return r
}

func commit(s *Store, id, rid string, amount meter.Credits) (meter.Settlement, error) {
	return s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount,
		Description: "test", Route: "/convert", RequestID: "req-" + rid})
}

func mustCommit(t testing.TB, s *Store, id, rid string, amount meter.Credits) meter.Settlement {
	t.Helper()
	st, err := commit(s, id, rid, amount)
	if err != nil {
		t.Fatalf("Commit(%s, %s): %v", rid, amount, err)
	}
	return st
}
