package boltstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Callers that arrive while a transaction commits share the next one; one
// that fails with an internal error costs the others nothing: the batch
// is rolled back and each runs again alone.
func TestBatchedUpdatesShareATransactionAndSurviveAFailure(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls = map[int]int{} // fn runs by caller
	)
	bump := func(i int, fail bool) func(o *op) error {
		return func(o *op) error {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			if fail {
				return internalErr(errors.New("injected"))
			}
			o.a.TotalPurchased++ // any write: counts the callers that took effect
			o.dirty = true
			return nil
		}
	}
	// The first caller holds the writer until the others have queued.
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.updateBatched(ctx, "a", func(o *op) error {
			<-release
			return bump(0, false)(o)
		})
	}()
	for {
		s.batch.mu.Lock()
		running := s.batch.running
		s.batch.mu.Unlock()
		if running {
			break
		}
		time.Sleep(time.Millisecond)
	}
	const n = 20
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		go func() { errs <- s.updateBatched(ctx, "a", bump(i, i == 7)) }()
	}
	for {
		s.batch.mu.Lock()
		queued := len(s.batch.queue)
		s.batch.mu.Unlock()
		if queued == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var failed int
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			if meter.ErrorCode(err) != meter.ECodeInternal {
				t.Fatalf("error %v", err)
			}
			failed++
		}
	}
	acct, err := s.Account(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// 21 callers, one failed: 20 writes, each once.
	if failed != 1 || acct.TotalPurchased != 20 {
		t.Fatalf("%d failed, %d writes kept; want 1 and 20", failed, acct.TotalPurchased)
	}
	// The 20 queued ran together up to the failing one, which rolled the
	// batch back; then each ran alone: twice for those before it in the
	// queue and for it, once for those after.
	if calls[0] != 1 || calls[7] != 2 {
		t.Fatalf("runs per caller %v", calls)
	}
	for i := 1; i <= n; i++ {
		if calls[i] != 1 && calls[i] != 2 {
			t.Fatalf("caller %d ran %d times", i, calls[i])
		}
	}
}

// A canceled caller waiting in the queue is answered without running.
func TestBatchedUpdateCanceledWhileQueued(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err := s.updateBatched(cctx, "a", func(o *op) error { ran = true; return nil })
	if meter.ErrorCode(err) != meter.ECodeMeteringUnavailable || ran {
		t.Fatalf("canceled caller: %v, ran %v", err, ran)
	}
}

// The caller that found the store idle runs its own batch and returns
// with its answer; it does not run the batches of those who queued
// meanwhile (under steady load it used to run them for as long as they
// came, its own request held that long).
func TestBatchedFirstCallerDoesNotRunLaterBatches(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	write := func(wait chan struct{}) func(o *op) error {
		return func(o *op) error {
			<-wait
			o.a.TotalPurchased++
			o.dirty = true
			return nil
		}
	}
	release, hold := make(chan struct{}), make(chan struct{})
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- s.updateBatched(ctx, "a", write(release)) }()
	waitBatch(t, s, func(b *batcher) bool { return b.running })
	go func() { second <- s.updateBatched(ctx, "a", write(hold)) }()
	waitBatch(t, s, func(b *batcher) bool { return len(b.queue) == 1 })
	close(release)
	// The second batch cannot end before hold is closed: the first
	// caller's answer must come without it.
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("the first caller ran the next batch before returning")
	}
	close(hold)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if a, err := s.Account(ctx, "a"); err != nil || a.TotalPurchased != 2 {
		t.Fatalf("%+v, %v: want both writes", a.TotalPurchased, err)
	}
}

// waitBatch waits until cond holds of the batcher's state.
func waitBatch(t *testing.T, s *Store, cond func(b *batcher) bool) {
	t.Helper()
	for {
		s.batch.mu.Lock()
		ok := cond(&s.batch)
		s.batch.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
