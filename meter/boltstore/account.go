package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// CreateAccount creates an account; initial credits are recorded as a
// purchase entry "initial credits". ECodeAccountExists if it exists.
func (s *Store) CreateAccount(ctx context.Context, id string, initial meter.Credits) (meter.Account, error) {
	if err := ctx.Err(); err != nil {
		return meter.Account{}, meter.Unavailable(err)
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return meter.Account{}, internalErr(err)
	}
	defer tx.Rollback()
	all := tx.Bucket(bAccounts)
	if all.Bucket([]byte(id)) != nil {
		return meter.Account{}, meter.Errorf(meter.ECodeAccountExists, "account %q already exists", id)
	}
	b, err := all.CreateBucket([]byte(id))
	if err != nil {
		return meter.Account{}, internalErr(err)
	}
	for _, name := range accountBuckets {
		if _, err := b.CreateBucket(name); err != nil {
			return meter.Account{}, internalErr(err)
		}
	}
	now := s.now().UnixMilli()
	o := &op{s: s, tx: tx, b: b, now: now,
		a: &account{Account: ledger.Account{Balance: int64(initial), TotalPurchased: int64(initial)},
			CreatedMS: now, UpdatedMS: now, LBThreshold: new(int64)}}
	if initial > 0 {
		if _, err := o.appendEntry(&entry{Type: meter.EntryPurchase, Amount: int64(initial),
			BalanceAfter: int64(initial), Description: "initial credits"}); err != nil {
			return meter.Account{}, internalErr(err)
		}
	}
	if err := o.saveAccount(); err != nil {
		return meter.Account{}, internalErr(err)
	}
	if err := s.commit(tx); err != nil {
		return meter.Account{}, err
	}
	return o.account(id)
}

// Account returns an account's balances. It reads without writing unless
// a timer of the account is due, in which case it first expires and
// purges what is due (as redisstore's account.lua).
func (s *Store) Account(ctx context.Context, id string) (meter.Account, error) {
	var a meter.Account
	sweep := false
	err := s.view(ctx, id, func(o *op) error {
		if sweep = o.due(); sweep {
			return nil
		}
		var err error
		a, err = o.account(id)
		return err
	})
	if err != nil || !sweep {
		return a, err
	}
	err = s.update(ctx, id, func(o *op) error {
		var err error
		a, err = o.account(id)
		return err
	})
	return a, err
}

// UpdateSettings replaces an account's settings; they are its limits in
// force too.
func (s *Store) UpdateSettings(ctx context.Context, id string, st meter.Settings) (meter.Account, error) {
	return s.ApplySettings(ctx, id, &st, st.Limits())
}

// ApplySettings sets the account's limits in force and, unless own is
// nil, its own settings. The quota and overage cap apply at once, to the
// current period too.
func (s *Store) ApplySettings(ctx context.Context, id string, own *meter.Settings, l meter.Limits) (meter.Account, error) {
	var raw []byte
	if own != nil {
		var err error
		if raw, err = json.Marshal(own); err != nil {
			return meter.Account{}, internalErr(err)
		}
	}
	var a meter.Account
	err := s.update(ctx, id, func(o *op) error {
		o.a.QuotaLimit, o.a.OverageCap = int64(l.MonthlyQuota), int64(l.OverageCap)
		o.a.QuotaUnit = l.QuotaUnit
		if own != nil {
			o.a.Settings = raw
			o.a.UpdatedMS = o.now
		}
		// A new threshold records no event; it re-arms when the balance
		// is at or above it (the next debit below it records one).
		t := int64(l.LowBalanceThreshold)
		o.a.LBThreshold = &t
		o.a.SetThreshold(t)
		o.dirty = true
		var err error
		a, err = o.account(id)
		return err
	})
	return a, err
}

// account is the meter.Account of o's record.
func (o *op) account(id string) (meter.Account, error) {
	r := o.a
	if r.LotsDue(o.now) {
		// A read transaction (the rollup's summaries) cannot write the
		// expiry: it shows the account as the expiry will leave it.
		cp := *r
		cp.Lots = slices.Clone(r.Lots)
		cp.EndLots(o.now)
		r = &cp
	}
	a := meter.Account{ID: id, Balance: meter.Credits(r.Balance), Reserved: meter.Credits(r.Reserved),
		Available: meter.Credits(r.Balance - r.Reserved), CreatedAt: msTime(r.CreatedMS),
		UpdatedAt: msTime(r.CreatedMS), TotalPurchased: meter.Credits(r.TotalPurchased), TotalUsed: meter.Credits(r.TotalUsed)}
	if r.UpdatedMS > 0 {
		a.UpdatedAt = msTime(r.UpdatedMS)
	}
	if len(r.Settings) > 0 {
		if err := json.Unmarshal(r.Settings, &a.Settings); err != nil {
			return meter.Account{}, internalErr(err)
		}
	}
	a.Quota, a.Overage = r.State()
	a.Grants = r.Grants(id)
	return a, nil
}

// Grant adds (or, negative, removes) credits with a ledger entry. A
// purchase must be positive; an adjustment may be negative but may not
// take more than the available balance. With an IdempotencyKey seen in
// the last Retain, the first entry is returned and nothing is recorded.
func (s *Store) Grant(ctx context.Context, g meter.Grant) (meter.LedgerEntry, error) {
	var out meter.LedgerEntry
	err := s.update(ctx, g.AccountID, func(o *op) error {
		a := o.a
		ik := []byte("g:" + g.IdempotencyKey)
		var prev []byte // due ms + entry id of the key's mapping
		if g.IdempotencyKey != "" {
			prev = o.sub(bIdem).Get(ik)
		}
		if len(prev) > 8 {
			// The entry may have been trimmed: then record anew.
			if id, ok := parseLedgerID(string(prev[8:])); ok {
				e, err := o.getEntry(id)
				if err != nil {
					return internalErr(err)
				}
				if e != nil {
					out = e.ledgerEntry(g.AccountID, id)
					return nil
				}
			}
		}
		me, evs, err := a.Grant(g.Type, int64(g.Amount))
		if err != nil {
			return err
		}
		e := modelEntry(me)
		e.Description = g.Description
		id, err := o.appendEntry(e)
		if err == nil {
			err = o.emit(evs)
		}
		if err != nil {
			return internalErr(err)
		}
		out = e.ledgerEntry(g.AccountID, id)
		if g.IdempotencyKey == "" {
			return nil
		}
		if len(prev) >= 8 {
			if err := o.del(bTimers, timerKey(int64(binary.BigEndian.Uint64(prev)), string(ik))); err != nil {
				return internalErr(err)
			}
		}
		due := o.now + s.retainMS
		if err := o.put(bIdem, ik, append(be64(due), id.String()...)); err != nil {
			return internalErr(err)
		}
		if err := o.put(bTimers, timerKey(due, string(ik)), nil); err != nil {
			return internalErr(err)
		}
		return nil
	})
	if err != nil {
		return meter.LedgerEntry{}, err
	}
	return out, nil
}

// ListAccounts returns account ids in id order, after the cursor ("" for
// the first page), at most limit of them (1 to 1000; otherwise 100).
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if err := ctx.Err(); err != nil {
		return nil, meter.Unavailable(err)
	}
	ids := []string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAccounts).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && bytes.Equal(k, []byte(after)) {
			k, _ = c.Next()
		}
		for ; k != nil && len(ids) < limit; k, _ = c.Next() {
			ids = append(ids, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, internalErr(dbErr(err))
	}
	return ids, nil
}
