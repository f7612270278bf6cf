package boltstore

import (
	"bytes"
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// rollPeriod applies a caller's period (Reserve, the job calls): a newer
// one starts afresh; an older one is read as the stored one.
func (o *op) rollPeriod(p meter.Period) {
	if o.a.Roll(p.Millis()) {
		o.dirty = true
	}
}

// Reserve holds r.Amount of the account's credits for r.TTL, from the
// quota, then the balance, then the overage (ledger.Account.Reserve); it follows
// redisstore's reserve.lua. With an IdempotencyKey: while the reservation
// that holds the key is unsettled, ECodeIdempotencyConflict; once it is
// committed (for Retain), a replay that reserves nothing, with the
// response its commit stored; once it is voided or expired, a new
// reservation. While held or committed, the key with another Fingerprint
// is ECodeIdempotencyKeyReused.
//
// The hold is kept in memory only (memholds.go): a Reserve writes nothing
// unless the account has something else to write first (an expiry, a
// new period), which reserveInMemory leaves to a write transaction.
func (s *Store) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	ttl := (r.TTL + time.Millisecond - 1).Milliseconds()
	var res meter.Reservation
	fn := func(o *op) error {
		a := o.a
		o.rollPeriod(r.Period)
		var response []byte // a replay's stored response
		ok := func(amt int64, replayed string) error {
			res = meter.Reservation{ID: r.ID, AccountID: r.AccountID, Amount: meter.Credits(amt),
				Balance: meter.Credits(a.Balance), Available: meter.Credits(a.Balance - a.Reserved)}
			if replayed != "" {
				res.ID, res.Replayed, res.Response = replayed, true, response
			}
			res.Quota, res.Overage = a.State()
			return nil
		}
		prev, err := o.loadRes(r.ID)
		if err != nil {
			return internalErr(err)
		}
		if prev != nil {
			return invalid("reservation id already used")
		}
		if r.IdempotencyKey != "" {
			if _, p := o.memIdem(r.IdempotencyKey); p != nil { // held, unexpired (swept)
				if p.FP != r.Fingerprint {
					return meter.IdempotencyKeyReused()
				}
				return meter.Errorf(meter.ECodeIdempotencyConflict, "a request with this Idempotency-Key is still in progress")
			}
			if rid := o.sub(bIdem).Get([]byte("r:" + r.IdempotencyKey)); rid != nil {
				prid := string(rid)
				p, err := o.loadRes(prid)
				if err != nil {
					return internalErr(err)
				}
				switch {
				case p != nil && p.State == held && p.Exp <= o.now:
					// Cannot happen after a full sweep; kept as in reserve.lua.
					if err := o.expire(prid, p); err != nil {
						return internalErr(err)
					}
				case p != nil && (p.State == held || p.State == committed) && p.FP != r.Fingerprint:
					return meter.IdempotencyKeyReused()
				case p != nil && p.State == held:
					// A hold written by an older version of the store.
					return meter.Errorf(meter.ECodeIdempotencyConflict, "a request with this Idempotency-Key is still in progress")
				case p != nil && p.State == committed:
					if stored := o.sub(bIdem).Get(responseKey(prid)); stored != nil {
						response = bytes.Clone(stored) // valid only in the transaction
					}
					return ok(p.Charged, prid)
				}
			}
		}
		h, err := a.Reserve(int64(r.Amount), int64(r.Minimum))
		if err != nil {
			return err
		}
		hold := &memHold{Hold: h, Exp: o.now + ttl, Idem: r.IdempotencyKey}
		if r.IdempotencyKey != "" {
			hold.FP = r.Fingerprint
		}
		o.hold(r.ID, hold)
		return ok(h.Amount(), "") // less than asked: the estimate's partial hold
	}
	done, err := s.reserveInMemory(ctx, r.AccountID, fn)
	if !done {
		err = s.updateBatched(ctx, r.AccountID, fn)
	}
	if err != nil {
		return meter.Reservation{}, err
	}
	return res, nil
}

