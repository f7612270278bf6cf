package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// Webhook events live in each account's outbox bucket, written in the
// transaction that moves the balance, as is the account's entry in the
// top-level outbox index: unlike redisstore's, the index cannot be lost.

// ClaimEvents leases up to limit due events to owner, in one write
// transaction: events whose Due has passed get Due = now + lease. An
// indexed account with no events left is dropped from the index.
func (s *Store) ClaimEvents(ctx context.Context, owner string, lease time.Duration, limit int) ([]meter.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, meter.Unavailable(err)
	}
	var out []meter.Event
	if !s.anyEvents() {
		return nil, nil // no write transaction (and fsync) for nothing
	}
	err := s.writeTx(func(tx *bolt.Tx, now int64) error {
		out = nil
		idx := tx.Bucket(bOutboxIndex)
		var empty [][]byte
		err := idx.ForEach(func(acct, _ []byte) error {
			b := outboxOf(tx, acct)
			if k, _ := firstKey(b); k == nil {
				empty = append(empty, acct)
				return nil
			}
			if len(out) >= limit {
				return nil
			}
			type claim struct{ k, v []byte }
			var claims []claim
			err := b.ForEach(func(k, v []byte) error {
				if len(out) >= limit {
					return nil
				}
				var e event
				if err := decodeJSON(v, &e); err != nil {
					return err
				}
				if e.Due > now {
					return nil
				}
				e.Owner, e.Due = owner, now+lease.Milliseconds()
				raw, err := encode(&e)
				if err != nil {
					return err
				}
				claims = append(claims, claim{append([]byte(nil), k...), raw})
				out = append(out, e.event(string(acct), string(k)))
				return nil
			})
			if err != nil {
				return err
			}
			for _, c := range claims {
				if err := b.Put(c.k, c.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, acct := range empty {
			if err := idx.Delete(acct); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// anyEvents reports whether the outbox index lists any account.
func (s *Store) anyEvents() bool {
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		k, _ := firstKey(tx.Bucket(bOutboxIndex))
		found = k != nil
		return nil
	})
	return found
}

func firstKey(b *bolt.Bucket) ([]byte, []byte) {
	if b == nil {
		return nil, nil
	}
	return b.Cursor().First()
}

// outboxOf is an account's outbox bucket, nil if it has none.
func outboxOf(tx *bolt.Tx, acct []byte) *bolt.Bucket {
	a := tx.Bucket(bAccounts).Bucket(acct)
	if a == nil {
		return nil
	}
	return a.Bucket(bOutbox)
}

// AckEvent removes a delivered event; an account left without events is
// dropped from the index. Removing one that is gone is a no-op.
func (s *Store) AckEvent(ctx context.Context, account, id string) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	return s.writeTx(func(tx *bolt.Tx, _ int64) error {
		b := outboxOf(tx, []byte(account))
		if b == nil {
			return nil
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if k, _ := b.Cursor().First(); k == nil {
			return tx.Bucket(bOutboxIndex).Delete([]byte(account))
		}
		return nil
	})
}

// RetryEvent makes a claimed event claimable again after delay, on the
// store's clock, and counts the attempt.
func (s *Store) RetryEvent(ctx context.Context, account, id string, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	return s.writeTx(func(tx *bolt.Tx, now int64) error {
		b := outboxOf(tx, []byte(account))
		var raw []byte
		if b != nil {
			raw = b.Get([]byte(id))
		}
		if raw == nil {
			return meter.Errorf(meter.ECodeNotFound, "no event %q", id)
		}
		var e event
		if err := decodeJSON(raw, &e); err != nil {
			return err
		}
		e.Owner, e.Due, e.Attempts = "", now+max(0, delay.Milliseconds()), e.Attempts+1
		raw, err := encode(&e)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), raw)
	})
}

// ReindexEvents lists every account with events in the index; the index
// is written with the events, so this finds nothing amiss unless the file
// was edited by hand.
func (s *Store) ReindexEvents(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, meter.Unavailable(err)
	}
	n := 0
	err := s.writeTx(func(tx *bolt.Tx, _ int64) error {
		n = 0
		idx := tx.Bucket(bOutboxIndex)
		return tx.Bucket(bAccounts).ForEachBucket(func(acct []byte) error {
			b := outboxOf(tx, acct)
			if b == nil {
				return nil
			}
			if k, _ := b.Cursor().First(); k == nil {
				return nil
			}
			n++
			if idx.Get(acct) != nil {
				return nil
			}
			return idx.Put(acct, nil)
		})
	})
	return n, err
}

// writeTx runs fn in a write transaction with the store's time, and
// commits it unless fn fails; a domain error from fn passes through, any
// other is internal.
func (s *Store) writeTx(fn func(tx *bolt.Tx, now int64) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return meter.Unavailable(err)
	}
	defer tx.Rollback()
	if err := fn(tx, s.now().UnixMilli()); err != nil {
		return internalErr(err)
	}
	return s.commit(tx)
}
