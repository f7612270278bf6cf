package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// batchCall is a call as Reserve, Commit and Void make it.
func batchCall(s *Store, sc *script, id string, args ...any) *call {
	keys := s.accountKeys(id)
	if sc == commitScript {
		keys = append(keys, s.usageKey(id, 0), s.responseKey(id, args[0].(string)), s.seriesKey(id))
	}
	return &call{ctx: ctx, sc: sc, keys: keys, args: append([]any{s.retainMS}, args...), done: make(chan struct{})}
}

func code(c *call) string {
	if c.err != nil || len(c.v) == 0 {
		return "error"
	}
	s, _ := c.v[0].(string)
	return s
}

// The operations of one batch run in order, each as it would alone: a
// commit sees the reserve before it, a refusal refuses only its own
// operation, an operation that raises an error fails alone. A batch sent
// twice (go-redis's retry after a lost reply) has its effects once.
func TestBatchRunsEachOperationAsAlone(t *testing.T) {
	s := newStore(t, Options{})
	a, b := newAccount(t, s, c(10)), newAccount(t, s, c(1))
	cl := srv.Client()
	defer cl.Close()
	if err := cl.HSet(ctx, s.accountKeys(b)[2], "broken", "not a record").Err(); err != nil {
		t.Fatal(err)
	}
	run := func(want []string, batch ...*call) {
		t.Helper()
		s.batch.run(batch)
		for i, c := range batch {
			if got := code(c); got != want[i] {
				t.Errorf("operation %d: %q (%v, %v); want %q", i, got, c.v, c.err, want[i])
			}
		}
	}
	first := []*call{
		batchCall(s, reserveScript, a, "r1", int64(c(4)), int64(60000), "", "n1", 0, 0),
		batchCall(s, reserveScript, a, "r2", int64(c(7)), int64(60000), "", "n2", 0, 0),
		batchCall(s, commitScript, a, "r1", int64(c(3)), "d", "/convert", "req1", 1, 0),
		batchCall(s, commitScript, b, "broken", int64(c(1)), "d", "/convert", "req2", 1, 0),
		batchCall(s, voidScript, b, "nothing"),
		batchCall(s, reserveScript, b, "r3", int64(c(1)), int64(60000), "", "n3", 0, 0),
	}
	run([]string{"ok", meter.ECodeInsufficientCredits, "ok", "error", meter.ECodeReservationNotFound, "ok"}, first...)
	if err := storeErr(first[3].err); meter.ErrorCode(err) != meter.ECodeInternal {
		t.Errorf("a raised error: %v; want internal", err)
	}
	expect(t, s, a, c(7), 0, entry{"purchase", c(10), c(10), false}, entry{"usage", -c(3), c(7), false})
	expect(t, s, b, c(1), c(1), entry{"purchase", c(1), c(1), false})

	for range 2 {
		run([]string{"ok", "ok", "ok"},
			batchCall(s, reserveScript, a, "r4", int64(c(2)), int64(60000), "", "n4", 0, 0),
			batchCall(s, commitScript, a, "r1", int64(c(3)), "d", "/convert", "req1", 1, 0),
			batchCall(s, voidScript, b, "r3"))
	}
	expect(t, s, a, c(7), c(2), entry{"purchase", c(10), c(10), false}, entry{"usage", -c(3), c(7), false})
	expect(t, s, b, c(1), 0, entry{"purchase", c(1), c(1), false})
}

// A batch finds the library gone (a flushed or restarted server), loads
// it and runs.
func TestBatchLoadsTheLibrary(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(5))
	cl := srv.Client()
	defer cl.Close()
	if err := cl.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	batch := []*call{
		batchCall(s, reserveScript, id, "r1", int64(c(2)), int64(60000), "", "n1", 0, 0),
		batchCall(s, reserveScript, id, "r2", int64(c(2)), int64(60000), "", "n2", 0, 0),
	}
	s.batch.run(batch)
	for i, c := range batch {
		if code(c) != "ok" {
			t.Errorf("operation %d: %v, %v", i, c.v, c.err)
		}
	}
	expect(t, s, id, c(5), c(4), entry{"purchase", c(5), c(5), false})
}

