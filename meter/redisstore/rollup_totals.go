package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// WriteTotals replaces the store-wide totals of the buckets in [from, to):
// one hash field per bucket, its routes' points as JSON.
func (s *Store) WriteTotals(ctx context.Context, g string, from, to time.Time, points []meter.UsagePoint, asOf time.Time) error {
	fields, err := meter.TotalsByBucket(g, from, to, points)
	if err != nil {
		return err
	}
	key := s.rollupKey(g)
	var old []string
	if g == meter.GranularityHour {
		// Hours older than the series keep are dropped as new ones come.
		keys, err := s.c.HKeys(ctx, key).Result()
		if err != nil {
			return storeErr(err)
		}
		limit := to.Add(-(meter.HourlyDays*24 + 24) * time.Hour).Unix()
		for _, k := range keys {
			if n, _ := strconv.ParseInt(k, 10, 64); n < limit {
				old = append(old, k)
			}
		}
	}
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		args := make([]any, 0, 2*len(fields))
		for k, v := range fields {
			args = append(args, strconv.FormatInt(k, 10), v)
		}
		if len(args) > 0 {
			p.HSet(ctx, key, args...)
		}
		if len(old) > 0 {
			p.HDel(ctx, key, old...)
		}
		p.HSet(ctx, s.rollupKey("meta"), g+"_as_of", asOf.UnixMilli())
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// Totals reads the store-wide totals of the buckets in [from, to).
func (s *Store) Totals(ctx context.Context, g string, from, to time.Time) (meter.RollupTotals, error) {
	var t meter.RollupTotals
	starts := meter.Buckets(g, from, to)
	if len(starts) == 0 {
		return t, nil
	}
	names := make([]string, len(starts))
	for i, b := range starts {
		names[i] = strconv.FormatInt(b.Unix(), 10)
	}
	var vals *redis.SliceCmd
	var meta *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.HMGet(ctx, s.rollupKey(g), names...)
		meta = p.HGet(ctx, s.rollupKey("meta"), g+"_as_of")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return t, storeErr(err)
	}
	for i, v := range vals.Val() {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		var pts []meter.UsagePoint
		if err := json.Unmarshal([]byte(raw), &pts); err != nil {
			return t, internalErr(err)
		}
		for _, p := range pts {
			p.Start = starts[i]
			t.Points = append(t.Points, p)
		}
	}
	if ms, _ := meta.Int64(); ms > 0 {
		t.AsOf = msTime(ms)
	}
	return t, nil
}

// AddRefusals adds counts to the day's hash of refusals by code: one
// pipelined write per gateway and interval, off the request path.
func (s *Store) AddRefusals(ctx context.Context, day time.Time, counts map[string]int64) error {
	if len(counts) == 0 {
		return nil
	}
	key := s.rollupKey("refusals", strconv.FormatInt(meter.Bucket(day, meter.GranularityDay).Unix()/86400, 10))
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for code, n := range counts {
			p.HIncrBy(ctx, key, code, n)
		}
		p.Expire(ctx, key, 400*24*time.Hour)
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// Refusals sums the days' hashes of refusals in [from, to).
func (s *Store) Refusals(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	days := meter.Buckets(meter.GranularityDay, from, to)
	cmds := make([]*redis.MapStringStringCmd, len(days))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.HGetAll(ctx, s.rollupKey("refusals", strconv.FormatInt(d.Unix()/86400, 10)))
		}
		return nil
	})
	if err != nil {
		return nil, storeErr(err)
	}
	out := map[string]int64{}
	for _, c := range cmds {
		for code, v := range c.Val() {
			n, _ := strconv.ParseInt(v, 10, 64)
			out[code] += n
		}
	}
	return out, nil
}

// ClaimOnce claims key with SET NX; a taken key answers its value ("" for
// a claim whose outcome is not recorded yet).
func (s *Store) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	k := s.rollupKey("once", key)
	ok, err := s.c.SetNX(ctx, k, "", ttl).Result()
	if err != nil {
		return "", false, storeErr(err)
	}
	if ok {
		return "", true, nil
	}
	v, err := s.c.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return s.ClaimOnce(ctx, key, ttl) // it expired just now
	}
	if err != nil {
		return "", false, storeErr(err)
	}
	return v, false, nil
}

// SetOnce records a claimed action's outcome.
func (s *Store) SetOnce(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := s.c.Set(ctx, s.rollupKey("once", key), value, ttl).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// DropOnce frees a claim.
func (s *Store) DropOnce(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.rollupKey("once", key)).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

var _ meter.RollupStore = (*Store)(nil)
