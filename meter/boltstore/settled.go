package boltstore

import (
	"sync"
	"time"

	"github.com/creditgate/creditgate/internal/recent"
)

// Settled plain holds in memory. A plain request's hold (no
// Idempotency-Key, not a job's) that is committed or voided leaves no
// reservation record in the file: its ledger entry, which names the
// reservation, is the durable record of its charge. What a repeated
// Commit or Void, or a Reserve reusing the id, needs of it (its state and
// first settlement) is kept here for keepSettled (10 s) to twice that of
// the store's clock, or until the caller forgets it (Forget: the gateway does
// once its request has settled). The record and its purge timer were two
// of the ~6 pages each settled request dirtied in its write transaction,
// and the purge a day later dirtied them again: bench/boltload.sh's 1000
// accounts went from 8,400-9,200 to 10,800-11,900 pairs/s without them.
//
// A hold with an Idempotency-Key is still written, kept for Retain: a
// retry replays its response. So is an expired hold: a late commit
// charges it, and may come long after its TTL.
//
// The answers are the embedded store's, so they die with the process, as
// the requests that could ask again do: after a restart a repeated Commit
// of a reservation settled before it is reservation_not_found, and
// charges nothing.

// keepSettled is how long a settled plain hold's answer is kept at least.
const keepSettled = 10 * time.Second

type settledKey struct{ account, rid string }

// settled is what a repeated call needs of a settled plain hold.
type settled struct {
	state               string // committed or voided
	late                bool
	charged, bal, avail int64
	entry               string
}

// settledGen is a stripe's answers (Open sets Keep). Its own lock, not
// the stripe's gate: a batch holds the gate through its fsync, and Forget
// is on every request's path.
type settledGen struct {
	mu sync.Mutex
	a  recent.Answers[settledKey, settled]
}

func (g *settledGen) put(k settledKey, v settled, now int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.a.Put(k, v, time.UnixMilli(now))
}

// get also moves the generations on: an answer is gone by twice
// keepSettled even when no other is recorded.
func (g *settledGen) get(k settledKey, now int64) (settled, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.a.Rotate(time.UnixMilli(now))
	return g.a.Get(k)
}

func (g *settledGen) drop(k settledKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.a.Drop(k)
}

// plainSettled reports whether r, settled, is kept in memory only.
func plainSettled(r *reservation) bool {
	return r.mem && r.Idem == "" && !r.Job && (r.State == committed || r.State == voided)
}

// settle keeps a settled plain hold's answer in memory instead of its
// record in the file; undone if the transaction fails.
func (o *op) settle(rid string, r *reservation) {
	o.unhold(rid)
	r.mem = false
	g := &o.s.mem.stripes[stripeOf(o.id)].settled
	k := settledKey{o.id, rid}
	g.put(k, settled{state: r.State, late: r.Late, charged: r.Charged, bal: r.Bal, avail: r.Avail, entry: r.Entry},
		o.now)
	o.g.undo = append(o.g.undo, func() { g.drop(k) })
}

// settledRes is a settled plain hold kept in memory, as its record; nil
// if there is none.
func (o *op) settledRes(rid string) *reservation {
	v, ok := o.s.mem.stripes[stripeOf(o.id)].settled.get(settledKey{o.id, rid}, o.now)
	if !ok {
		return nil
	}
	return &reservation{State: v.state, Late: v.late, Charged: v.charged, Bal: v.bal, Avail: v.avail, Entry: v.entry}
}

// Forget drops a settled plain hold's answer (meter.Forgetter): the
// caller will not ask again. A hold not settled, or written to the file,
// is kept.
func (s *Store) Forget(accountID, reservationID string) {
	s.mem.stripes[stripeOf(accountID)].settled.drop(settledKey{accountID, reservationID})
}

// Kept is the number of settled plain holds' answers in memory now.
func (s *Store) Kept() int {
	n := 0
	for i := range s.mem.stripes {
		g := &s.mem.stripes[i].settled
		g.mu.Lock()
		n += g.a.Len()
		g.mu.Unlock()
	}
	return n
}
