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
