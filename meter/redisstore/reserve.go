package redisstore

import (
	"context"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Reserve holds r.Amount of the account's available credits for r.TTL
// (at least 1ms; a TTL of 0 is refused rather than defaulted). With an
// IdempotencyKey: while the reservation that holds the key is unsettled,
// ECodeIdempotencyConflict; once it is committed (for Retain), a replay
// that reserves nothing; once it is voided or expired, a new reservation.
func (s *Store) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	if err := meter.ValidateAccountID(r.AccountID); err != nil {
		return meter.Reservation{}, err
	}
	if err := checkAmount("reservation amount", r.Amount); err != nil {
		return meter.Reservation{}, err
	}
	if r.ID == "" || len(r.ID) > maxRefLen {
		return meter.Reservation{}, invalid("reservation id must be 1 to %d bytes", maxRefLen)
	}
	if r.TTL <= 0 {
		return meter.Reservation{}, invalid("reservation TTL must be positive")
	}
	if err := checkLen("idempotency key", r.IdempotencyKey, maxIdemLen); err != nil {
		return meter.Reservation{}, err
	}
	ttl := (r.TTL + time.Millisecond - 1).Milliseconds()
	rep, err := s.run(ctx, reserveScript, r.AccountID, r.ID, int64(r.Amount), ttl, r.IdempotencyKey, nonce())
	if err != nil {
		return meter.Reservation{}, err
	}
	res := meter.Reservation{ID: r.ID, AccountID: r.AccountID, Amount: meter.Credits(rep.int(1)),
		Balance: meter.Credits(rep.int(2)), Available: meter.Credits(rep.int(3))}
	if len(rep.v) > 4 { // a replay names the reservation it replays
		res.ID, res.Replayed = rep.str(4), true
	}
	return res, rep.check()
}

// Commit debits min(c.Amount, reserved) and releases the rest; see
// meter.Store. A reservation that expired first is charged
// min(c.Amount, reserved, available) and marked Late: lateness never
// makes a request cost more than it would have on time.
func (s *Store) Commit(ctx context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	if err := meter.ValidateAccountID(c.AccountID); err != nil {
		return meter.Settlement{}, err
	}
	if err := checkAmount("commit amount", c.Amount); err != nil {
		return meter.Settlement{}, err
	}
	if c.ReservationID == "" || len(c.ReservationID) > maxRefLen {
		return meter.Settlement{}, meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
	}
	for _, f := range [...]struct{ what, v string }{
		{"description", c.Description}, {"route", c.Route}, {"request id", c.RequestID},
	} {
		if err := checkLen(f.what, f.v, maxTextLen); err != nil {
			return meter.Settlement{}, err
		}
	}
	rep, err := s.run(ctx, commitScript, c.AccountID, c.ReservationID, int64(c.Amount),
		c.Description, c.Route, c.RequestID)
	if err != nil {
		return meter.Settlement{}, err
	}
	st := meter.Settlement{Charged: meter.Credits(rep.int(1)), Balance: meter.Credits(rep.int(2)),
		Available: meter.Credits(rep.int(3)), EntryID: rep.str(4), Late: rep.int(5) == 1}
	return st, rep.check()
}

// Void releases a held reservation without charging. Voiding a voided or
// expired one succeeds and changes nothing; a committed one is
// ECodeReservationSettled.
func (s *Store) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	if err := meter.ValidateAccountID(accountID); err != nil {
		return meter.Settlement{}, err
	}
	if reservationID == "" || len(reservationID) > maxRefLen {
		return meter.Settlement{}, meter.Errorf(meter.ECodeReservationNotFound, "reservation not found")
	}
	rep, err := s.run(ctx, voidScript, accountID, reservationID)
	if err != nil {
		return meter.Settlement{}, err
	}
	st := meter.Settlement{Balance: meter.Credits(rep.int(1)), Available: meter.Credits(rep.int(2))}
	return st, rep.check()
}

var _ meter.Store = (*Store)(nil)
