package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditgate/creditgate/meter"
)

var leaseSettleScript = newScript("lease_settle.lua")

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
		head, err := fields(rep.v, 1)
		if err != nil {
			return nil, internalErr(err)
		}
		q, o := head.periodState()
		var list []any
		if i := head.at("settled"); i >= 0 {
			list, _ = head.v[i].([]any)
		}
		if err := head.check(); err != nil {
			return nil, err
		}
		if len(list) != len(reqs) {
			return nil, internalErr(fmt.Errorf("redisstore: lease_settle answered %d of %d", len(list), len(reqs)))
		}
		out := make([]meter.Settlement, len(reqs))
		for i, v := range list {
			f, _ := v.([]any)
			m, err := fields(f, 0)
			if err != nil {
				return nil, internalErr(err)
			}
			out[i] = meter.Settlement{Charged: meter.Credits(m.intOf("charged")), Balance: meter.Credits(m.intOf("balance")),
				Available: meter.Credits(m.intOf("available")), EntryID: m.strOf("entry"), Late: m.intOf("late") == 1,
				Shortfall: meter.Credits(m.intOf("shortfall")), Quota: q, Overage: o}
			if err := m.check(); err != nil {
				return nil, err
			}
		}
		if head.intOf("events") > 0 {
			s.indexEvents(ctx, accountID)
		}
		return out, nil
	}
}

// fields reads a script's reply of name/value pairs from v[from:] (v[0]
// its code, when from is 1) as a reply read by name, as the replies of
// fixed layout are (see replyLayouts): each name's value is the element
// after it.
func fields(v []any, from int) (*reply, error) {
	if from > len(v) || (len(v)-from)%2 != 0 {
		return nil, fmt.Errorf("redisstore: odd name/value reply %v", v)
	}
	r := &reply{v: v, names: make(map[string]int, (len(v)-from)/2)}
	for i := from; i < len(v); i += 2 {
		name, ok := v[i].(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: reply name %v is not a string", v[i])
		}
		r.names[name] = i + 1
	}
	return r, nil
}
