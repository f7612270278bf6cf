package lease

import (
	"sync"
	"time"

	"github.com/creditgate/creditgate/internal/recent"
	"github.com/creditgate/creditgate/meter"
)

// account is this gateway's state of one account: its lease, the
// requests carved from it, its recent rate and the settlements waiting
// for their group call. Guarded by mu.
type account struct {
	id string
	mu sync.Mutex

	lease        *lease
	held         []*lease // leases the store may still hold: a.lease and retired ones with carves out
	lastCarve    time.Time
	noLeaseUntil time.Time
	carves       map[string]*carve
	nextExpiry   time.Time // no carve expires before
	// Settled carves' answers, kept keepDone to twice that (a request
	// that settled forgets its own at once, see Forget).
	done     recent.Answers[string, doneCarve]
	plain    map[string]time.Time // requests reserved alone through this gateway, not settled yet: their expiry
	queue    []*pending
	waiting  map[string]*pending // queue's and the group call's out, by reservation id
	flushing bool

	// The last balance, available and period state the store answered
	// (this gateway's lease counted as held), for the answers of carves
	// (see view).
	balance, available meter.Credits
	quota              meter.QuotaState
	overage            meter.OverageState

	// Requests and credits asked for in the current and the previous
	// second, for the rate and the lease's size.
	window          time.Time
	reqs, prevReqs  int
	spent, prevSpnt meter.Credits
}

// lease is a reservation of the store held by this gateway. left is what
// no request holds; out the carves not settled or voided yet.
type lease struct {
	id       string
	period   int64 // the period id it was taken in (meter.Period.Millis)
	left     meter.Credits
	out      int
	expires  time.Time // by this gateway's clock, no later than the store's
	retired  bool      // no more carves; released once out is 0
	released bool
	gone     bool // the store expired it: it holds nothing
	// quota: the lease is all quota (none of it credits); else none of it
	// is quota or overage. A lease is kept only when its answer proves
	// one or the other (see takeLease), so that each carve's answer can
	// say what the quota would be without it.
	quota bool
}

// carve is a request's hold in a lease: what its settle may take of the
// lease (lease_settle.lua takes an uncapped charge beyond it from the
// pools, never from the other carves). A late one (l nil) expired before
// its commit: it is charged from what the pools have then.
type carve struct {
	l       *lease
	amount  meter.Credits
	expires time.Time
}

// doneCarve answers a settled, voided or expired carve's later Commit or
// Void as the store answers a reservation's in that state. Small, with
// one pointer: kept 10 s (keepDone) with a whole meter.Settlement each,
// they were most of a busy gateway's live heap, which every GC cycle
// marks (a gateway's requests now also forget theirs, see Forget).
type doneCarve struct {
	state byte // 'c' committed, 'v' voided, 'x' expired
	late  bool
	// amount: 'x', the carve's hold; 'c', the charge.
	amount                        meter.Credits
	balance, available, shortfall meter.Credits
	entry                         string
}

// committedAnswer records a commit's settlement st (as answered).
func committedAnswer(st meter.Settlement) doneCarve {
	return doneCarve{state: 'c', late: st.Late, amount: st.Charged, balance: st.Balance,
		available: st.Available, shortfall: st.Shortfall, entry: st.EntryID}
}

// settlement is a committed carve's first answer, without the period's
// state (the caller's, of now).
func (d doneCarve) settlement() meter.Settlement {
	return meter.Settlement{Charged: d.amount, Balance: d.balance, Available: d.available,
		EntryID: d.entry, Late: d.late, Shortfall: d.shortfall}
}

// keepDone is how long at least a settled carve's answer is kept for a
// repeated call, unless forgotten; the store keeps settled reservations
// longer (Retain), but a carve is settled by the process that carved
// it, within its request (three tries of store_timeout at most).
const keepDone = 10 * time.Second

func (a *account) count(now time.Time, amount meter.Credits) {
	switch d := now.Sub(a.window); {
	case d >= 2*time.Second || d < 0:
		a.window, a.prevReqs, a.prevSpnt, a.reqs, a.spent = now, 0, 0, 0, 0
	case d >= time.Second:
		a.window, a.prevReqs, a.prevSpnt, a.reqs, a.spent = now, a.reqs, a.spent, 0, 0
	}
	a.reqs++
	a.spent += amount
}

// wantLease says whether the account is busy enough for a lease.
func (a *account) wantLease(now time.Time, minRate int) bool {
	return !now.Before(a.noLeaseUntil) && max(a.reqs, a.prevReqs) >= minRate
}

// spendRate is the credits asked for per second, over the last full
// second or the current one, whichever is more.
func (a *account) spendRate(now time.Time) meter.Credits {
	cur := a.spent
	if el := now.Sub(a.window); el > 100*time.Millisecond {
		cur = a.spent * meter.Credits(time.Second) / meter.Credits(el)
	}
	return max(cur, a.prevSpnt)
}

