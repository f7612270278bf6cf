package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// AddKey stores a key record under its hash and adds it to the account's
// keys. The record's CreatedAt is the store's time; k's is ignored.
// Adding the same key to the same account again is a no-op; a hash that
// belongs to another account is refused.
func (s *Store) AddKey(ctx context.Context, k meter.Key) error {
	return s.update(ctx, k.AccountID, func(o *op) error {
		keys := o.tx.Bucket(bKeys)
		if raw := keys.Get([]byte(k.Hash)); raw != nil {
			var cur keyRecord
			if err := decodeJSON(raw, &cur); err != nil {
				return internalErr(err)
			}
			if cur.Account != k.AccountID {
				return invalid("key belongs to another account")
			}
			return nil
		}
		raw, err := encode(&keyRecord{Account: k.AccountID, Mode: string(k.Mode), Prefix: k.Prefix,
			Last4: k.Last4, CreatedMS: o.now})
		if err == nil {
			err = keys.Put([]byte(k.Hash), raw)
		}
		if err == nil {
			err = o.put(bAcctKeys, []byte(k.Hash), nil)
		}
		if err != nil {
			return internalErr(err)
		}
		return nil
	})
}

// LookupKey returns the key record of a hash; ECodeInvalidAPIKey if there
// is none or it is revoked.
func (s *Store) LookupKey(ctx context.Context, hash string) (meter.Key, error) {
	unknown := meter.Errorf(meter.ECodeInvalidAPIKey, "invalid API key")
	if err := ctx.Err(); err != nil {
		return meter.Key{}, meter.Unavailable(err)
	}
	var rec *keyRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bKeys).Get([]byte(hash))
		if raw == nil {
			return nil
		}
		rec = new(keyRecord)
		return decodeJSON(raw, rec)
	})
	if err != nil {
		return meter.Key{}, internalErr(dbErr(err))
	}
	if rec == nil || rec.Account == "" || rec.RevokedMS != 0 {
		return meter.Key{}, unknown
	}
	return rec.key(hash), nil
}

// ListKeys returns an account's keys, revoked ones included, oldest first.
func (s *Store) ListKeys(ctx context.Context, account string) ([]meter.Key, error) {
	var keys []meter.Key
	err := s.view(ctx, account, func(o *op) error {
		var err error
		keys, err = o.keys(account)
		return err
	})
	return keys, err
}

func (o *op) keys(account string) ([]meter.Key, error) {
	all := o.tx.Bucket(bKeys)
	keys := []meter.Key{}
	err := o.sub(bAcctKeys).ForEach(func(h, _ []byte) error {
		var rec keyRecord
		if raw := all.Get(h); raw != nil {
			if err := decodeJSON(raw, &rec); err != nil {
				return err
			}
		}
		if rec.Account == account {
			keys = append(keys, rec.key(string(h)))
		}
		return nil
	})
	if err != nil {
		return nil, internalErr(err)
	}
	meter.SortKeys(keys)
	return keys, nil
}

// RevokeKey marks a key revoked: LookupKey no longer finds it. The record
// stays, for the account's key listing. Revoking twice keeps the first
// time.
func (s *Store) RevokeKey(ctx context.Context, account, keyID string) (meter.Key, error) {
	var out meter.Key
	err := s.update(ctx, account, func(o *op) error {
		keys, err := o.keys(account)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.ID != keyID {
				continue
			}
			if k.RevokedAt.IsZero() {
				rec := keyRecord{Account: k.AccountID, Mode: string(k.Mode), Prefix: k.Prefix, Last4: k.Last4,
					CreatedMS: k.CreatedAt.UnixMilli(), RevokedMS: o.now}
				raw, err := encode(&rec)
				if err == nil {
					err = o.tx.Bucket(bKeys).Put([]byte(k.Hash), raw)
				}
				if err != nil {
					return internalErr(err)
				}
				o.dirty = true
				k.RevokedAt = msTime(o.now)
			}
			out = k
			return nil
		}
		return meter.Errorf(meter.ECodeNotFound, "account %q has no key %q", account, keyID)
	})
	if err != nil {
		return meter.Key{}, err
	}
	return out, nil
}
