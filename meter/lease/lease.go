// Package lease takes a metered request's reservation off the store's
// round trips: a gateway holds, per busy account, one reservation of many
// requests' worth (a lease), carves each request's hold from it in memory,
// and settles the requests' charges in groups, one store call per group
// and account, each request still its own ledger entry written before its
// Commit returns. A request therefore costs one store round trip (its
// settlement, shared with the others of its group) instead of two.
//
// What the money contract needs, and how it is kept:
//   - no overdraw: a carve never exceeds what is left of a lease the store
//     holds; a request that cannot be carved is reserved alone, as without
//     a lease, and so is every request of an account whose lease would
//     take more than a share of its available credits (the last credits
//     are reserved per request), whatever number of gateways;
//   - every 2xx's charge in the ledger before its response: Commit waits
//     for the group call that writes its entry (at most its context: then
//     it fails as a commit whose reply was lost), and a resent group call
//     is answered once by the store;
//   - no upstream work while the store does not answer: nothing is
//     carved then (health.go), so requests fail as without leases;
//   - nothing charged for failed work: Void gives the carve back to the
//     lease in memory, and what is left of a lease is released (Void)
//     when it is replaced or the gateway closes;
//   - a dead gateway's holds released by the store's clock: a lease is a
//     reservation with a TTL, which the store expires as any other.
//
// Requests with an idempotency key or a minimum are reserved alone: their
// answers carry state (replays, partial holds) that only the store has.
// Accounts with a quota or an overage cap are leased while the lease is
// all quota or none of it quota or overage (takeLease): each answer then
// carries the quota and overage the client would see without the lease
// (view), from the period's state the group settle answers with.
package lease

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditgate/creditgate/internal/recent"
	"github.com/creditgate/creditgate/meter"
)

// Settler is a store that can settle requests carved from a lease:
// redisstore.Store.
type Settler interface {
	meter.Store
	// SettleLease charges each of reqs against the held reservation
	// leaseID in one atomic step, one ledger entry each, and keeps the
	// lease held with what is left. Each request takes at most carved[i]
	// (its carve) from the lease; an uncapped charge beyond it comes from
	// what the pools have now, as a reservation's commit takes it.
	// A request marked late is charged from what the pools have now, as
	// an expired reservation's commit is. Each answer carries the
	// period's state (Quota, Overage) after the group.
	SettleLease(ctx context.Context, accountID, leaseID string, reqs []meter.CommitRequest,
		carved []meter.Credits, late []bool) ([]meter.Settlement, error)
}

// Options tune the leases. Zero values take the defaults.
type Options struct {
	// Gateway names this process's leases in the store (reservation ids
	// "lease.<gateway>.<n>"); unique per process. Default: random.
	Gateway string
	// TTL is how long a lease is carved from. Its reservation's TTL in
	// the store is TTL plus the TTL of the request that took it plus 2s,
	// so that a request carved at the end settles before it expires: how
	// long a dead gateway's lease holds credits. Default 10s.
	TTL time.Duration
	// Horizon is how much of an account's recent spend a lease holds.
	// Default 500ms.
	Horizon time.Duration
	// MinRate is the requests per second an account must make through
	// this gateway before it gets a lease. Default 20.
	MinRate int
	// Share is the largest part of an account's available credits that
	// one lease may take, as a divisor: the lease is given back and the
	// account reserved per request when what it would take is more than
	// available/Share. Default 4.
	Share int
	// MaxBatch is the most settlements in one store call. Default 128.
	MaxBatch int
	// Stall is how long a group call may be out, with no other call
	// answered meanwhile, before requests stop being carved and are
	// reserved alone, as without leases, until the store answers again
	// (see answering). Default 25ms; the gateway uses at most half its
	// store_timeout.
	Stall time.Duration
	// SettleTimeout bounds a group settle, which runs for several
	// requests and so not under any one request's context (each waits
	// its own). Default 10s.
	SettleTimeout time.Duration
	// Now is the gateway's clock, for rates and lease lifetimes (expiry
	// itself is the store's). Default time.Now.
	Now func() time.Time
}

// Store wraps a Settler: Reserve, Commit and Void use leases as the
// package says; every other method is the Settler's.
type Store struct {
	Settler
	opts     Options
	seq      atomic.Uint64
	mu       sync.Mutex
	accounts map[string]*account
	closed   bool

	leases, carves atomic.Int64
	down           atomic.Bool  // a call failed for want of the store since one last succeeded
	stalled        atomic.Int64 // group calls out longer than Stall (see watch)
	answered       atomic.Int64 // unix ns of the last call that succeeded
	unreleased     []leaseRef   // leases whose release did not reach the store, under mu
	stop           chan struct{}
	reaped         sync.WaitGroup
}

