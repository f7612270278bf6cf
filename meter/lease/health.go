package lease

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// A carved request is forwarded without a store call. While the store
// fails or stalls, that would send the upstream work whose charge cannot
// be written: its group settle fails (the response goes out with cost 0,
// uncharged) or waits for the store. So requests are carved only while
// the store answers: no call of this wrapper failed for want of the store
// since one last succeeded (down), and no group call, of any account, has
// been out longer than Options.Stall (stalled) unless another call was
// answered within Stall: a store that is slow under load but answers
// keeps carving, since reserving every request alone would cost it three
// times the work (a collapse, not a fallback). Otherwise a request is
// reserved alone, as without leases, and so fails fast (503
// metering_unavailable within the gateway's store timeout) while the store
// is away; the first call that succeeds clears down.

// observe records the outcome of a call to the store.
func (s *Store) observe(err error) {
	switch {
	case err == nil:
		s.answered.Store(time.Now().UnixNano())
		if s.down.Load() {
			s.down.Store(false)
		}
	case meter.ErrorCode(err) == meter.ECodeMeteringUnavailable:
		s.down.Store(true)
	}
}

// answering says whether the store answers, for carving.
func (s *Store) answering() bool {
	if s.down.Load() {
		return false
	}
	return s.stalled.Load() <= 0 || time.Now().UnixNano()-s.answered.Load() < int64(s.opts.Stall)
}

// watch counts a group call in stalled once it has been out for
// Options.Stall, until it returns: a timer per group call, so that a
// carve checks only two atomics.
type watch struct {
	s     *Store
	t     *time.Timer
	state atomic.Int32 // 0 out, 1 counted as stalled, 2 returned in time
}

func (s *Store) watch() *watch {
	w := &watch{s: s}
	w.t = time.AfterFunc(s.opts.Stall, func() {
		s.stalled.Add(1)
		if !w.state.CompareAndSwap(0, 1) {
			s.stalled.Add(-1) // returned meanwhile
		}
	})
	return w
}

// done ends the watch when the call returned.
func (w *watch) done() {
	w.t.Stop()
	if !w.state.CompareAndSwap(0, 2) {
		w.s.stalled.Add(-1)
	}
}

// leaseRef names a lease in the store.
type leaseRef struct {
	account, id string
	// until is set for a lease whose Reserve got no answer: the store may
	// have taken it (its reply lost with a crashed or stalled server) or
	// may take it yet (the call still in a stopped server's buffer), so a
	// Void that finds no such reservation is tried again until the lease
	// would have expired. Otherwise it holds its account's credits for the
	// lease's whole TTL with no gateway to carve from it.
	until time.Time
}

// releaseTimeout bounds a lease's release.
const releaseTimeout = time.Second

// maxUnreleased bounds the leases kept for another release: beyond it,
// the oldest are left to their expiry in the store (TTL + margin).
const maxUnreleased = 10000

// voidLease voids a lease's reservation; when the store cannot be
// reached, the lease is kept for retryReleases, so that what it holds
// comes back once the store answers, not at its TTL.
// While the store is down, only a probe (the first of retryReleases)
// calls it.
func (s *Store) voidLease(ctx context.Context, r leaseRef, probe bool) {
	if probe || !s.down.Load() {
		// Callers may hold the account's lock: bounded as a request's call.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		_, err := s.Settler.Void(ctx, r.account, r.id)
		switch meter.ErrorCode(err) {
		case meter.ECodeMeteringUnavailable:
			s.observe(err)
		case meter.ECodeReservationNotFound:
			// The store answered: as a probe, that ends down.
			s.observe(nil)
			if !s.opts.Now().Before(r.until) {
				return
			}
		default:
			s.observe(err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unreleased) >= maxUnreleased {
		s.unreleased = s.unreleased[1:]
	}
	s.unreleased = append(s.unreleased, r)
}

// retryReleases tries the kept releases again (the reaper, every idle/2,
// and Close).
func (s *Store) retryReleases() {
	s.mu.Lock()
	refs := s.unreleased
	s.unreleased = nil
	s.mu.Unlock()
	for i, r := range refs {
		s.voidLease(context.Background(), r, i == 0)
	}
}
