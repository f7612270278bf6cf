package boltstore

import (
	"hash/maphash"
	"slices"
	"sort"
	"sync"

	"github.com/creditgate/creditgate/meter/ledger"
)

// Holds in memory. A plain request's hold (Reserve) is never written to
// the file: the store is embedded, so a request in flight dies with the
// process, and its hold would have to be released at the next start
// anyway. It lives here, and the account record on disk counts only the
// durable holds (jobs'): the reserved fields an operation sees are the
// record's plus this overlay (open), and are saved less it
// (saveAccount). A restart, clean or not, therefore starts with exactly
// the durable holds reserved. A hold becomes a durable record when it
// leaves memory: committed, voided or expired, in the transaction that
// settles it.
//
// Consistency. Every operation on an account holds its stripe's gate
// for its whole duration: a write transaction from its first open of the
// account until it has committed or rolled back (the file and this
// overlay then change together, as one), a read from before its bbolt
// read transaction begins. Only writers (serialized by bbolt) take more
// than one gate, and no one waits for a gate inside a read transaction,
// so gates cannot deadlock with each other or with bbolt's remap lock.
// A transaction's memory changes are undone, in reverse, when it fails.

// nStripes is the number of gates; accounts share them by hash. A
// Reserve waits while a batch holds its account's gate: with a batch's
// accounts spread over many gates, it rarely waits for another's.
const nStripes = 4096

var stripeSeed = maphash.MakeSeed()

type memStore struct {
	stripes [nStripes]stripe
}

type stripe struct {
	gate  sync.Mutex
	accts map[string]*memAccount // guarded by gate
	// settled is the answers of its accounts' settled plain holds
	// (settled.go), under its own lock.
	settled settledGen
}

func stripeOf(id string) int { return int(maphash.String(stripeSeed, id) % nStripes) }

// memAccount is an account's holds in memory, and what they add to the
// record's reserved fields (ledger.Account.take's sums).
type memAccount struct {
	holds map[string]*memHold
	idem  map[string]string // Idempotency-Key -> id of the hold that has it
	res   int64             // Reserved: balance, overage and grant parts
	q, o  map[int64]int64   // QRes, ORes by the holds' period
	lots  map[string]int64  // each lot's Held
}

// memHold is a held reservation in memory: its parts, expiry, key and
// fingerprint (reservation's fields for a held record).
type memHold struct {
	ledger.Hold
	Exp  int64
	Idem string
	FP   string
}

func (m *memAccount) add(rid string, h *memHold) {
	if m.holds == nil {
		m.holds, m.idem = map[string]*memHold{}, map[string]string{}
		m.q, m.o, m.lots = map[int64]int64{}, map[int64]int64{}, map[string]int64{}
	}
	m.holds[rid] = h
	if h.Idem != "" {
		m.idem[h.Idem] = rid
	}
	m.sum(&h.Hold, 1)
}

func (m *memAccount) remove(rid string) *memHold {
	h := m.holds[rid]
	if h == nil {
		return nil
	}
	delete(m.holds, rid)
	if h.Idem != "" && m.idem[h.Idem] == rid {
		delete(m.idem, h.Idem)
	}
	m.sum(&h.Hold, -1)
	return h
}

func (m *memAccount) sum(h *ledger.Hold, d int64) {
	g := int64(0)
	for _, p := range h.G {
		g += p.N
		addTo(m.lots, p.ID, d*p.N)
	}
	m.res += d * (h.B + h.O + g)
	addTo(m.q, h.Per, d*h.Q)
	addTo(m.o, h.Per, d*h.O)
}

// addTo adds d to m[k], dropping the entries that come back to zero.
func addTo[K comparable](m map[K]int64, k K, d int64) {
	if d == 0 {
		return
	}
	if m[k] += d; m[k] == 0 {
		delete(m, k)
	}
}

