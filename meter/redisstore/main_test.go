package redisstore

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
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

// REDISSTORE_PIPELINE=1 runs the tests with Options.Pipeline.
var pipelineTests = os.Getenv("REDISSTORE_PIPELINE") != ""

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	opts.Pipeline = opts.Pipeline || pipelineTests
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

// The money assertions are the conformance suite's, so the Redis-specific
// tests check balances and ledgers exactly as the suite does.
var (
	oldestFirst = storetest.OldestFirst
	wantCode    = storetest.WantCode
)

// entry is a ledger entry as a table states it (storetest.Entry's fields).
type entry struct {
	Type   string
	Amount meter.Credits
	After  meter.Credits
	Late   bool
}

// expect is storetest.Expect with this package's entry literals.
func expect(t *testing.T, s *Store, id string, balance, reserved meter.Credits, ledger ...entry) {
	t.Helper()
	es := make([]storetest.Entry, len(ledger))
	for i, e := range ledger {
		es[i] = storetest.Entry(e)
	}
	storetest.Expect(t, s, id, balance, reserved, es...)
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
