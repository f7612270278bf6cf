package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Batching. Reserve, Commit and Void are the calls every metered request
// makes, and on a busy gateway many are waiting for Redis at once. Each
// FCALL has a fixed cost on the server (reading and parsing the command,
// entering the function, the reply, a system call each way) that is a
// large part of what a reserve or commit costs, so concurrent calls share
// one: batch.lua runs each operation as if it were called alone, at one
// server time, and answers each its own reply.
//
// It is group commit, as in the embedded store: a call that finds fewer
// than maxInflight batches of its group on the wire goes at once (alone,
// as a plain FCALL of its own function, when nobody waits); calls that
// arrive while the group's batches are out wait, and go together, up to
// maxBatch, as soon as one comes back. No call waits for a timer, so a
// lone call costs what it did, and the batches grow with the load.
//
// A group is what one FCALL may touch: a single server takes any keys
// (one group), a cluster or a ring only one slot's (a group per
// account). A batch is safe to retry as its operations are: go-redis
// may send it again after a lost reply, and a reserve is recognised by
// its nonce, a commit answers its first settlement again, a void of a
// voided reservation changes nothing.

// maxInflight is how many batches of a group may be out at once: two, so
// that the server has the next batch while the gateway reads the replies
// of the last. Four made smaller batches and fewer pairs/s on
// bench/storeload (9-10k against 12k). It bounds a group at maxInflight x
// maxBatch operations per round trip: 64,000 a second over a 1 ms link.
const maxInflight = 2

var batchScript = newScript("batch.lua")

// call is one operation waiting to go in a batch.
type call struct {
	ctx  context.Context
	sc   *script
	keys []string
	args []any // the function's ARGV
	v    []any // its reply, or
	err  error
	done chan struct{}
}

// batchGroup is the calls of one group that wait, and how many of its
// batches are out.
type batchGroup struct {
	pending  []*call
	inflight int
}

type batcher struct {
	s        *Store
	maxBatch int
	perSlot  bool // group by account (cluster, ring) rather than one group
	mu       sync.Mutex
	groups   map[string]*batchGroup
	shared   atomic.Int64 // calls that went in a batch of more than one
}

func newBatcher(s *Store, maxBatch int) *batcher {
	_, single := s.c.(*redis.Client) // a server alone, or the master a failover client follows
	return &batcher{s: s, maxBatch: maxBatch, perSlot: !single, groups: map[string]*batchGroup{}}
}

// do runs sc for account id in a batch and returns its reply.
func (b *batcher) do(ctx context.Context, sc *script, id string, keys []string, args []any) ([]any, error) {
	c := &call{ctx: ctx, sc: sc, keys: keys, args: args, done: make(chan struct{})}
	key := ""
	if b.perSlot {
		key = id
	}
	b.mu.Lock()
	g := b.groups[key]
	if g == nil {
		g = &batchGroup{}
		b.groups[key] = g
	}
	g.pending = append(g.pending, c)
	var batch []*call
	if g.inflight < maxInflight {
		batch = b.take(g)
	}
	b.mu.Unlock()
	switch {
	case len(batch) == 1 && batch[0] == c:
		b.send(key, g, batch) // alone: its FCALL ends with ctx
	case batch != nil:
		// Others' calls too: their batch's FCALL may outlast ctx, which
		// must not keep this caller.
		go b.send(key, g, batch)
	}
	// A caller whose context ends first goes, as it would from a call of
	// its own: the operation may or may not happen (an unavailable store).
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// take removes the next batch from g's pending calls and counts it out.
// Calls whose context ended before they went are answered with its error
// and left out. The caller holds b.mu.
func (b *batcher) take(g *batchGroup) []*call {
	var batch []*call
	n := 0
	for _, c := range g.pending {
		n++
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
		} else {
			batch = append(batch, c)
		}
		if len(batch) == b.maxBatch {
			break
		}
	}
	g.pending = g.pending[n:]
	if len(g.pending) == 0 {
		g.pending = nil // let the array go
	}
	if len(batch) == 0 {
		return nil
	}
	g.inflight++
	return batch
}

// send runs batch, answers its calls, then sends what waited meanwhile,
// each next batch from a goroutine of its own so that this caller, whose
// reply is in, goes on at once.
func (b *batcher) send(key string, g *batchGroup, batch []*call) {
	b.run(batch)
	b.mu.Lock()
	g.inflight--
	next := b.take(g)
	if next == nil && g.inflight == 0 && len(g.pending) == 0 {
		delete(b.groups, key)
	}
	b.mu.Unlock()
	if next != nil {
		go b.send(key, g, next)
	}
}

// run makes the FCALL of batch and answers every call in it.
func (b *batcher) run(batch []*call) {
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	if len(batch) == 1 {
		c := batch[0]
		c.v, c.err = c.sc.run(c.ctx, b.s.calls, b.s.c, c.keys, c.args...).Slice()
		return
	}
	b.shared.Add(int64(len(batch)))
	var keys []string
	args := make([]any, 0, len(batch)*12)
	for _, c := range batch {
		keys = append(keys, c.keys...)
		args = append(args, c.sc.name, len(c.keys), len(c.args))
		args = append(args, c.args...)
	}
	ctx, stop := batchContext(batch)
	v, err := batchScript.run(ctx, b.s.calls, b.s.c, keys, args...).Slice()
	stop()
	if err == nil && len(v) != len(batch) {
		err = fmt.Errorf("redisstore: batch of %d answered %d replies", len(batch), len(v))
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
			continue
		}
		rep, ok := v[i].([]any)
		switch {
		case !ok:
			c.err = fmt.Errorf("redisstore: unexpected batch reply %v", v[i])
		case len(rep) == 2 && rep[0] == "batch_error":
			c.err = opError(fmt.Sprint(rep[1]))
		default:
			c.v = rep
		}
	}
}

// batchContext is the context of a batch's FCALL: it ends when the
// context of every call in it has (nobody waits for the reply any more),
// not with the first, which would fail the others' operations.
func batchContext(batch []*call) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, c := range batch {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// opError is the error an operation of a batch raised: a server error, as
// it would have been for the call alone (see storeErr).
type opError string

func (e opError) Error() string { return string(e) }
func (opError) RedisError()     {}
