package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditgate/creditgate/meter"
)

var leaseSettleScript = newScript("lease_settle.lua")

// settledValues is how many values lease_settle.lua's reply has for each
// request: charged, entry id, balance, available, shortfall, late.
const settledValues = 6

// SettleLease charges each of reqs against the held reservation leaseID
// (a lease, see meter/lease) in one atomic call: each request as Commit
// would charge a reservation of its own holding carved[i], what it was
// carved: at most that from what is left of the lease (c.Amount capped
// there unless Uncapped), and an uncapped charge beyond it from what the
// pools have now, as Commit charges an uncapped excess beyond its hold,
// never from the other requests' shares of the lease; with a ledger
// entry of its own whose reservation_id is c.ReservationID. The lease
// stays held with what is left. A request marked late (its hold expired
// in the caller) is charged as Commit charges an expired reservation,
// from what the pools have now; a group of late requests only needs no
// lease. The answers are in the order of reqs; each carries its balance
// and available after its charge, and the period's state (Quota,
// Overage) after the whole group.
func (s *Store) SettleLease(ctx context.Context, accountID, leaseID string, reqs []meter.CommitRequest,
	carved []meter.Credits, late []bool) ([]meter.Settlement, error) {
	if err := meter.ValidateAccountID(accountID); err != nil {
		return nil, err
	}
	if len(carved) != len(reqs) {
		return nil, meter.Errorf(meter.ECodeInvalid, "%d carves for %d requests", len(carved), len(reqs))
	}
	for i, c := range reqs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if err := meter.CheckAmount("carve", carved[i]); err != nil {
			return nil, err
		}
	}
	period := int64(0)
	if v, ok := s.periods.Load(accountID); ok {
		period = v.(int64)
	}
	args := make([]any, 0, 3+9*len(reqs))
	n := nonce() // one for the call and its resends, see lease_settle.lua
	for attempt := 0; ; attempt++ {
		args = append(args[:0], leaseID, period, n)
		for i, c := range reqs {
			args = append(args, c.ReservationID, int64(c.Amount), c.Description, c.Route, c.RequestID, c.Pages,
				flag(c.Uncapped), flag(i < len(late) && late[i]), int64(carved[i]))
		}
		keys := append(s.accountKeys(accountID), s.usageKey(accountID, period), s.seriesKey(accountID))
		rep, err := s.runKeys(ctx, leaseSettleScript, accountID, keys, args...)
		var wp *wrongPeriod
		if errors.As(err, &wp) && attempt < 2 {
			period = wp.id
			continue
		}
		if err != nil {
			return nil, err
		}
		q, o := rep.periodState()
		var list []any // the requests' values, after the period's state
		if i := rep.at("overage_remaining"); i >= 0 {
			list = rep.v[i+1:]
		}
		if err := rep.check(); err != nil {
			return nil, err
		}
		if len(list) != settledValues*len(reqs) {
			return nil, internalErr(fmt.Errorf("redisstore: lease_settle answered %d values for %d requests",
				len(list), len(reqs)))
		}
		// Each request's values by position (see lease_settle.lua's header).
		rows := &reply{v: list}
		out := make([]meter.Settlement, len(reqs))
		for i := range out {
			k := settledValues * i
			out[i] = meter.Settlement{Charged: meter.Credits(rows.int(k)), EntryID: rows.str(k + 1),
				Balance: meter.Credits(rows.int(k + 2)), Available: meter.Credits(rows.int(k + 3)),
				Shortfall: meter.Credits(rows.int(k + 4)), Late: rows.int(k+5) == 1, Quota: q, Overage: o}
		}
		if err := rows.check(); err != nil {
			return nil, err
		}
		if rep.intOf("events") > 0 {
			s.indexEvents(ctx, accountID)
		}
		return out, nil
	}
}
