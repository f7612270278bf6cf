package boltstore

import (
	"bytes"
	"context"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// rollPeriod applies a caller's period (Reserve, the job calls): a newer
// one starts afresh; an older one is read as the stored one.
func (o *op) rollPeriod(p meter.Period) {
	a := o.a
	if pid, pend := p.Millis(); pid > a.Period {
		// Holds of the old period keep their parts but no longer count
		// here; an older or absent one is read as the stored period.
		a.Period, a.PeriodEnd = pid, pend
		a.QUsed, a.QRes, a.OUsed, a.ORes = 0, 0, 0, 0
		o.dirty = true
	}
}

// Reserve holds r.Amount of the account's credits for r.TTL, from the
// quota, then the balance, then the overage (see money.go); it follows
// redisstore's reserve.lua. With an IdempotencyKey: while the reservation
// that holds the key is unsettled, ECodeIdempotencyConflict; once it is
// committed (for Retain), a replay that reserves nothing, with the
// response its commit stored; once it is voided or expired, a new
// reservation. While held or committed, the key with another Fingerprint
// is ECodeIdempotencyKeyReused.
func (s *Store) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	if err := r.Validate(); err != nil {
		return meter.Reservation{}, err
	}
	ttl := (r.TTL + time.Millisecond - 1).Milliseconds()
	amount := int64(r.Amount)
	var res meter.Reservation
	err := s.updateBatched(ctx, r.AccountID, func(o *op) error {
		a := o.a
		o.rollPeriod(r.Period)
		var response []byte // a replay's stored response
		ok := func(amt int64, replayed string) error {
			res = meter.Reservation{ID: r.ID, AccountID: r.AccountID, Amount: meter.Credits(amt),
				Balance: meter.Credits(a.Balance), Available: meter.Credits(a.Balance - a.Reserved)}
			if replayed != "" {
				res.ID, res.Replayed, res.Response = replayed, true, response
			}
			res.Quota, res.Overage = a.state()
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
					return meter.Errorf(meter.ECodeIdempotencyConflict, "a request with this Idempotency-Key is still in progress")
				case p != nil && p.State == committed:
					if stored := o.sub(bIdem).Get(responseKey(prid)); stored != nil {
						response = bytes.Clone(stored) // valid only in the transaction
					}
					return ok(p.Charged, prid)
				}
			}
		}
		q, b, ov := a.split(amount)
		if got := q + b + ov; got < amount {
			if min := int64(r.Minimum); min > 0 && got >= min {
				amount = got // all the pools give: the estimate's partial hold
			} else if min > 0 {
				return refuse(a, min)
			} else {
				return refuse(a, amount)
			}
		}
		a.Reserved, a.QRes, a.ORes = a.Reserved+b+ov, a.QRes+q, a.ORes+ov
		o.dirty = true
		hold := &reservation{State: held, Q: q, B: b, O: ov, Per: a.Period, Exp: o.now + ttl, Idem: r.IdempotencyKey}
		if r.IdempotencyKey != "" {
			hold.FP = r.Fingerprint
		}
		if err := o.setTimer(r.ID, hold, hold.Exp); err != nil {
			return internalErr(err)
		}
		if err := o.saveRes(r.ID, hold); err != nil {
			return internalErr(err)
		}
		if r.IdempotencyKey != "" {
			if err := o.put(bIdem, []byte("r:"+r.IdempotencyKey), []byte(r.ID)); err != nil {
				return internalErr(err)
			}
		}
		return ok(amount, "")
	})
	if err != nil {
		return meter.Reservation{}, err
	}
	return res, nil
}

// refuse is the refusal of a reservation the pools cannot cover: the
// overage's, the quota's or the balance's, in reserve.lua's order.
func refuse(a *account, amount int64) error {
	room := meter.Credits(a.Balance - a.Reserved)
	req := meter.Credits(amount)
	switch {
	case a.owes() > 0:
		return meter.CreditsOwed(req, room, meter.Credits(a.owes()))
	case a.Period > 0 && a.OverageCap > 0:
		e := meter.Errorf(meter.ECodeOverageLimitReached, "the overage of this period (%s credits) cannot cover %s credits",
			meter.Credits(a.OverageCap), req)
		e.Details = map[string]any{"required": req, "available": room, "cap": meter.Credits(a.OverageCap)}
		return e
	case a.Period > 0 && a.QuotaLimit > 0 && room <= 0:
		limit, used, resets := meter.Credits(a.QuotaLimit), meter.Credits(a.QUsed+a.QRes), msTime(a.PeriodEnd)
		e := meter.Errorf(meter.ECodeQuotaExceeded, "%s", meter.QuotaMessage(limit, a.QuotaUnit, resets))
		e.Details = map[string]any{"limit": limit, "used": used, "resets_at": resets}
		return e
	}
	return insufficient(req, room)
}

func insufficient(req, avail meter.Credits) error {
	e := meter.Errorf(meter.ECodeInsufficientCredits, "insufficient credits: %s required, %s available", req, avail)
	e.Details = map[string]any{"required": req, "available": avail}
	return e
}

// Commit charges min(c.Amount, reserved) from the reservation's parts,
// quota first, then balance, then overage, and releases the rest; it
// follows redisstore's commit.lua. A reservation that expired first is
// charged min(c.Amount, reserved) from what the pools have now and marked
// Late. The commit counts the request, its pages and its credits in the
// usage by route of the reservation's period (the stored one when late).
func (s *Store) Commit(ctx context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	if err := c.Validate(); err != nil {
		return meter.Settlement{}, err
	}
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
			st.Quota, st.Overage = a.state()
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
		st.Quota, st.Overage = a.state()
		return nil
	})
	if err != nil {
		return meter.Settlement{}, err
	}
	return st, nil
}

