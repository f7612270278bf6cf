package lease

import (
	"context"
	"errors"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// reservation records the store's answer to a request reserved alone and
// returns it as the account's clients would see it without this
// gateway's lease (see view).
func (s *Store) reservation(a *account, ttl time.Duration, res meter.Reservation, err error) (meter.Reservation, error) {
	if err != nil || a == nil {
		return res, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen(res.Balance, res.Available, res.Quota, res.Overage)
	res.Available, res.Quota = a.view(res.Available, res.Quota)
	if !res.Replayed {
		a.plain[res.ID] = s.opts.Now().Add(ttl)
	}
	return res, nil
}

// refused says whether err is a refusal that credits held in a lease
// could have avoided.
func refused(err error) bool {
	var me *meter.Error
	return errors.As(err, &me) && (me.Code == meter.ECodeInsufficientCredits ||
		me.Code == meter.ECodeOverageLimitReached || me.Code == meter.ECodeQuotaExceeded)
}

// reclaim gives back the account's lease when nothing is carved from it,
// so that a request the store refused for want of the credits it holds
// can be tried again: the end of a balance is not lost to this gateway's
// lease. It reports whether it gave one back.
func (s *Store) reclaim(ctx context.Context, a *account) bool {
	a.mu.Lock()
	l := a.lease
	ok := l != nil && l.left > 0 && l.out == 0
	if ok {
		a.retire(l)
		ok = a.releasable(l)
		a.noLeaseUntil = s.opts.Now().Add(backoff) // the end of the balance: per request
	}
	a.mu.Unlock()
	if ok {
		s.release(ctx, a.id, l)
	}
	return ok
}

// awaitWait bounds how long a refused request waits for the requests
// carved from this gateway's leases to settle (their upstreams answer).
const awaitWait = 250 * time.Millisecond

// awaitLeases, for a request the store refused while this gateway's
// leases hold credits with requests carved from them, stops carving from
// them and waits (at most awaitWait) until they are settled and given
// back, so that the request is tried once more with what they held: the
// last credits are not refused for a lease's leftover. It reports
// whether they were given back in time.
func (s *Store) awaitLeases(ctx context.Context, a *account) bool {
	deadline := time.Now().Add(awaitWait)
	a.mu.Lock()
	credits, quota := a.leftHeld()
	if credits+quota == 0 {
		a.mu.Unlock()
		return false
	}
	if l := a.lease; l != nil {
		a.retire(l) // released when its carves are settled (flush, Void)
		a.noLeaseUntil = s.opts.Now().Add(backoff)
	}
	a.mu.Unlock()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
		a.mu.Lock()
		credits, quota = a.leftHeld()
		a.mu.Unlock()
		if credits+quota == 0 {
			return true
		}
	}
	return false
}

// CreateJob is the store's; a refusal for want of the credits this
// gateway's lease holds gives the lease back and tries once more.
func (s *Store) CreateJob(ctx context.Context, r meter.JobRequest) (meter.JobResult, error) {
	res, err := s.Settler.CreateJob(ctx, r)
	if a := s.lookup(r.AccountID); a != nil && refused(err) && s.reclaim(ctx, a) {
		return s.Settler.CreateJob(ctx, r)
	}
	return res, err
}

// Account is the store's, with what is left of this gateway's lease
// counted as available rather than reserved: what the account's clients
// can still spend through it.
func (s *Store) Account(ctx context.Context, id string) (meter.Account, error) {
	a := s.lookup(id)
	if a == nil {
		return s.Settler.Account(ctx, id)
	}
	// The store is read under the account's lock, as takeLease reserves
	// under it: a lease taken between the read and the adjustment would
	// be taken out of a snapshot that does not hold it (reserved below
	// zero, seen under load).
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, err := s.Settler.Account(ctx, id)
	if err != nil {
		return acct, err
	}
	for _, l := range a.expire(s.opts.Now()) {
		s.release(ctx, a.id, l)
	}
	credits, quota := a.leftHeld()
	// Never more than the store holds: a lease the store expired or was
	// given back is not in its reserved.
	credits = min(credits, max(acct.Reserved, 0))
	acct.Reserved -= credits
	acct.Available += credits
	if quota > 0 {
		acct.Quota = freeQuota(acct.Quota, quota)
	}
	return acct, nil
}
