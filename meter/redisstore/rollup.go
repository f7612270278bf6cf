package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// The store-wide rollup (meter.RollupStore). Its keys share the hash tag
// {:rollup} (no account id has a colon), so the renames that publish an
// index stay in one slot on Redis Cluster; none of them is touched by the
// per-request scripts.
//
//	{:rollup}:idx:<by>          zset, all scores 0, members meter.IndexKey
//	{:rollup}:stage:<run>:<by>  the same, being built (expires in an hour)
//	{:rollup}:meta              hash: index_as_of, day_as_of, hour_as_of (ms)
//	{:rollup}:day, :hour        hash: bucket start (Unix s) -> JSON points
//	{:rollup}:refusals:<day>    hash: code -> count (kept 400 days)
//	{:rollup}:lease:<name>      the owner of a lease, with its expiry
//	{:rollup}:once:<key>        ClaimOnce's claims and outcomes

func (s *Store) rollupKey(parts ...string) string {
	return s.prefix + ":{:rollup}:" + strings.Join(parts, ":")
}

// AccountSummaries reads a batch of accounts in two pipelined round
// trips: the account function (as Account does), the newest ledger entry
// and the series' routes; then the period's usage and the series buckets.
func (s *Store) AccountSummaries(ctx context.Context, ids []string, q meter.SummaryQuery) ([]meter.AccountSummary, error) {
	for _, id := range ids {
		if err := meter.ValidateAccountID(id); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	type first struct {
		acct   *redis.SliceCmd
		last   *redis.XMessageSliceCmd
		routes *redis.StringCmd
	}
	firsts := make([]first, len(ids))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			keys := s.accountKeys(id)
			// The fields, not the account function: a sweep of expired
			// holds changes reserved, never the balance the index sorts.
			firsts[i] = first{p.HMGet(ctx, keys[0], "balance", "reserved", "created_ms", "settings"),
				p.XRevRangeN(ctx, keys[4], "+", "-", 1), p.HGet(ctx, s.seriesKey(id), "routes")}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr(err)
	}
	out := make([]meter.AccountSummary, 0, len(ids))
	type second struct {
		usage       *redis.MapStringStringCmd
		days, hours *redis.SliceCmd
		dayF, hourF []seriesField
		sum         int
	}
	seconds := make([]second, 0, len(ids))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			v, err := firsts[i].acct.Result()
			if err != nil {
				return storeErr(err)
			}
			r := &reply{v: v}
			if v[2] == nil {
				continue // gone since it was listed
			}
			a := meter.Account{ID: id, Balance: meter.Credits(r.int(0)), Reserved: meter.Credits(r.int(1)), CreatedAt: msTime(r.int(2))}
			if raw, _ := v[3].(string); raw != "" {
				if err := json.Unmarshal([]byte(raw), &a.Settings); err != nil {
					return internalErr(fmt.Errorf("redisstore: account %s: bad settings: %w", id, err))
				}
			}
			sum := meter.AccountSummary{ID: id, Balance: a.Balance, Reserved: a.Reserved, CreatedAt: a.CreatedAt}
			if xs, _ := firsts[i].last.Result(); len(xs) > 0 {
				sum.LastActivity = entryTime(xs[0].ID)
			}
			sec := second{sum: len(out)}
			if per, err := a.Settings.PeriodAt(q.Now, a.CreatedAt); err == nil {
				pid, _ := per.Millis()
				sec.usage = p.HGetAll(ctx, s.usageKey(id, pid))
			}
			if routes, _ := firsts[i].routes.Result(); routes != "" {
				rs := strings.Split(routes, "\x00")
				sec.dayF = seriesFields(meter.GranularityDay, q.DaysFrom, a.CreatedAt, q.Now, rs)
				sec.hourF = seriesFields(meter.GranularityHour, q.HoursFrom, a.CreatedAt, q.Now, rs)
				if len(sec.dayF) > 0 {
					sec.days = p.HMGet(ctx, s.seriesKey(id), fieldNames(sec.dayF)...)
				}
				if len(sec.hourF) > 0 {
					sec.hours = p.HMGet(ctx, s.seriesKey(id), fieldNames(sec.hourF)...)
				}
			}
			out = append(out, sum)
			seconds = append(seconds, sec)
		}
		return nil
	})
	if err != nil {
		var me *meter.Error
		if errors.As(err, &me) {
			return nil, err
		}
		return nil, storeErr(err)
	}
	for _, sec := range seconds {
		sum := &out[sec.sum]
		if sec.usage != nil {
			m, _ := sec.usage.Result()
			for f, v := range m {
				if strings.HasSuffix(f, "\x00credits") {
					n, _ := strconv.ParseInt(v, 10, 64)
					sum.PeriodCredits += meter.Credits(n)
				}
			}
		}
		if sec.days != nil {
			sum.Days = seriesPoints(sec.dayF, sec.days.Val(), false)
		}
		if sec.hours != nil {
			sum.Hours = seriesPoints(sec.hourF, sec.hours.Val(), true)
		}
	}
	return out, nil
}

