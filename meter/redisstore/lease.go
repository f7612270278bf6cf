package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

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
	args := make([]any, 0, 3+7*len(reqs))
	n := nonce() // one for the call and its resends, see lease_settle.lua
	for attempt := 0; ; attempt++ {
		args = append(args[:0], leaseID, period, n)
		for i, c := range reqs {
			args = append(args, c.ReservationID, int64(c.Amount), c.Description, c.Route, c.RequestID, c.Pages,
				leaseOpt(c.Uncapped, i < len(late) && late[i], c.Amount, carved[i]))
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
		packed := rep.strOf("settled")
		if err := rep.check(); err != nil {
			return nil, err
		}
		out, err := settledRows(packed, len(reqs))
		if err != nil {
			return nil, internalErr(err)
		}
		for i := range out {
			out[i].Quota, out[i].Overage = q, o
		}
		if rep.intOf("events") > 0 {
			s.indexEvents(ctx, accountID)
		}
		return out, nil
	}
}

// settledRows reads the requests' values of lease_settle.lua's reply, n
// of them packed in one string (see its header): per request charged,
// balance, available and shortfall as little-endian doubles (integers
// below 2^53), late as a byte, the entry id zero-terminated.
func settledRows(packed string, n int) ([]meter.Settlement, error) {
	out := make([]meter.Settlement, n)
	b := packed
	num := func(k int) meter.Credits {
		return meter.Credits(math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[8*k : 8*k+8]))))
	}
	for i := range out {
		if len(b) < 33 {
			return nil, fmt.Errorf("redisstore: lease_settle answered %d requests' values, want %d", i, n)
		}
		id, rest, ok := strings.Cut(b[33:], "\x00")
		if !ok {
			return nil, fmt.Errorf("redisstore: lease_settle answered request %d's entry id unterminated", i)
		}
		out[i] = meter.Settlement{Charged: num(0), Balance: num(1), Available: num(2), Shortfall: num(3),
			Late: b[32] == 1, EntryID: id}
		b = rest
	}
	if b != "" {
		return nil, fmt.Errorf("redisstore: lease_settle answered more than %d requests' values", n)
	}
	return out, nil
}

// leaseOpt is a request's last value in lease_settle.lua's arguments:
// empty for the common request (capped, not late, carved its amount),
// else the digit uncapped + 2 * late, then the carve.
func leaseOpt(uncapped, late bool, amount, carve meter.Credits) string {
	if !uncapped && !late && carve == amount {
		return ""
	}
	f := byte('0')
	if uncapped {
		f++
	}
	if late {
		f += 2
	}
	return string(f) + strconv.FormatInt(int64(carve), 10)
}
