package boltstore

import (
	"bytes"
	"context"
	"sort"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Ledger lists an account's entries, newest first: Limit, default 50, at
// most 1000. From, To and Before are bounds on entry ids, as redisstore's
// stream ranges: From includes "<from ms>-0", To and Before exclude.
func (s *Store) Ledger(ctx context.Context, q meter.LedgerQuery) ([]meter.LedgerEntry, error) {
	limit := q.PageLimit()
	var before ledgerID
	if q.Before != "" {
		var ok bool
		if before, ok = parseLedgerID(q.Before); !ok { // its shape was checked before the store
			return nil, meter.Errorf(meter.ECodeInvalid, "cursor %q is not a ledger entry id", q.Before)
		}
	}
	var upper []byte // exclusive; nil: none
	if !q.To.IsZero() {
		upper = timeBound(q.To).key()
	}
	if q.Before != "" && (upper == nil || bytes.Compare(before.key(), upper) < 0) {
		upper = before.key()
	}
	var lower []byte
	if !q.From.IsZero() {
		lower = timeBound(q.From).key()
	}
	out := make([]meter.LedgerEntry, 0, limit)
	skip := q.Offset
	err := s.view(ctx, q.AccountID, func(o *op) error {
		c := o.sub(bLedger).Cursor()
		var k, v []byte
		switch {
		case upper == nil:
			k, v = c.Last()
		default:
			if k, _ = c.Seek(upper); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if lower != nil && bytes.Compare(k, lower) < 0 {
				break
			}
			var e entry
			if err := decodeEntry(v, &e); err != nil {
				return internalErr(err)
			}
			if q.Type != "" && e.Type != q.Type {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, e.ledgerEntry(q.AccountID, ledgerIDOf(k)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LedgerTotal counts the entries of q's type and dates.
func (s *Store) LedgerTotal(ctx context.Context, q meter.LedgerQuery) (int, error) {
	q.Before, q.Offset = "", 0
	var lower, upper []byte
	if !q.From.IsZero() {
		lower = timeBound(q.From).key()
	}
	if !q.To.IsZero() {
		upper = timeBound(q.To).key()
	}
	n := 0
	err := s.view(ctx, q.AccountID, func(o *op) error {
		c := o.sub(bLedger).Cursor()
		k, v := c.First()
		if lower != nil {
			k, v = c.Seek(lower)
		}
		for ; k != nil && (upper == nil || bytes.Compare(k, upper) < 0); k, v = c.Next() {
			if q.Type != "" {
				var e entry
				if err := decodeEntry(v, &e); err != nil {
					return internalErr(err)
				}
				if e.Type != q.Type {
					continue
				}
			}
			n++
		}
		return nil
	})
	return n, err
}

// TrimLedger removes an account's ledger entries older than before (ids
// below "<before ms>-0"). Balances are kept in the account record, never
// recomputed from the ledger, so trimming changes no balance.
func (s *Store) TrimLedger(ctx context.Context, account string, before time.Time) (int64, error) {
	bound := timeBound(before).key()
	var n int64
	err := s.update(ctx, account, func(o *op) error {
		c := o.sub(bLedger).Cursor()
		var old [][]byte
		for k, _ := c.First(); k != nil && bytes.Compare(k, bound) < 0; k, _ = c.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := o.del(bLedger, k); err != nil {
				return internalErr(err)
			}
		}
		n = int64(len(old))
		return nil
	})
	return n, err
}

// Refund gives back (part of) what a usage entry took from the balance,
// its balance and overage parts (-entry.Amount); the quota part was free
// and is not given back. Amount 0 refunds all it took. An entry is
// refunded at most once: a second refund, even of the rest, is
// ECodeRefundNotAllowed, as is an amount over what it took.
func (s *Store) Refund(ctx context.Context, r meter.Refund) (meter.LedgerEntry, error) {
	eid, ok := parseLedgerID(r.EntryID)
	if !ok {
		return meter.LedgerEntry{}, meter.Errorf(meter.ECodeNotFound, "no ledger entry %q", r.EntryID)
	}
	var out meter.LedgerEntry
	err := s.update(ctx, r.AccountID, func(o *op) error {
		a := o.a
		if o.sub(bRefunds).Get([]byte(r.EntryID)) != nil {
			return meter.Errorf(meter.ECodeRefundNotAllowed, "entry %s is already refunded", r.EntryID)
		}
		u, err := o.getEntry(eid)
		if err != nil {
			return internalErr(err)
		}
		if u == nil {
			return meter.Errorf(meter.ECodeNotFound, "no ledger entry %s", r.EntryID)
		}
		if u.Type != meter.EntryUsage {
			return meter.Errorf(meter.ECodeNotFound, "ledger entry %s is not a usage entry", r.EntryID)
		}
		me, evs, err := a.Refund(r.EntryID, -u.Amount-u.granted(), u.G, int64(r.Amount))
		if err != nil {
			return err
		}
		e := modelEntry(me)
		e.Description, e.RefundOf = r.Description, r.EntryID
		id, err := o.appendEntry(e)
		if err == nil {
			err = o.put(bRefunds, []byte(r.EntryID), []byte(id.String()))
		}
		if err == nil {
			err = o.emit(evs)
		}
		if err != nil {
			return internalErr(err)
		}
		out = e.ledgerEntry(r.AccountID, id)
		return nil
	})
	if err != nil {
		return meter.LedgerEntry{}, err
	}
	return out, nil
}

// Usage returns an account's usage by route in a period, most credits
// first (then by route). Unlike redisstore's, whose counters expire about
// two months after their period, counters are kept: they are a few bytes
// per route and period.
func (s *Store) Usage(ctx context.Context, account string, period meter.Period) ([]meter.RouteUsage, error) {
	pid, _ := period.Millis()
	prefix := be64(pid)
	out := []meter.RouteUsage{}
	err := s.view(ctx, account, func(o *op) error {
		c := o.sub(bUsage).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var n counters
			if err := decodeCounters(v, &n); err != nil {
				return internalErr(err)
			}
			out = append(out, meter.RouteUsage{Route: string(k[8:]), Requests: n.Requests, Pages: n.Pages,
				Credits: meter.Credits(n.Credits)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Credits != out[j].Credits {
			return out[i].Credits > out[j].Credits
		}
		return out[i].Route < out[j].Route
	})
	return out, nil
}