// errWrite stops a read that found something to write.
var errWrite = errors.New("boltstore: the operation writes")

// reserveInMemory runs Reserve's fn in a read transaction: it answers
// (done) when fn wrote nothing to the file, changing only the holds in
// memory. When the account has something due that changes what it holds
// (an expired hold, a job's timer, a grant's end: see dueWrites) or fn
// would write (a new period), it leaves the call to a write transaction,
// with no change made.
func (s *Store) reserveInMemory(ctx context.Context, id string, fn func(o *op) error) (done bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, meter.Unavailable(err)
	}
	var ferr error
	keep := false
	g := s.gates()
	g.lock(id) // before the read transaction begins (memholds.go)
	defer func() { g.end(keep) }()
	err = s.db.View(func(tx *bolt.Tx) error {
		o, err := s.open(tx, id, g)
		if err != nil {
			return err
		}
		if due, err := o.dueWrites(); err != nil || due || o.a.LotsDue(o.now) {
			return errWrite // a read error too: the write path reports it
		}
		o.lazy = true
		ferr = fn(o)
		if o.dirty {
			return errWrite
		}
		return nil
	})
	switch {
	case errors.Is(err, errWrite):
		return false, nil
	case err != nil:
		return true, dbErr(err)
	case ferr != nil && meter.ErrorCode(ferr) == meter.ECodeInternal:
		return true, ferr
	}
	keep = true
	return true, ferr
}

// Commit charges min(c.Amount, reserved) from the reservation's parts,
// quota first, then balance, then overage, and releases the rest; it
// follows redisstore's commit.lua. A reservation that expired first is
// charged min(c.Amount, reserved) from what the pools have now and marked
// Late. The commit counts the request, its pages and its credits in the
// usage by route of the reservation's period (the stored one when late).
func (s *Store) Commit(ctx context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	var st meter.Settlement
	err := s.updateBatched(ctx, c.AccountID, func(o *op) error {
		a, rid := o.a, c.ReservationID
		r, err := o.loadRes(rid)
		if err != nil {
			return internalErr(err)
		}
		switch {
		case r == nil || r.Job: // a job's hold is settled by the job's calls only
			return meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
		case r.State == committed:
			st = meter.Settlement{Charged: meter.Credits(r.Charged), Balance: meter.Credits(r.Bal),
				Available: meter.Credits(r.Avail), EntryID: r.Entry, Late: r.Late}
			st.Quota, st.Overage = a.State()
			return nil
		case r.State == voided:
			return meter.Errorf(meter.ECodeReservationSettled, "reservation is already voided")
		case r.State == held && r.Exp <= o.now:
			if err := o.expire(rid, r); err != nil {
				return internalErr(err)
			}
		}
		short, err := o.charge(rid, r, c)
		if err != nil {
			return internalErr(err)
		}
		st = meter.Settlement{Charged: meter.Credits(r.Charged), Balance: meter.Credits(a.Balance),
			Available: meter.Credits(a.Balance - a.Reserved), EntryID: r.Entry, Late: r.Late, Shortfall: meter.Credits(short)}
		st.Quota, st.Overage = a.State()
		return nil
	})
	if err != nil {
		return meter.Settlement{}, err
	}
	return st, nil
}