// charge settles a held or expired reservation r as used (commit.lua
// from "local late"). Uncapped, the excess over the hold is taken from the
// pools after the hold's parts are charged, and what they cannot give is
// the shortfall, charged to the balance all the same.
func (o *op) charge(rid string, r *reservation, c meter.CommitRequest) (int64, error) {
	a := o.a
	late := r.State == expired
	bucket := r.Per
	x := min(int64(c.Amount), r.amount())
	if c.Uncapped {
		x = int64(c.Amount)
	}
	var q, b, ov, excess int64
	current := true
	if late {
		bucket = a.Period
		excess = x
		// The request was charged after all: let a retry with its key
		// replay it, unless a retry already holds the key.
		if k := []byte("r:" + r.Idem); r.Idem != "" && o.sub(bIdem).Get(k) == nil {
			if err := o.put(bIdem, k, []byte(rid)); err != nil {
				return 0, err
			}
		}
	} else {
		held := min(x, r.amount())
		q = min(held, r.Q)
		b = min(held-q, r.B)
		ov = held - q - b
		excess = x - held
		current = r.Per == a.Period
		a.release(r)
	}
	if current {
		a.QUsed, a.OUsed = a.QUsed+q, a.OUsed+ov
	}
	a.Balance -= b + ov
	var short int64
	if excess > 0 {
		// From what the pools have now, counted in the current period.
		eq, eb, eo := a.split(excess)
		if c.Uncapped {
			short = excess - eq - eb - eo
		}
		a.QUsed, a.OUsed = a.QUsed+eq, a.OUsed+eo
		a.Balance -= eb + eo + short
		q, b, ov = q+eq, b+eb, ov+eo
		current = current || eq+eo > 0
	}
	charged := q + b + ov + short
	a.TotalUsed += charged
	o.dirty = true

	if current && q > 0 && a.QuotaLimit > 0 && a.QUsed >= a.QuotaLimit && a.QUsed-q < a.QuotaLimit {
		if err := o.emit(meter.EventQuotaExhausted, 0, a.QuotaLimit, a.QUsed, a.PeriodEnd); err != nil {
			return 0, err
		}
	}
	if b+ov+short > 0 {
		if err := o.lowBalance(); err != nil {
			return 0, err
		}
	}
	if current && ov > 0 && a.OverageCap > 0 && a.OUsed >= a.OverageCap && a.OUsed-ov < a.OverageCap {
		if err := o.emit(meter.EventOverageLimitReached, 0, a.OverageCap, a.OUsed, a.PeriodEnd); err != nil {
			return 0, err
		}
	}
	if short > 0 {
		if err := o.emit(meter.EventShortfall, 0, 0, short, 0); err != nil {
			return 0, err
		}
	}
	entryID := ""
	if charged > 0 {
		id, err := o.appendEntry(&entry{Type: meter.EntryUsage, Amount: -(b + ov + short), BalanceAfter: a.Balance,
			Description: c.Description, Route: c.Route, RequestID: c.RequestID, ReservationID: rid,
			Late: late, Quota: q, Overage: ov, Pages: c.Pages, Shortfall: short})
		if err != nil {
			return 0, err
		}
		entryID = id.String()
	}
	if err := o.count(bucket, c.Route, int64(c.Pages), charged); err != nil {
		return 0, err
	}
	if k := []byte("r:" + r.Idem); len(c.Response) > 0 && r.Idem != "" && bytes.Equal(o.sub(bIdem).Get(k), []byte(rid)) {
		// With the charge, in its transaction; purged with the record.
		if err := o.put(bIdem, responseKey(rid), c.Response); err != nil {
			return 0, err
		}
	}
	r.State, r.Charged, r.Entry, r.Late = committed, charged, entryID, late
	r.Q, r.B, r.O = q, b, ov
	r.Bal, r.Avail = a.Balance, a.Balance-a.Reserved
	return short, o.finish(rid, r)
}

// count adds a request to a route's usage in a period, and to the
// account's usage series (see countSeries).
func (o *op) count(period int64, route string, pages, credits int64) error {
	k := usageKey(period, route)
	var n counters
	if raw := o.sub(bUsage).Get(k); raw != nil {
		if err := decodeJSON(raw, &n); err != nil {
			return err
		}
	}
	n.Requests++
	n.Pages += pages
	n.Credits += credits
	raw, err := encode(&n)
	if err != nil {
		return err
	}
	if err := o.put(bUsage, k, raw); err != nil {
		return err
	}
	return o.countSeries(route, pages, credits)
}

// Void releases a held reservation without charging. Voiding a voided or
// expired one succeeds and changes nothing; a committed one is
// ECodeReservationSettled.
func (s *Store) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	if err := meter.ValidateAccountID(accountID); err != nil {
		return meter.Settlement{}, err
	}
	if reservationID == "" || len(reservationID) > meter.MaxRefLen {
		return meter.Settlement{}, meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
	}
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
			r.State = voided
			if err = o.dropIdem(reservationID, r); err == nil {
				err = o.finish(reservationID, r)
			}
			o.a.release(r)
			o.dirty = true
		}
		if err != nil {
			return internalErr(err)
		}
		st = meter.Settlement{Balance: meter.Credits(o.a.Balance), Available: meter.Credits(o.a.Balance - o.a.Reserved)}
		st.Quota, st.Overage = o.a.state()
		return nil
	})
	if err != nil {
		return meter.Settlement{}, err
	}
	return st, nil
}
