package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// PendingEvents returns up to limit of an account's undelivered webhook
// events, soonest due first (then by id), and how many there are: a
// ZRANGE of the outbox's due zset and an HMGET of those records.
func (s *Store) PendingEvents(ctx context.Context, account string, limit int) ([]meter.Event, int, error) {
	if err := s.mustExist(ctx, account); err != nil {
		return nil, 0, err
	}
	keys := s.accountKeys(account)
	var ids *redis.StringSliceCmd
	var n *redis.IntCmd
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		ids = p.ZRange(ctx, keys[7], 0, int64(max(limit, 1)-1))
		n = p.ZCard(ctx, keys[7])
		return nil
	}); err != nil {
		return nil, 0, storeErr(err)
	}
	out := []meter.Event{}
	if len(ids.Val()) == 0 || limit <= 0 {
		return out, int(n.Val()), nil
	}
	recs, err := s.c.HMGet(ctx, keys[6], ids.Val()...).Result()
	if err != nil {
		return nil, 0, storeErr(err)
	}
	for i, v := range recs {
		raw, ok := v.(string)
		if !ok {
			continue // delivered in between
		}
		e, err := eventFrom(account, ids.Val()[i], raw)
		if err != nil {
			return nil, 0, internalErr(err)
		}
		out = append(out, e)
	}
	return out, int(n.Val()), nil
}