// charge settles a held or expired reservation r as used (commit.lua
// from "local late"), with the model's Settle: an expired one was
// released by its expiry and is charged late from the pools.
func (o *op) charge(rid string, r *reservation, c meter.CommitRequest) (int64, error) {
	a := o.a
	late := r.State == expired
	bucket := r.Per
	if late {
		bucket = a.Period
		// The request was charged after all: let a retry with its key
		// replay it, unless a retry already holds the key.
		k := []byte("r:" + r.Idem)
		if _, p := o.memIdem(r.Idem); r.Idem != "" && p == nil && o.sub(bIdem).Get(k) == nil {
			if err := o.put(bIdem, k, []byte(rid)); err != nil {
				return 0, err
			}
		}
	}
	if k := []byte("r:" + r.Idem); r.mem && r.Idem != "" {
		// The key's mapping, in memory while held, is written with the
		// charge: a retry replays it.
		if err := o.put(bIdem, k, []byte(rid)); err != nil {
			return 0, err
		}
	}
	st := a.Settle(r.Hold, late, int64(c.Amount), c.Uncapped)
	o.dirty = true
	if err := o.emit(st.Events); err != nil {
		return 0, err
	}
	entryID := ""
	if st.Entry != nil {
		e := modelEntry(*st.Entry)
		e.Description, e.Route, e.RequestID, e.ReservationID, e.Pages = c.Description, c.Route, c.RequestID, rid, c.Pages
		id, err := o.appendEntry(e)
		if err != nil {
			return 0, err
		}
		entryID = id.String()
	}
	if err := o.count(bucket, c.Route, int64(c.Pages), st.Charged); err != nil {
		return 0, err
	}
	if k := []byte("r:" + r.Idem); len(c.Response) > 0 && r.Idem != "" && bytes.Equal(o.sub(bIdem).Get(k), []byte(rid)) {
		// With the charge, in its transaction; purged with the record.
		if err := o.put(bIdem, responseKey(rid), c.Response); err != nil {
			return 0, err
		}
	}
	// What the hold released of an ended grant leaves now, so that the
	// settlement's balance is the balance after it.
	if err := o.endLots(); err != nil {
		return 0, err
	}
	r.State, r.Charged, r.Entry, r.Late = committed, st.Charged, entryID, late
	r.Hold = st.Parts
	r.Bal, r.Avail = a.Balance, a.Balance-a.Reserved
	return st.Short, o.finish(rid, r)
}

// count adds a request to a route's usage in a period, and to the
// account's usage series (see countSeries).
func (o *op) count(period int64, route string, pages, credits int64) error {
	k := usageKey(period, route)
	var n counters
	if raw := o.sub(bUsage).Get(k); raw != nil {
		if err := decodeCounters(raw, &n); err != nil {
			return err
		}
	}
	n.Requests++
	n.Pages += pages
	n.Credits += credits
	if err := o.put(bUsage, k, n.encode()); err != nil {
		return err
	}
	return o.countSeries(route, pages, credits)
}

// Void releases a held reservation without charging. Voiding a voided or
// expired one succeeds and changes nothing; a committed one is
// ECodeReservationSettled.
func (s *Store) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	var st meter.Settlement
	err := s.updateBatched(ctx, accountID, func(o *op) error {
		r, err := o.loadRes(reservationID)
		if err != nil {
			return internalErr(err)
		}
		switch {
		case r == nil || r.Job:
			return meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
		case r.State == committed:
			return meter.Errorf(meter.ECodeReservationSettled, "reservation is already committed")
		case r.State == held && r.Exp <= o.now:
			err = o.expire(reservationID, r)
		case r.State == held:
			// A plain hold in memory is released in memory only: the file
			// never counted it, and keeps no record of it (settled.go). So
			// a failing upstream costs the store no write and no fsync.
			durable := !r.mem || r.Idem != ""
			r.State = voided
			if err = o.dropIdem(reservationID, r); err == nil {
				err = o.finish(reservationID, r)
			}
			o.a.Release(r.Hold)
			o.dirty = o.dirty || durable
		}
		if err == nil {
			err = o.endLots()
		}
		if err != nil {
			return internalErr(err)
		}
		st = meter.Settlement{Balance: meter.Credits(o.a.Balance), Available: meter.Credits(o.a.Balance - o.a.Reserved)}
		st.Quota, st.Overage = o.a.State()
		return nil
	})
	if err != nil {
		return meter.Settlement{}, err
	}
	return st, nil
}