// A call whose context ended while it waited for a batch is answered with
// that error and never sent.
func TestBatchLeavesOutEndedCalls(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(5))
	gone, cancel := context.WithCancel(ctx)
	cancel()
	late := batchCall(s, reserveScript, id, "late", int64(c(1)), int64(60000), "", "n1", 0, 0)
	late.ctx = gone
	live := batchCall(s, reserveScript, id, "live", int64(c(1)), int64(60000), "", "n2", 0, 0)
	g := &batchGroup{pending: []*call{late, live}}
	s.batch.mu.Lock()
	batch := s.batch.take(g)
	s.batch.mu.Unlock()
	if len(batch) != 1 || batch[0] != live || g.inflight != 1 || len(g.pending) != 0 {
		t.Fatalf("took %d calls, %d out, %d left", len(batch), g.inflight, len(g.pending))
	}
	select {
	case <-late.done:
		if !errors.Is(late.err, context.Canceled) {
			t.Errorf("ended call: %v", late.err)
		}
	default:
		t.Fatal("the ended call was not answered")
	}
	s.batch.run(batch)
	expect(t, s, id, c(5), c(1), entry{"purchase", c(5), c(5), false})
}

// Concurrent requests share FCALLs, and the money is exactly what the
// same calls made one at a time would leave: every pair charged once,
// refusals where the balance ends, nothing held.
func TestBatchedConcurrentRequests(t *testing.T) {
	s := newStore(t, Options{MaxBatch: 8})
	rich, poor := newAccount(t, s, c(1000)), newAccount(t, s, c(25))
	const workers, each = 32, 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		charged = map[string]int{}
		refused int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := rich
				if i%2 == 1 {
					id = poor
				}
				rid := newRID()
				_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(2), TTL: time.Minute})
				if meter.ErrorCode(err) == meter.ECodeInsufficientCredits {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				if err == nil && w%4 == 0 {
					_, err = s.Void(ctx, id, rid)
				} else if err == nil {
					_, err = commit(s, id, rid, c(1))
					mu.Lock()
					charged[id]++
					mu.Unlock()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if n := s.batch.shared.Load(); n == 0 {
		t.Error("no call shared a batch")
	}
	for id, initial := range map[string]meter.Credits{rich: c(1000), poor: c(25)} {
		acct, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := initial - c(float64(charged[id]))
		if acct.Balance != want || acct.Reserved != 0 {
			t.Errorf("%s: balance %s reserved %s; want %s and 0 (%d charged)", id, acct.Balance, acct.Reserved, want, charged[id])
		}
		var sum meter.Credits
		for _, e := range oldestFirst(t, s, id) {
			sum += e.Amount
		}
		if sum != want {
			t.Errorf("%s: ledger sums to %s, balance %s", id, sum, want)
		}
	}
	// Each request holds 2 and is charged 1: the poor account serves at
	// most 24 and then refuses.
	if charged[poor] > 24 || refused == 0 {
		t.Errorf("poor account: %d charged, %d refused; want at most 24 charged, then refusals", charged[poor], refused)
	}
}

// A caller whose batch also carries others' calls leaves at its own
// deadline, not theirs, when the server stalls; the others get their
// replies once it is back.
func TestBatchCallerLeavesAtItsDeadline(t *testing.T) {
	own := redistest.New(t)
	s, err := Open(ctx, own.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := newID("deadline")
	if _, err := s.CreateAccount(ctx, id, c(5)); err != nil {
		t.Fatal(err)
	}
	if err := own.Pause(); err != nil {
		t.Fatal(err)
	}
	long := batchCall(s, reserveScript, id, "long", int64(c(1)), int64(60000), "", "n1", 0, 0)
	longCtx, cancelLong := context.WithTimeout(ctx, 10*time.Second)
	defer cancelLong()
	long.ctx = longCtx
	s.batch.mu.Lock()
	s.batch.groups[""] = &batchGroup{pending: []*call{long}}
	s.batch.mu.Unlock()

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Reserve(short, meter.ReserveRequest{AccountID: id, ID: "short", Amount: c(1), TTL: time.Minute})
	if took := time.Since(start); took > 2*time.Second || meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		t.Errorf("short call: %v after %v; want metering_unavailable at its deadline", err, took)
	}
	if err := own.Resume(); err != nil {
		t.Fatal(err)
	}
	<-long.done
	if code(long) != "ok" {
		t.Errorf("long call: %v, %v", long.v, long.err)
	}
	// The short call's operation ran too (its caller had gone): a store
	// that was unavailable to it may have done it, as for a call alone.
	acct, err := s.Account(ctx, id)
	if err != nil || acct.Reserved != c(2) {
		t.Errorf("reserved %s, %v; want 2 (both went in the batch)", acct.Reserved, err)
	}
}
