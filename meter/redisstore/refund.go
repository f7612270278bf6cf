package redisstore

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// Refund gives back (part of) what a usage entry took from the balance,
// its balance and overage parts (-entry.Amount); the quota part was free
// and is not given back. Amount 0 refunds all it took. An entry is
// refunded at most once: a second refund, even of the rest, is
// ECodeRefundNotAllowed, as is an amount over what it took. A refund
// restores the balance and lowers TotalUsed; it does not give back quota
// or the period's overage, nor change the usage by route.
func (s *Store) Refund(ctx context.Context, r meter.Refund) (meter.LedgerEntry, error) {
	rep, err := s.run(ctx, refundScript, r.AccountID, r.EntryID, int64(r.Amount), r.Description, nonce())
	if err != nil {
		return meter.LedgerEntry{}, err
	}
	e := meter.LedgerEntry{ID: rep.strOf("entry_id"), AccountID: r.AccountID, Type: meter.EntryRefund,
		Amount: meter.Credits(rep.intOf("amount")), BalanceAfter: meter.Credits(rep.intOf("balance_after")),
		Description: rep.strOf("description"), RefundOf: r.EntryID}
	e.Granted, e.GrantIDs = lotParts(rep.strOf("grant_parts"))
	e.CreatedAt = entryTime(e.ID)
	return e, rep.check()
}

// Usage returns an account's usage by route in a period, most credits
// first (then by route). Counters are kept about two months past the end
// of their period.
func (s *Store) Usage(ctx context.Context, account string, period meter.Period) ([]meter.RouteUsage, error) {
	pid, _ := period.Millis()
	if err := s.mustExist(ctx, account); err != nil {
		return nil, err
	}
	m, err := s.c.HGetAll(ctx, s.usageKey(account, pid)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	byRoute := map[string]*meter.RouteUsage{}
	for f, v := range m {
		route, what, ok := strings.Cut(f, "\x00")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		u := byRoute[route]
		if u == nil {
			u = &meter.RouteUsage{Route: route}
			byRoute[route] = u
		}
		switch what {
		case "requests":
			u.Requests = n
		case "pages":
			u.Pages = n
		case "credits":
			u.Credits = meter.Credits(n)
		}
	}
	out := make([]meter.RouteUsage, 0, len(byRoute))
	for _, u := range byRoute {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Credits != out[j].Credits {
			return out[i].Credits > out[j].Credits
		}
		return out[i].Route < out[j].Route
	})
	return out, nil
}