// Stats counts what the wrapper did since New.
type Stats struct {
	// Leases taken and kept (not given back at once for the account's
	// pools or balance); Carves, requests held from one.
	Leases, Carves int64
	// Kept is the settled carves whose answers are kept now, for a
	// repeated call (see Forget).
	Kept int
}

// Stats returns the counts so far.
func (s *Store) Stats() Stats {
	st := Stats{Leases: s.leases.Load(), Carves: s.carves.Load()}
	// The accounts are copied first: a release may take s.mu while holding
	// an account's lock (voidLease), so s.mu is never held to take one.
	s.mu.Lock()
	accts := slices.Collect(maps.Values(s.accounts))
	s.mu.Unlock()
	for _, a := range accts {
		a.mu.Lock()
		st.Kept += a.done.Len()
		a.mu.Unlock()
	}
	return st
}

// New wraps s. Close releases the leases and closes s.
func New(s Settler, opts Options) *Store {
	if opts.Gateway == "" {
		opts.Gateway = rand.Text()[:10]
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Horizon <= 0 {
		opts.Horizon = 500 * time.Millisecond
	}
	if opts.MinRate <= 0 {
		opts.MinRate = 20
	}
	if opts.Share <= 0 {
		opts.Share = 4
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 128
	}
	if opts.SettleTimeout <= 0 {
		opts.SettleTimeout = 10 * time.Second
	}
	if opts.Stall <= 0 {
		opts.Stall = 25 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := &Store{Settler: s, opts: opts, accounts: map[string]*account{}, stop: make(chan struct{})}
	st.reaped.Add(1)
	go st.reap()
	return st
}

// idle is how long a lease goes uncarved before it is given back: an
// account that stopped sending requests holds nothing for long.
const idle = time.Second

// reap gives back the leases of accounts that went idle, and forgets
// accounts with nothing in memory, every idle/2.
func (s *Store) reap() {
	defer s.reaped.Done()
	t := time.NewTicker(idle / 2)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		accts := slices.Collect(maps.Values(s.accounts))
		s.mu.Unlock()
		s.retryReleases()
		now := s.opts.Now()
		for _, a := range accts {
			a.mu.Lock()
			for id, exp := range a.plain {
				if now.Sub(exp) > plainGrace {
					delete(a.plain, id) // a commit now is answered as the store answers it
				}
			}
			var free []*lease
			free = append(free, a.expire(now)...)
			if l := a.lease; l != nil && now.Sub(a.lastCarve) > idle {
				a.retire(l)
				if a.releasable(l) {
					free = append(free, l)
				}
			}
			a.mu.Unlock()
			for _, l := range free {
				s.release(context.Background(), a.id, l)
			}
		}
	}
}

// plainGrace is how long after its expiry a request reserved alone is
// remembered, so that its late first commit is told from a repeated one.
const plainGrace = time.Minute

// margin keeps a carve clear of its lease's end: a request carved is
// settled at least this long before the lease expires, for clock drift
// and the settlement's own trip.
const margin = 2 * time.Second

// backoff is how long an account is reserved per request after a lease
// was refused or would have taken too large a share.
const backoff = time.Second

func (s *Store) account(id string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[id]
	if a == nil {
		a = &account{id: id, carves: map[string]*carve{}, done: recent.Answers[string, doneCarve]{Keep: keepDone},
			plain: map[string]time.Time{}}
		s.accounts[id] = a
	}
	return a
}

func (s *Store) lookup(id string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[id]
}

// Reserve carves r from the account's lease when it can, else takes a
// lease for a busy account, else reserves r alone in the store.
func (s *Store) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	if r.Validate() != nil {
		return s.Settler.Reserve(ctx, r)
	}
	if r.IdempotencyKey != "" || r.Minimum > 0 {
		res, err := s.Settler.Reserve(ctx, r)
		return s.reservation(s.account(r.AccountID), r.TTL, res, err)
	}
	a := s.account(r.AccountID)
	a.mu.Lock()
	now := s.opts.Now()
	for _, l := range a.expire(now) {
		s.release(ctx, a.id, l)
	}
	a.count(now, r.Amount)
	// While the store does not answer, the request is reserved alone.
	answering := s.answering()
	if answering {
		if res, ok := a.carve(now, r); ok {
			a.mu.Unlock()
			s.carves.Add(1)
			return res, nil
		}
	}
	if answering && a.wantLease(now, s.opts.MinRate) && !s.isClosed() {
		s.takeLease(ctx, a, r, now)
		if res, ok := a.carve(now, r); ok {
			a.mu.Unlock()
			s.carves.Add(1)
			return res, nil
		}
	} else if l := a.lease; l != nil && a.ending(now, r.TTL) {
		a.retire(l)
		if a.releasable(l) {
			s.release(ctx, a.id, l)
		}
	}
	a.mu.Unlock()
	res, err := s.Settler.Reserve(ctx, r)
	s.observe(err)
	if refused(err) {
		// The credits may be in this gateway's lease, taken meanwhile.
		a.mu.Lock()
		now := s.opts.Now()
		var res2 meter.Reservation
		ok := false
		if s.answering() {
			res2, ok = a.carve(now, r)
		}
		a.mu.Unlock()
		if ok {
			s.carves.Add(1)
			return res2, nil
		}
		if s.reclaim(ctx, a) || s.awaitLeases(ctx, a) {
			res, err = s.Settler.Reserve(ctx, r)
		}
	}
	return s.reservation(a, r.TTL, res, err)
}

