package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// ListKeys returns an account's keys, revoked ones included, oldest first.
func (s *Store) ListKeys(ctx context.Context, account string) ([]meter.Key, error) {
	if err := s.mustExist(ctx, account); err != nil {
		return nil, err
	}
	hashes, err := s.c.SMembers(ctx, s.keySetKey(account)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	// Key records live in their own slots: one command each, pipelined
	// (go-redis splits a pipeline by node on a cluster).
	cmds := make([]*redis.MapStringStringCmd, len(hashes))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HGetAll(ctx, s.keyRecordKey(h))
		}
		return nil
	})
	if err != nil {
		return nil, storeErr(err)
	}
	keys := make([]meter.Key, 0, len(hashes))
	for i, h := range hashes {
		if m := cmds[i].Val(); m["account"] == account {
			keys = append(keys, keyFrom(h, m))
		}
	}
	meter.SortKeys(keys)
	return keys, nil
}

// RevokeKey marks a key revoked: LookupKey no longer finds it. The record
// stays, for the account's key listing. Revoking twice is a no-op.
func (s *Store) RevokeKey(ctx context.Context, account, keyID string) (meter.Key, error) {
	keys, err := s.ListKeys(ctx, account)
	if err != nil {
		return meter.Key{}, err
	}
	for _, k := range keys {
		if k.ID != keyID {
			continue
		}
		if k.RevokedAt.IsZero() {
			ms, err := s.serverMillis(ctx)
			if err != nil {
				return meter.Key{}, err
			}
			// HSETNX: a concurrent revoke keeps the first time.
			if err := s.c.HSetNX(ctx, s.keyRecordKey(k.Hash), "revoked_ms", ms).Err(); err != nil {
				return meter.Key{}, storeErr(err)
			}
			k.RevokedAt = msTime(ms)
		}
		return k, nil
	}
	return meter.Key{}, meter.Errorf(meter.ECodeNotFound, "account %q has no key %q", account, keyID)
}

// ListAccounts returns account ids in id order, after the cursor ("" for
// the first page), at most limit of them: a ZRANGEBYLEX of the sorted
// index, which holds the ids of the accounts set with score 0. An index
// with fewer ids than the set (a store from before the sorted index, or a
// CreateAccount that failed between its writes) is completed first, once.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var set, sorted *redis.IntCmd
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		set, sorted = p.SCard(ctx, s.accountsKey()), p.ZCard(ctx, s.accountsByIDKey())
		return nil
	}); err != nil {
		return nil, storeErr(err)
	}
	if sorted.Val() < set.Val() {
		if err := s.indexAccounts(ctx); err != nil {
			return nil, err
		}
	}
	lo := "-"
	if after != "" {
		lo = "(" + after
	}
	ids, err := s.c.ZRangeByLex(ctx, s.accountsByIDKey(), &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	return ids, nil
}

// indexAccounts adds every id of the accounts set to the sorted index.
func (s *Store) indexAccounts(ctx context.Context) error {
	ids, err := s.c.SMembers(ctx, s.accountsKey()).Result()
	if err != nil {
		return storeErr(err)
	}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 1000)]
		ids = ids[len(batch):]
		zs := make([]redis.Z, len(batch))
		for i, id := range batch {
			zs[i] = redis.Z{Member: id}
		}
		if err := s.c.ZAdd(ctx, s.accountsByIDKey(), zs...).Err(); err != nil {
			return storeErr(err)
		}
	}
	return nil
}

// TrimLedger removes an account's ledger entries older than before. The
// balance is kept in the account record, never recomputed from the
// ledger, so trimming changes no balance.
func (s *Store) TrimLedger(ctx context.Context, account string, before time.Time) (int64, error) {
	if err := s.mustExist(ctx, account); err != nil {
		return 0, err
	}
	n, err := s.c.XTrimMinID(ctx, s.accountKeys(account)[4], strconv.FormatInt(before.UnixMilli(), 10)+"-0").Result()
	if err != nil {
		return 0, storeErr(err)
	}
	return n, nil
}

func (s *Store) mustExist(ctx context.Context, account string) error {
	n, err := s.c.Exists(ctx, s.accountKeys(account)[0]).Result()
	if err != nil {
		return storeErr(err)
	}
	if n == 0 {
		return meter.Errorf(meter.ECodeAccountNotFound, "account %q not found", account)
	}
	return nil
}

func (s *Store) serverMillis(ctx context.Context) (int64, error) {
	t, err := s.c.Time(ctx).Result()
	if err != nil {
		return 0, storeErr(err)
	}
	return t.UnixMilli(), nil
}

func keyFrom(hash string, m map[string]string) meter.Key {
	ms, _ := strconv.ParseInt(m["created_ms"], 10, 64)
	k := meter.Key{ID: meter.KeyID(hash), Hash: hash, AccountID: m["account"], Mode: meter.Mode(m["mode"]),
		Prefix: m["prefix"], Last4: m["last4"], CreatedAt: msTime(ms)}
	if r, err := strconv.ParseInt(m["revoked_ms"], 10, 64); err == nil && r > 0 {
		k.RevokedAt = msTime(r)
	}
	return k
}
