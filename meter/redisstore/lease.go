package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/creditgate/creditgate/meter"
)

var leaseSettleScript = newScript("lease_settle.lua")

// SettleLease charges each of reqs against the held reservation leaseID
// (a lease, see meter/lease) in one atomic call: each request as Commit
// would charge a reservation of its own holding what it was carved
// (c.Amount is capped by the caller, or Uncapped), with a ledger entry of
// its own whose reservation_id is c.ReservationID. The lease stays held
// with what is left. A request marked late (its hold expired in the
// caller) is charged as Commit charges an expired reservation, from what
// the pools have now; a group of late requests only needs no lease. The
// answers are in the order of reqs.
func (s *Store) SettleLease(ctx context.Context, accountID, leaseID string, reqs []meter.CommitRequest,
	late []bool) ([]meter.Settlement, error) {
	if err := meter.ValidateAccountID(accountID); err != nil {
		return nil, err
	}
	for _, c := range reqs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	period := int64(0)
	if v, ok := s.periods.Load(accountID); ok {
		period = v.(int64)
	}
	args := make([]any, 0, 3+8*len(reqs))
	n := nonce() // one for the call and its resends, see lease_settle.lua
	for attempt := 0; ; attempt++ {
		args = append(args[:0], leaseID, period, n)
		for i, c := range reqs {
			args = append(args, c.ReservationID, int64(c.Amount), c.Description, c.Route, c.RequestID, c.Pages,
				flag(c.Uncapped), flag(i < len(late) && late[i]))
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
		head, err := fields(rep.v[1:])
		if err != nil {
			return nil, internalErr(err)
		}
		list, _ := head["settled"].([]any)
		if len(list) != len(reqs) {
			return nil, internalErr(fmt.Errorf("redisstore: lease_settle answered %d of %d", len(list), len(reqs)))
		}
		out := make([]meter.Settlement, len(reqs))
		for i, v := range list {
			f, _ := v.([]any)
			m, err := fields(f)
			if err != nil {
				return nil, internalErr(err)
			}
			entry, _ := m["entry"].(string)
			out[i] = meter.Settlement{Charged: meter.Credits(num(m["charged"])), Balance: meter.Credits(num(m["balance"])),
				Available: meter.Credits(num(m["available"])), EntryID: entry, Late: num(m["late"]) == 1,
				Shortfall: meter.Credits(num(m["shortfall"]))}
		}
		if num(head["events"]) > 0 {
			s.indexEvents(ctx, accountID)
		}
		return out, nil
	}
}

// fields reads a script's reply of name/value pairs into a map, so that
// callers read values by name rather than by position.
func fields(v []any) (map[string]any, error) {
	if len(v)%2 != 0 {
		return nil, fmt.Errorf("redisstore: odd name/value reply %v", v)
	}
	m := make(map[string]any, len(v)/2)
	for i := 0; i < len(v); i += 2 {
		name, ok := v[i].(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: reply name %v is not a string", v[i])
		}
		m[name] = v[i+1]
	}
	return m, nil
}

// num is a reply value as an integer (0 when it is neither a number nor
// a decimal string).
func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
