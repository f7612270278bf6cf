package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Reserve holds r.Amount of the account's available credits for r.TTL
// (at least 1ms; a TTL of 0 is refused rather than defaulted). With an
// IdempotencyKey: while the reservation that holds the key is unsettled,
// ECodeIdempotencyConflict; once it is committed (for Retain), a replay
// that reserves nothing, with the response its commit stored; once it is
// voided or expired, a new reservation. While held or committed, the key
// with another Fingerprint is ECodeIdempotencyKeyReused.
func (s *Store) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	pid, pend := r.Period.Millis()
	ttl := (r.TTL + time.Millisecond - 1).Milliseconds()
	rep, err := s.run(ctx, reserveScript, r.AccountID, r.ID, int64(r.Amount), ttl, r.IdempotencyKey, nonce(), pid, pend,
		r.Fingerprint, int64(r.Minimum))
	if err != nil {
		return meter.Reservation{}, err
	}
	res := meter.Reservation{ID: r.ID, AccountID: r.AccountID, Amount: meter.Credits(rep.intOf("amount")),
		Balance: meter.Credits(rep.intOf("balance")), Available: meter.Credits(rep.intOf("available"))}
	if rid := rep.strOf("replayed_rid"); rid != "" { // a replay names the reservation it replays
		res.ID, res.Replayed = rid, true
	}
	s.periods.Store(r.AccountID, rep.intOf("period_id"))
	res.Quota, res.Overage = rep.periodState()
	if err := rep.check(); err != nil || !res.Replayed {
		return res, err
	}
	// The response was stored by the commit that settled res.ID and
	// expires with its record: one more read, on replays only.
	b, err := s.c.Get(ctx, s.responseKey(r.AccountID, res.ID)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return meter.Reservation{}, storeErr(err)
	}
	res.Response = b
	return res, nil
}

// Commit charges min(c.Amount, reserved) from the reservation's parts,
// quota first, then balance, then overage, and releases the rest; see
// meter.Store and commit.lua. Settlement.Charged is the total from every
// pool. A reservation that expired first is charged min(c.Amount,
// reserved) from what the pools have now, in the same order, and marked
// Late: lateness never makes a request cost more than it would have on
// time. The commit also counts the request, its pages and its credits in
// the usage by route of the reservation's period.
func (s *Store) Commit(ctx context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	// The usage hash is a key of the script, so it is named here, for the
	// period the script will count the charge in: the one last seen for
	// the account. When that is wrong (another gateway rolled the period,
	// or this process is new) the script says which one, having changed
	// nothing, and the call is made again: at most once more per account
	// and period.
	period := int64(0)
	if v, ok := s.periods.Load(c.AccountID); ok {
		period = v.(int64)
	}
	for attempt := 0; ; attempt++ {
		keys := append(s.accountKeys(c.AccountID), s.usageKey(c.AccountID, period),
			s.responseKey(c.AccountID, c.ReservationID), s.seriesKey(c.AccountID))
		rep, err := s.runKeys(ctx, commitScript, c.AccountID, keys, c.ReservationID, int64(c.Amount),
			c.Description, c.Route, c.RequestID, c.Pages, period, c.Response, flag(c.Uncapped))
		var wp *wrongPeriod
		if errors.As(err, &wp) && attempt < 2 {
			period = wp.id
			continue
		}
		if err != nil {
			return meter.Settlement{}, err
		}
		st := meter.Settlement{Charged: meter.Credits(rep.intOf("charged")), Balance: meter.Credits(rep.intOf("balance")),
			Available: meter.Credits(rep.intOf("available")), EntryID: rep.strOf("entry_id"), Late: rep.intOf("late") == 1}
		st.Quota, st.Overage = rep.periodState()
		st.Shortfall = meter.Credits(rep.intOf("shortfall"))
		if rep.intOf("events") > 0 {
			s.indexEvents(ctx, c.AccountID)
		}
		return st, rep.check()
	}
}

// Void releases a held reservation without charging. Voiding a voided or
// expired one succeeds and changes nothing; a committed one is
// ECodeReservationSettled.
func (s *Store) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	rep, err := s.run(ctx, voidScript, accountID, reservationID)
	if err != nil {
		return meter.Settlement{}, err
	}
	st := meter.Settlement{Balance: meter.Credits(rep.intOf("balance")), Available: meter.Credits(rep.intOf("available"))}
	st.Quota, st.Overage = rep.periodState()
	return st, rep.check()
}

var _ meter.Store = (*Store)(nil)

// flag is a script's boolean argument.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