// carve holds r from the lease in memory when it has room and lives
// long enough.
func (a *account) carve(now time.Time, r meter.ReserveRequest) (meter.Reservation, bool) {
	l := a.lease
	if l == nil || l.retired {
		return meter.Reservation{}, false
	}
	if a.ending(now, r.TTL) {
		return meter.Reservation{}, false // the caller replaces or releases it
	}
	if l.left < r.Amount {
		return meter.Reservation{}, false
	}
	if pid, _ := r.Period.Millis(); pid != l.period {
		return meter.Reservation{}, false // a new period: the next lease starts it in the store
	}
	if _, dup := a.carves[r.ID]; dup {
		return meter.Reservation{}, false // the store answers a reused id
	}
	l.left -= r.Amount
	l.out++
	a.lastCarve = now
	exp := now.Add(r.TTL)
	a.carves[r.ID] = &carve{l: l, amount: r.Amount, expires: exp}
	if a.nextExpiry.IsZero() || exp.Before(a.nextExpiry) {
		a.nextExpiry = exp
	}
	res := meter.Reservation{ID: r.ID, AccountID: a.id, Amount: r.Amount, Balance: a.balance, Overage: a.overage}
	res.Available, res.Quota = a.view(a.available, a.quota)
	return res, true
}

// ending says whether the lease may end before a request of ttl settles.
func (a *account) ending(now time.Time, ttl time.Duration) bool {
	return a.lease != nil && now.Add(ttl+margin).After(a.lease.expires)
}

// retire stops carving from l; the caller releases it once out is 0.
func (a *account) retire(l *lease) {
	l.retired = true
	if a.lease == l {
		a.lease = nil
	}
}

// releasable says whether l is retired with no carve left, and if so
// marks it released: the caller then releases it, once.
func (a *account) releasable(l *lease) bool {
	if !l.retired || l.out > 0 || l.released {
		return false
	}
	l.released = true
	return true
}

// view turns a store's answer (available, quota) into what the
// account's clients would see without this gateway's lease: what is left
// of it, held by no request, is theirs to spend rather than reserved
// (credits for a lease of credits, quota for a lease of quota).
func (a *account) view(available meter.Credits, q meter.QuotaState) (meter.Credits, meter.QuotaState) {
	credits, quota := a.leftHeld()
	if quota > 0 {
		q = freeQuota(q, quota)
	}
	return available + credits, q
}

// quotaView is the quota last seen as the account's clients see it.
func (a *account) quotaView() meter.QuotaState {
	_, q := a.view(0, a.quota)
	return q
}

// leftHeld is what is left of this gateway's leases that the store
// holds, credits and quota: the lease carved from and retired ones
// whose carves are not all settled yet.
func (a *account) leftHeld() (credits, quota meter.Credits) {
	live := a.held[:0]
	for _, l := range a.held {
		if l.released || l.gone {
			continue
		}
		live = append(live, l)
		if l.quota {
			quota += l.left
		} else {
			credits += l.left
		}
	}
	clear(a.held[len(live):])
	a.held = live
	return credits, quota
}

// freeQuota is q with n of its reserved quota free again, as the store
// computes remaining (limit - used - reserved, at least 0), except that
// a remaining the store gave as 0 with room under the limit (the account
// owes credits: no quota is spent) stays 0.
func freeQuota(q meter.QuotaState, n meter.Credits) meter.QuotaState {
	n = min(n, max(q.Reserved, 0)) // never more than the store holds
	if q.Remaining == 0 && q.Limit-q.Used-q.Reserved > 0 {
		return q
	}
	q.Reserved -= n
	q.Remaining = max(0, q.Limit-q.Used-q.Reserved)
	return q
}

// answer is a void's settlement of a carve: the account as last seen.
func (a *account) answer() meter.Settlement {
	st := meter.Settlement{Balance: a.balance, Overage: a.overage}
	st.Available, st.Quota = a.view(a.available, a.quota)
	return st
}

// seen records a store answer's state of the account, for the answers of
// later carves.
func (a *account) seen(balance, available meter.Credits, q meter.QuotaState, o meter.OverageState) {
	a.balance, a.available, a.quota, a.overage = balance, available, q, o
}

// expire gives the holds of carves whose TTL passed back to their leases,
// as the store releases an expired reservation, and returns the leases
// to release now.
func (a *account) expire(now time.Time) (free []*lease) {
	if a.nextExpiry.IsZero() || now.Before(a.nextExpiry) {
		return nil
	}
	a.nextExpiry = time.Time{}
	for id, cv := range a.carves {
		if !now.Before(cv.expires) {
			delete(a.carves, id)
			free = append(free, a.drop(cv)...)
			a.done.Put(id, doneCarve{state: 'x', amount: cv.amount}, now)
		} else if a.nextExpiry.IsZero() || cv.expires.Before(a.nextExpiry) {
			a.nextExpiry = cv.expires
		}
	}
	return free
}

// drop gives a carve's hold back to its lease and returns the lease if
// it is to be released now.
func (a *account) drop(cv *carve) []*lease {
	l := cv.l
	l.out--
	l.left += cv.amount
	if a.releasable(l) {
		return []*lease{l}
	}
	return nil
}