// seriesFields names the fields of the buckets of g from from (or the
// account's creation, if later) to now's, for each route.
func seriesFields(g string, from, created, now time.Time, routes []string) []seriesField {
	if from.IsZero() {
		return nil
	}
	if c := meter.Bucket(created, g); c.After(from) {
		from = c
	}
	var out []seriesField
	end := meter.Bucket(now, g)
	for t := meter.Bucket(from, g); !t.After(end); t = nextBucket(t, g) {
		for _, r := range routes {
			out = append(out, newSeriesField(t, g, r))
		}
	}
	return out
}

// seriesPoints parses HMGET's values of fields as UsageSeries does,
// skipping what it would refuse: a summary reads on past a bad field.
func seriesPoints(fields []seriesField, vals []any, hourly bool) []meter.UsagePoint {
	var out []meter.UsagePoint
	for i, v := range vals {
		if raw, ok := v.(string); ok {
			if p, ok, err := seriesPoint(fields[i], raw, hourly); ok && err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// The lease scripts compare the owner before they extend or delete: a
// gateway whose lease ran out must not end the next holder's.
var (
	leaseAcquire = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`)
	leaseRelease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// AcquireLease takes or extends a lease (expiry on the server's clock).
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	n, err := leaseAcquire.Run(ctx, s.c, []string{s.rollupKey("lease", name)}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, storeErr(err)
	}
	return n == 1, nil
}

// ReleaseLease gives a lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if err := leaseRelease.Run(ctx, s.c, []string{s.rollupKey("lease", name)}, owner).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// StageIndex adds rows to run's staging zsets.
func (s *Store) StageIndex(ctx context.Context, run string, rows []meter.AccountSummary) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, by := range meter.IndexSorts {
			key := s.rollupKey("stage", run, by)
			zs := make([]redis.Z, len(rows))
			for i, r := range rows {
				zs[i] = redis.Z{Member: meter.IndexKey(by, r)}
			}
			if len(zs) > 0 {
				p.ZAdd(ctx, key, zs...)
			}
			p.Expire(ctx, key, time.Hour)
		}
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// PublishIndex renames run's staging zsets over the live ones, in one
// transaction with the time they are as of.
func (s *Store) PublishIndex(ctx context.Context, run string, asOf time.Time) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, by := range meter.IndexSorts {
			stage, live := s.rollupKey("stage", run, by), s.rollupKey("idx", by)
			// An empty store stages nothing: ZUNIONSTORE of a missing key
			// stores an empty index where RENAME would fail.
			p.ZUnionStore(ctx, live, &redis.ZStore{Keys: []string{stage}})
			p.Del(ctx, stage)
		}
		p.HSet(ctx, s.rollupKey("meta"), "index_as_of", asOf.UnixMilli())
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// SortedAccounts pages through a live index by its members (ZRANGE
// BYLEX): a cursor is the last member read, so ties and later runs never
// repeat or skip an account within one index.
func (s *Store) SortedAccounts(ctx context.Context, by, after string, limit int) ([]string, string, time.Time, error) {
	if !validSort(by) {
		return nil, "", time.Time{}, meter.Errorf(meter.ECodeInvalid, "sort %q: use balance, usage or activity", by)
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	var members *redis.StringSliceCmd
	var meta *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		members = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.rollupKey("idx", by), Start: start, Stop: "+",
			ByLex: true, Offset: 0, Count: int64(limit + 1)})
		meta = p.HGet(ctx, s.rollupKey("meta"), "index_as_of")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", time.Time{}, storeErr(err)
	}
	ms, _ := meta.Int64()
	ids, next := meter.PageOfIndex(members.Val(), limit)
	var asOf time.Time
	if ms > 0 {
		asOf = msTime(ms)
	}
	return ids, next, asOf, nil
}

func validSort(by string) bool {
	for _, k := range meter.IndexSorts {
		if by == k {
			return true
		}
	}
	return false
}