// overlay adds (d 1) or takes off (d -1) the holds' parts to a's
// reserved fields. Parts of an earlier period no longer count in QRes
// and ORes (ledger.Account.Roll).
func (m *memAccount) overlay(a *ledger.Account, d int64) {
	if m == nil || len(m.holds) == 0 {
		return
	}
	a.Reserved += d * m.res
	if a.Period != 0 {
		a.QRes += d * m.q[a.Period]
		a.ORes += d * m.o[a.Period]
	}
	for i := range a.Lots {
		a.Lots[i].Held += d * m.lots[a.Lots[i].ID]
	}
}

// hasDue reports whether a hold's expiry is at or before now: due's
// question on every Reserve, without building and sorting the list.
func (m *memAccount) hasDue(now int64) bool {
	if m == nil {
		return false
	}
	for _, h := range m.holds {
		if h.Exp <= now {
			return true
		}
	}
	return false
}

// due lists the holds whose expiry is at or before now, in the order of
// the timers the file would have had (due, then id).
func (m *memAccount) due(now int64) []string {
	if m == nil {
		return nil
	}
	var ids []string
	for rid, h := range m.holds {
		if h.Exp <= now {
			ids = append(ids, rid)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := m.holds[ids[i]], m.holds[ids[j]]
		if a.Exp != b.Exp {
			return a.Exp < b.Exp
		}
		return ids[i] < ids[j]
	})
	return ids
}

// gates is the set of gates one operation (a transaction, a batch of
// them, a read) holds, and the undo log of its memory changes.
type gates struct {
	mem   *memStore
	order []int // the gates held, in the order taken
	undo  []func()
}

func (s *Store) gates() *gates { return &gates{mem: &s.mem} }

// lock takes the gate of account id unless already held.
func (g *gates) lock(id string) *stripe {
	i := stripeOf(id)
	st := &g.mem.stripes[i]
	if !slices.Contains(g.order, i) { // a batch holds a few dozen at most
		st.gate.Lock()
		g.order = append(g.order, i)
	}
	return st
}

// account is account id's memory, nil if it has none and create is false.
// The caller holds its gate.
func (g *gates) account(id string, create bool) *memAccount {
	st := &g.mem.stripes[stripeOf(id)]
	m := st.accts[id]
	if m == nil && create {
		if st.accts == nil {
			st.accts = map[string]*memAccount{}
		}
		m = &memAccount{}
		st.accts[id] = m
	}
	return m
}

// end releases the gates; unless keep, it first undoes the memory
// changes (the transaction they belonged to failed).
func (g *gates) end(keep bool) {
	if !keep {
		for i := len(g.undo) - 1; i >= 0; i-- {
			g.undo[i]()
		}
	}
	g.undo = nil
	for _, i := range g.order {
		g.mem.stripes[i].gate.Unlock()
	}
	g.order = g.order[:0]
}

// hold adds a hold to the account's memory.
func (o *op) hold(rid string, h *memHold) {
	m := o.g.account(o.id, true)
	o.m = m
	m.add(rid, h)
	o.g.undo = append(o.g.undo, func() { m.remove(rid) })
}

// unhold takes a hold out of the account's memory (it is settled: its
// record is written instead).
func (o *op) unhold(rid string) {
	m := o.m
	if h := m.remove(rid); h != nil {
		o.g.undo = append(o.g.undo, func() { m.add(rid, h) })
	}
}

// memRes is hold rid in memory as a held record, nil if there is none.
func (o *op) memRes(rid string) *reservation {
	if o.m == nil {
		return nil
	}
	h := o.m.holds[rid]
	if h == nil {
		return nil
	}
	r := &reservation{State: held, Hold: h.Hold, Exp: h.Exp, Idem: h.Idem, FP: h.FP, mem: true}
	r.G = append([]ledger.LotPart(nil), h.G...) // the model may change r's parts in place
	return r
}

// memIdem is the hold in memory that has Idempotency-Key key, if any.
func (o *op) memIdem(key string) (string, *reservation) {
	if o.m == nil {
		return "", nil
	}
	rid, ok := o.m.idem[key]
	if !ok {
		return "", nil
	}
	return rid, o.memRes(rid)
}
