package boltstore

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// clock is a fake Options.Now that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 15, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A hold expires when its TTL has passed on the store's clock, to the
// millisecond, with no sleeping.
func TestExpiryFollowsTheClock(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(4), TTL: time.Second, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(999 * time.Millisecond)
	if a, _ := s.Account(ctx, "a"); a.Reserved != c(4) {
		t.Errorf("reserved %s 1ms before the TTL", a.Reserved)
	}
	_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r2", Amount: c(4), TTL: time.Second, IdempotencyKey: "k"})
	if meter.ErrorCode(err) != meter.ECodeIdempotencyConflict {
		t.Errorf("retry 1ms before the TTL: %v", err)
	}
	clk.Add(time.Millisecond)
	if a, _ := s.Account(ctx, "a"); a.Reserved != 0 || a.Available != c(10) {
		t.Errorf("at the TTL: %+v", a)
	}
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(3)})
	if err != nil || !st.Late || st.Charged != c(3) {
		t.Errorf("late commit: %+v, %v", st, err)
	}
	es, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: "a"})
	if !es[0].CreatedAt.Equal(clk.Now()) {
		t.Errorf("entry time %v; want the store's clock %v", es[0].CreatedAt, clk.Now())
	}
}

// Settled records and idempotency mappings are kept for Retain, then
// purged by the next write.
func TestRetainPurgesSettledRecords(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now, Retain: time.Hour})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(5), TTL: time.Minute, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(1)}); err != nil {
		t.Fatal(err)
	}
	g := meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase, IdempotencyKey: "g"}
	first, err := s.Grant(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour - time.Millisecond)
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r2", Amount: c(5), TTL: time.Minute, IdempotencyKey: "k"}); err != nil || !r.Replayed {
		t.Errorf("within Retain: %+v, %v; want a replay", r, err)
	}
	if e, err := s.Grant(ctx, g); err != nil || e != first {
		t.Errorf("grant within Retain: %+v, %v; want a replay", e, err)
	}
	clk.Add(time.Millisecond)
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r2", Amount: c(5), TTL: time.Minute, IdempotencyKey: "k"}); err != nil || r.Replayed {
		t.Errorf("after Retain, the key is free again: %+v, %v", r, err)
	}
	if e, err := s.Grant(ctx, g); err != nil || e.ID == first.ID || e.BalanceAfter != c(11) {
		t.Errorf("grant after Retain: %+v, %v; want a new entry", e, err)
	}
	_, err = s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(1)})
	if meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit of a purged record: %v", err)
	}
	d := dump(t, s)
	if _, ok := d["accounts/a/res/r1"]; ok {
		t.Error("r1 not purged")
	}
	timers := 0
	for k := range d {
		if strings.HasPrefix(k, "accounts/a/timers/") {
			timers++
		}
	}
	if timers != 1 { // the new grant mapping's purge (r2's hold is in memory, with no timer)
		t.Errorf("%d timers left; want 1", timers)
	}
}

// Ledger ids order entries even when the clock stands still or steps
// back, like a Redis stream's.
func TestLedgerIDsAlwaysIncrease(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	grant := func() string {
		e, err := s.Grant(ctx, meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	ms := clk.Now().UnixMilli()
	got := []string{grant()}
	clk.Add(-time.Second)
	got = append(got, grant())
	clk.Add(2 * time.Second)
	got = append(got, grant())
	want := []string{itoa(ms) + "-1", itoa(ms) + "-2", itoa(ms+1000) + "-0"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ids %v; want %v", got, want)
			break
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
