// Package clockctx is context.WithTimeout for a context that is mostly
// polled: a metered request's count checks ctx.Err() between objects and
// reads, and waits on Done only when a memory budget is short. Its Err
// compares the deadline with the monotonic clock; the timer, the Done
// channel and the registration with the parent that context.WithTimeout
// makes (five allocations a request, and timer heap work) are made only
// when something asks for Done.
package clockctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context done at its deadline or with its parent.
type Context struct {
	parent   context.Context
	deadline time.Time // with a monotonic reading: time.Until reads one clock
	mu       sync.Mutex
	timed    atomic.Pointer[timed] // the real context, once Done was asked for
	stopped  atomic.Bool
}

type timed struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// WithTimeout returns a context done d from now, or when parent is; Stop
// releases what it holds, as the cancel function of context.WithTimeout.
func WithTimeout(parent context.Context, d time.Duration) *Context {
	c := &Context{parent: parent, deadline: time.Now().Add(d)}
	if pd, ok := parent.Deadline(); ok && pd.Before(c.deadline) {
		c.deadline = pd
	}
	return c
}

func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

// Err is the parent's error, or DeadlineExceeded once the deadline has
// passed. Once Done was asked for, it is the real context's, so that Err
// is not nil only when Done is closed, as the context package requires.
func (c *Context) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	if c.stopped.Load() {
		return context.Canceled
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if time.Until(c.deadline) <= 0 {
		return context.DeadlineExceeded
	}
	return nil
}

// Done makes the real context on first use.
func (c *Context) Done() <-chan struct{} { return c.real().Done() }

// Value is the real context's once it exists: context.WithCancel of c then
// finds its cancelCtx and registers with it, instead of starting a
// goroutine to watch Done.
func (c *Context) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *Context) real() context.Context {
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if c.stopped.Load() {
		cancel()
	}
	c.timed.Store(&timed{ctx, cancel})
	return ctx
}

// Stop releases the timer, if Done made one; c is done (Canceled) after
// it, as a context.WithTimeout is after its cancel function: a reader
// still running then stops at its next check.
func (c *Context) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped.Store(true)
	if t := c.timed.Load(); t != nil {
		t.cancel()
	}
}
