package storetest

import (
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// The reference: accounts kept in memory and moved only by meter/ledger,
// the way a store must move them. The model-based tests (model.go) apply
// the same operations to it and to a store and compare after each.

// Hold states, as the stores name them.
const (
	refHeld      = 'h'
	refCommitted = 'c'
	refVoided    = 'v'
	refExpired   = 'x'
)

type refHold struct {
	h     ledger.Hold
	state byte
	short bool // expires at the next advance of the clock
	job   bool
	// idem and fp are the hold's idempotency key and the fingerprint of
	// its request.
	idem, fp string
	// settled is the first settlement of a committed hold, which a
	// repeated commit answers again.
	settled meter.Settlement
}

type refAccount struct {
	id       string
	a        ledger.Account
	holds    map[string]*refHold
	entries  []ledger.Entry
	ids      []string // the store's ids of entries, learnt when compared
	refunded map[int]bool
	events   []ledger.Event
	jobs     map[string]*refJob
	idem     map[string]string // idempotency key -> the rid that holds it
	month    int               // the period the account's calls name
	lotNow   int64             // the store's ms the run last advanced to
}

func newRefAccount(id string, initial int64) *refAccount {
	r := &refAccount{id: id, holds: map[string]*refHold{}, refunded: map[int]bool{}, jobs: map[string]*refJob{},
		idem: map[string]string{}}
	if initial > 0 {
		e, _, _ := r.a.Grant(meter.EntryPurchase, initial)
		r.entries = append(r.entries, e)
	}
	return r
}

func (r *refAccount) record(e *ledger.Entry, evs []ledger.Event) {
	if e != nil {
		r.entries = append(r.entries, *e)
	}
	r.events = append(r.events, evs...)
}

func (r *refAccount) roll() {
	if r.month > 0 {
		r.a.Roll(month(r.month).Millis())
	}
}

// reserve is Store.Reserve, with an idempotency key (key, fp) or none:
// it returns the amount held, or replayed, and the id of the committed
// reservation a replay answers with.
func (r *refAccount) reserve(rid string, amount, minimum int64, short bool, key, fp string) (int64, string, error) {
	r.roll()
	if r.holds[rid] != nil {
		return 0, "", meter.Errorf(meter.ECodeInvalid, "reservation id already used")
	}
	if p := r.idem[key]; key != "" && p != "" {
		ph := r.holds[p]
		switch {
		case (ph.state == refHeld || ph.state == refCommitted) && ph.fp != fp:
			return 0, "", meter.IdempotencyKeyReused()
		case ph.state == refHeld:
			return 0, "", meter.Errorf(meter.ECodeIdempotencyConflict, "in progress")
		case ph.state == refCommitted:
			return int64(ph.settled.Charged), p, nil
		}
	}
	h, err := r.a.Reserve(amount, minimum)
	if err != nil {
		return 0, "", err
	}
	r.holds[rid] = &refHold{h: h, state: refHeld, short: short, idem: key, fp: fp}
	if key != "" {
		r.idem[key] = rid
	}
	return h.Amount(), "", nil
}

// dropIdem frees the idempotency key of a hold that was voided or expired:
// a retry with it may be charged again.
func (r *refAccount) dropIdem(rid string, h *refHold) {
	if h.idem != "" && r.idem[h.idem] == rid {
		delete(r.idem, h.idem)
	}
}

// commit is Store.Commit.
func (r *refAccount) commit(rid string, amount int64, uncapped bool) (meter.Settlement, error) {
	h := r.holds[rid]
	switch {
	case h == nil || h.job:
		return meter.Settlement{}, meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
	case h.state == refCommitted:
		st := h.settled
		st.Shortfall = 0
		st.Quota, st.Overage = r.a.State()
		return st, nil
	case h.state == refVoided:
		return meter.Settlement{}, meter.Errorf(meter.ECodeReservationSettled, "reservation is already voided")
	}
	late := h.state == refExpired
	if late && h.idem != "" && r.idem[h.idem] == "" {
		// Charged after all: a retry with its key replays it, unless a
		// retry holds the key already.
		r.idem[h.idem] = rid
	}
	s := r.a.Settle(h.h, late, amount, uncapped)
	r.record(s.Entry, s.Events)
	r.endLots() // what it released of an ended grant, before the reply's balance
	h.state, h.h = refCommitted, s.Parts
	st := meter.Settlement{Charged: meter.Credits(s.Charged), Balance: meter.Credits(r.a.Balance),
		Available: meter.Credits(r.a.Balance - r.a.Reserved), Late: late, Shortfall: meter.Credits(s.Short)}
	if s.Entry != nil {
		st.EntryID = "?" // the store's: compared as present
	}
	h.settled = st
	st.Quota, st.Overage = r.a.State()
	return st, nil
}

// void is Store.Void.
func (r *refAccount) void(rid string) error {
	h := r.holds[rid]
	switch {
	case h == nil || h.job:
		return meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
	case h.state == refCommitted:
		return meter.Errorf(meter.ECodeReservationSettled, "reservation is already committed")
	case h.state == refHeld:
		r.a.Release(h.h)
		h.state = refVoided
		r.dropIdem(rid, h)
	}
	return nil
}

// expire releases the short holds: the store's clock passed their TTL.
func (r *refAccount) expire() {
	for rid, h := range r.holds {
		if h.state == refHeld && h.short {
			r.a.Release(h.h)
			h.state = refExpired
			r.dropIdem(rid, h)
		}
	}
}

// grant is Store.Grant without an idempotency key.
func (r *refAccount) grant(typ string, amount int64) error {
	e, evs, err := r.a.Grant(typ, amount)
	if err != nil {
		return err
	}
	r.record(&e, evs)
	return nil
}

// refund is Store.Refund of the i-th entry.
func (r *refAccount) refund(i int, amount int64) error {
	switch {
	case r.refunded[i]:
		return meter.Errorf(meter.ECodeRefundNotAllowed, "already refunded")
	case r.entries[i].Type != meter.EntryUsage:
		return meter.Errorf(meter.ECodeNotFound, "not a usage entry")
	}
	u := r.entries[i]
	took := -u.Amount
	for _, p := range u.Lots {
		took -= p.N
	}
	e, evs, err := r.a.Refund("", took, u.Lots, amount)
	if err != nil {
		return err
	}
	r.refunded[i] = true
	r.record(&e, evs)
	return nil
}

// settings is Store.UpdateSettings of the money limits.
func (r *refAccount) settings(quota, overageCap, threshold int64) {
	r.a.QuotaLimit, r.a.OverageCap = quota, overageCap
	r.a.SetThreshold(threshold)
}