// takeLease replaces the account's lease by a new one sized from its
// recent spend, or marks the account to be reserved per request for a
// while. Called with a.mu held: the account's other requests wait for
// the one store call, rather than each taking a lease.
func (s *Store) takeLease(ctx context.Context, a *account, r meter.ReserveRequest, now time.Time) {
	if old := a.lease; old != nil {
		a.retire(old)
		if a.releasable(old) {
			s.release(ctx, a.id, old)
		}
	}
	size := max(a.spendRate(now)*meter.Credits(s.opts.Horizon.Milliseconds())/1000, 4*r.Amount)
	id := fmt.Sprintf("lease.%s.%d", s.opts.Gateway, s.seq.Add(1))
	// Carvable for TTL: a request carved at its end still settles before
	// the store expires the lease.
	ttl := s.opts.TTL + r.TTL + margin
	res, err := s.Settler.Reserve(ctx, meter.ReserveRequest{AccountID: a.id, ID: id, Amount: size, TTL: ttl,
		Period: r.Period})
	s.observe(err)
	if err != nil {
		a.noLeaseUntil = now.Add(backoff)
		if meter.ErrorCode(err) == meter.ECodeMeteringUnavailable {
			// Taken or not, unknown: released once the store answers.
			s.voidLease(ctx, leaseRef{account: a.id, id: id, until: now.Add(ttl)}, false)
		}
		return
	}
	pid, _ := r.Period.Millis()
	l := &lease{id: id, period: pid, left: size, expires: now.Add(ttl)}
	a.seen(res.Balance, res.Available, res.Quota, res.Overage)
	// The store takes a hold from the pools in order (quota, grants,
	// balance, overage) and answers only the pools' state after it; a
	// lease is kept when that state proves it all quota or none of it
	// quota or overage, so that each carve can answer the quota and the
	// overage its client would see without the lease. Anything else is
	// the end of a pool: per request, as the last credits are.
	share := meter.Credits(s.opts.Share - 1)
	q := res.Quota
	switch {
	case q.Limit > 0 && q.Remaining > 0: // quota left over: the lease took only quota
		if q.Remaining >= share*size {
			l.quota, a.lease = true, l
		}
	case q.Limit > 0 && q.Reserved > 0: // the quota's end: the lease may hold some of it
	case res.Available >= share*size: // no quota held; credits to spare, so no overage
		a.lease = l
	}
	if a.lease == l {
		a.held = append(a.held, l)
		s.leases.Add(1)
		return
	}
	a.noLeaseUntil = now.Add(backoff)
	a.retire(l)
	l.released = true
	s.release(ctx, a.id, l)
}

// release gives what is left of a lease back to the account (a Void of
// its reservation). One the store could not be reached for is tried
// again by the reaper (see unreleased); other errors (it expired, say)
// are the store's answer.
// The caller marks it released first, under the account's lock
// (releasable).
func (s *Store) release(ctx context.Context, account string, l *lease) {
	s.voidLease(ctx, leaseRef{account: account, id: l.id}, false)
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close releases every lease, then closes the wrapped store.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	accts := slices.Collect(maps.Values(s.accounts))
	s.mu.Unlock()
	s.reaped.Wait()
	for _, a := range accts {
		a.mu.Lock()
		if l := a.lease; l != nil {
			a.retire(l)
			if a.releasable(l) {
				s.release(context.Background(), a.id, l)
			}
		}
		a.mu.Unlock()
	}
	s.retryReleases()
	return s.Settler.Close()
}

// Unwrap is the store behind the leases, for meter.StoreAs (its optional
// sides: payments, rollups).
func (s *Store) Unwrap() meter.Store { return s.Settler }

var _ meter.Store = (*Store)(nil)
