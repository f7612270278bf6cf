package boltstore

import (
	"context"
	"runtime"
	"sync"

	"github.com/creditgate/creditgate/meter"
)

// Group commit. Every write transaction ends with an fsync, which is most
// of a Reserve's or Commit's time; concurrent requests queue on bbolt's
// single writer anyway. updateBatched lets them share a transaction: the
// first caller runs at once (no added latency when the store is idle);
// callers that arrive while a transaction is committing wait, and the
// next transaction runs all of them, with one fsync.
//
// Only functions that can run again are batched (they set their results,
// never append to them): when one of a batch fails with an internal
// error, the whole transaction is rolled back and each function of the
// batch runs again in a transaction of its own, so that one failure costs
// no other caller anything.

// maxBatch bounds the operations of one transaction.
const maxBatch = 256

type batchOp struct {
	ctx  context.Context
	id   string
	fn   func(o *op) error
	done chan error
}

type batcher struct {
	mu      sync.Mutex
	queue   []*batchOp
	running bool
}

// updateBatched is update (see there) in a transaction shared with
// concurrent callers.
func (s *Store) updateBatched(ctx context.Context, id string, fn func(o *op) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	p := &batchOp{ctx: ctx, id: id, fn: fn, done: make(chan error, 1)}
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if !b.running {
		b.running = true
		b.mu.Unlock()
		s.drain(true)
	} else {
		b.mu.Unlock()
	}
	return <-p.done
}

// drain runs queued operations, a batch per transaction, until none is
// left. The caller that found the store idle (own) runs the first batch,
// its own, and hands the rest to a goroutine: it returns with its answer
// instead of running other callers' batches for as long as they keep
// coming (under steady load it never returned, one caller fewer).
func (s *Store) drain(own bool) {
	b := &s.batch
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), maxBatch)
		ops := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		s.runBatch(ops)
		if own {
			go func() {
				s.linger(len(ops))
				s.drain(false)
			}()
			return
		}
		s.linger(len(ops))
	}
}

// lingerYields bounds how often drain yields for answered callers.
const lingerYields = 4

// linger lets the callers of a batch just answered run before the next
// batch is taken: a caller's next call (a Commit after its Reserve) then
// joins it rather than waiting for the one after, so 32 callers share one
// fsync instead of alternating between two halves. It yields until as
// many calls are queued as were answered and waiting, at most
// lingerYields times (callers that do not call again cost that).
func (s *Store) linger(answered int) {
	b := &s.batch
	b.mu.Lock()
	want := answered + len(b.queue)
	b.mu.Unlock()
	for range lingerYields {
		runtime.Gosched()
		b.mu.Lock()
		n := len(b.queue)
		b.mu.Unlock()
		if n >= want {
			return
		}
	}
}

// runBatch runs ops in one write transaction and answers each. The
// gates of the accounts it opens are held until it has committed or
// rolled back (memholds.go).
func (s *Store) runBatch(ops []*batchOp) {
	results := make([]error, len(ops))
	tx, err := s.db.Begin(true)
	if err != nil {
		for _, p := range ops {
			p.done <- meter.Unavailable(err)
		}
		return
	}
	g := s.gates()
	dirty := false
	for i, p := range ops {
		if err := p.ctx.Err(); err != nil {
			results[i] = meter.Unavailable(err)
			continue
		}
		o, err := s.open(tx, p.id, g)
		if err != nil {
			if meter.ErrorCode(err) == meter.ECodeInternal {
				s.retrySolo(tx, g, ops, err)
				return
			}
			results[i] = err
			continue
		}
		if err := o.sweep(); err != nil {
			s.retrySolo(tx, g, ops, internalErr(err))
			return
		}
		if err := o.endLots(); err != nil {
			s.retrySolo(tx, g, ops, internalErr(err))
			return
		}
		ferr := p.fn(o)
		if ferr != nil && meter.ErrorCode(ferr) == meter.ECodeInternal {
			s.retrySolo(tx, g, ops, ferr)
			return
		}
		if err := o.endLots(); err != nil {
			s.retrySolo(tx, g, ops, internalErr(err))
			return
		}
		if o.dirty {
			if err := o.saveAccount(); err != nil {
				s.retrySolo(tx, g, ops, internalErr(err))
				return
			}
			dirty = true
		}
		results[i] = ferr
	}
	if !dirty {
		_ = tx.Rollback() // nothing written: no commit, no fsync
	} else if err := s.commit(tx); err != nil {
		_ = tx.Rollback()
		g.end(false)
		for _, p := range ops {
			p.done <- err
		}
		return
	}
	g.end(true)
	for i, p := range ops {
		p.done <- results[i]
	}
}

// retrySolo rolls back a batch that one operation failed, with its
// memory changes, and runs each operation again alone; a lone operation
// gets its error.
func (s *Store) retrySolo(tx interface{ Rollback() error }, g *gates, ops []*batchOp, err error) {
	_ = tx.Rollback()
	g.end(false)
	if len(ops) == 1 {
		ops[0].done <- err
		return
	}
	for _, p := range ops {
		s.runBatch([]*batchOp{p})
	}
}
