package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditgate/creditgate/meter"
	"golang.org/x/sync/semaphore"
)

// Budget is memory, in bytes, that the page counting of concurrent
// requests shares. Each document holds an estimate of what reading it
// needs (memoryNeed) while it is read, so that many large uploads at once
// wait or are refused instead of exhausting memory. Spooling is not
// counted: bodies go to disk past Options.MemoryThreshold. A Budget is safe
// for concurrent use; a nil *Budget is unlimited.
type Budget struct {
	sem      *semaphore.Weighted // FIFO: a large document is not starved by small ones
	capacity int64
	wait     time.Duration
	inUse    atomic.Int64
}

// DefaultBudgetWait is how long a document waits for memory when a
// Budget is built with wait <= 0.
const DefaultBudgetWait = time.Second

// NewBudget returns a Budget of capacity bytes (which must be positive). A
// document waits at most wait for its share, and never past its context's
// deadline, before it is refused with server_busy.
func NewBudget(capacity int64, wait time.Duration) *Budget {
	if capacity <= 0 {
		panic("usage: NewBudget: capacity must be positive")
	}
	if wait <= 0 {
		wait = DefaultBudgetWait
	}
	return &Budget{sem: semaphore.NewWeighted(capacity), capacity: capacity, wait: wait}
}

// Capacity returns the budget's size in bytes.
func (b *Budget) Capacity() int64 { return b.capacity }

// InUse returns the bytes held by documents being read, for metrics.
func (b *Budget) InUse() int64 { return b.inUse.Load() }

// grant is what one document holds of a Budget. Its methods are no-ops on
// a nil Budget.
type grant struct {
	b  *Budget
	mu sync.Mutex
	n  int64
}

// acquire returns a grant of n bytes (at least 1). A document that needs
// more than the whole budget is unreadable (too_large): it could never be
// admitted. Waiting past the budget's wait or ctx's deadline is
// server_busy; a cancelled ctx is context.Canceled.
func (b *Budget) acquire(ctx context.Context, n int64) (*grant, error) {
	g := &grant{b: b}
	return g, g.grow(ctx, n)
}

// grow raises the grant to n bytes if it holds less, waiting for the
// difference; what it holds is kept when it fails.
func (g *grant) grow(ctx context.Context, n int64) error {
	if g.b == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n = max(n, 1)
	if n <= g.n {
		return nil
	}
	if n > g.b.capacity {
		return unreadable(ReasonTooLarge, "reading needs about %d MB; the page counting budget is %d MB",
			n>>20, g.b.capacity>>20)
	}
	more := n - g.n
	if !g.b.sem.TryAcquire(more) {
		wctx, cancel := context.WithTimeout(ctx, g.b.wait)
		err := g.b.sem.Acquire(wctx, more)
		cancel()
		if errors.Is(ctx.Err(), context.Canceled) {
			if err == nil {
				g.b.sem.Release(more) // won the race with the cancellation
			}
			return context.Canceled
		}
		if err != nil {
			return busy(more, g.b)
		}
	}
	g.b.inUse.Add(more)
	g.n = n
	return nil
}

// add raises the grant by n bytes, waiting as grow does.
func (g *grant) add(ctx context.Context, n int64) error {
	if g.b == nil {
		return nil
	}
	g.mu.Lock()
	target := g.n + n
	g.mu.Unlock()
	return g.grow(ctx, target)
}

// release gives back all the grant holds; it may be called more than once.
func (g *grant) release() {
	if g.b == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n > 0 {
		g.b.inUse.Add(-g.n)
		g.b.sem.Release(g.n)
		g.n = 0
	}
}

// errBusy is a document that could not get its share of the budget in
// time; ScanPDF returns it as server_busy, which the gateway answers with
// 503 and Retry-After.
type errBusy struct{ err error }

func (e *errBusy) Error() string { return e.err.Error() }
func (e *errBusy) Unwrap() error { return e.err }

func busy(n int64, b *Budget) error {
	return &errBusy{fmt.Errorf("waited %v for %d MB of page counting memory; %d of %d MB in use",
		b.wait, n>>20, b.InUse()>>20, b.capacity>>20)}
}

func busyError(e *errBusy) *meter.Error {
	return &meter.Error{
		Code:    meter.ECodeServerBusy,
		Message: "the server is busy reading other documents; retry shortly",
		Err:     e,
	}
}

// Hold takes n bytes of the budget for work outside page counting (a JSON
// body parsed in memory, say) and returns the function that gives them
// back. Its errors are those of page counting: server_busy after the
// wait, unreadable_document (too_large) when n exceeds the capacity. A nil
// Budget holds nothing.
func (b *Budget) Hold(ctx context.Context, n int64) (release func(), err error) {
	g, err := b.acquire(ctx, n)
	if err != nil {
		g.release()
		var eb *errBusy
		if errors.As(err, &eb) {
			return func() {}, busyError(eb)
		}
		if errors.Is(err, context.Canceled) {
			return func() {}, err
		}
		return func() {}, toMeterError(err)
	}
	return g.release, nil
}
