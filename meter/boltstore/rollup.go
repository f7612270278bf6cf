package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// The store-wide rollup (meter.RollupStore) in a top-level bucket
// "rollup", written by the rollup runner in transactions of its own, never
// by the money transactions:
//
//	meta/      index_run, index_as_of, day_as_of, hour_as_of
//	idx:<run>/ one bucket per sort: meter.IndexKey -> ""
//	day/, hour/  bucket start (8 bytes, Unix s) -> the routes' points (JSON)
//	refusals/  day (8 bytes) + code -> count (8 bytes)
//	lease/     name -> expiry ms (8 bytes) + owner
//	once/      key -> expiry ms (8 bytes) + value
//
// The embedded store serves one gateway, so its rollup is that gateway's;
// it is built the same way as on Redis rather than kept exact in the money
// transactions, which would add work to every request.
var (
	bRollup   = []byte("rollup")
	bMeta     = []byte("meta")
	bRefusals = []byte("refusals")
	bLease    = []byte("lease")
	bOnce     = []byte("once")
)

// rollupUpdate runs fn in a write transaction on the rollup bucket.
func (s *Store) rollupUpdate(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bRollup)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil && meter.ErrorCode(err) == "" {
		return internalErr(err)
	}
	return err
}

// rollupView runs fn on the rollup bucket, nil before the first write.
func (s *Store) rollupView(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bRollup)) })
	if err != nil && meter.ErrorCode(err) == "" {
		return internalErr(err)
	}
	return err
}

func sub(b *bolt.Bucket, name []byte) *bolt.Bucket {
	if b == nil {
		return nil
	}
	return b.Bucket(name)
}

func metaMillis(b *bolt.Bucket, name string) time.Time {
	m := sub(b, bMeta)
	if m == nil {
		return time.Time{}
	}
	if v := m.Get([]byte(name)); len(v) == 8 {
		return time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC()
	}
	return time.Time{}
}

func putMeta(b *bolt.Bucket, name string, v []byte) error {
	m, err := b.CreateBucketIfNotExists(bMeta)
	if err != nil {
		return err
	}
	return m.Put([]byte(name), v)
}

// AcquireLease takes or extends a lease on the store's clock.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	held := false
	err := s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		l, err := b.CreateBucketIfNotExists(bLease)
		if err != nil {
			return err
		}
		now := s.now().UnixMilli()
		if v := l.Get([]byte(name)); len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) > now && string(v[8:]) != owner {
			return nil
		}
		held = true
		return l.Put([]byte(name), append(be64(now+ttl.Milliseconds()), owner...))
	})
	return held, err
}

// ReleaseLease gives a lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		l := b.Bucket(bLease)
		if v := l.Get([]byte(name)); len(v) >= 8 && string(v[8:]) == owner {
			return l.Delete([]byte(name))
		}
		return nil
	})
}

func indexBucket(run string) []byte { return []byte("idx:" + run) }

// StageIndex adds rows to run's index buckets.
func (s *Store) StageIndex(ctx context.Context, run string, rows []meter.AccountSummary) error {
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		ib, err := b.CreateBucketIfNotExists(indexBucket(run))
		if err != nil {
			return err
		}
		for _, by := range meter.IndexSorts {
			sb, err := ib.CreateBucketIfNotExists([]byte(by))
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := sb.Put([]byte(meter.IndexKey(by, r)), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// PublishIndex points the meta at run's buckets and drops every other
// run's (a runner that died mid-run left its own).
func (s *Store) PublishIndex(ctx context.Context, run string, asOf time.Time) error {
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		if _, err := b.CreateBucketIfNotExists(indexBucket(run)); err != nil {
			return err
		}
		var old [][]byte
		c := b.Cursor()
		prefix := []byte("idx:")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if string(k) != string(indexBucket(run)) {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := b.DeleteBucket(k); err != nil {
				return err
			}
		}
		// Expired claims of once-only actions go with each run (Redis
		// expires its own).
		if ob := b.Bucket(bOnce); ob != nil {
			now := s.now().UnixMilli()
			var gone [][]byte
			_ = ob.ForEach(func(k, v []byte) error {
				if len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) <= now {
					gone = append(gone, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range gone {
				if err := ob.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := putMeta(b, "index_run", []byte(run)); err != nil {
			return err
		}
		return putMeta(b, "index_as_of", be64(asOf.UnixMilli()))
	})
}

// SortedAccounts pages through the published index from the cursor.
func (s *Store) SortedAccounts(ctx context.Context, by, after string, limit int) ([]string, string, time.Time, error) {
	valid := false
	for _, k := range meter.IndexSorts {
		valid = valid || k == by
	}
	if !valid {
		return nil, "", time.Time{}, meter.Errorf(meter.ECodeInvalid, "sort %q: use balance, usage or activity", by)
	}
	var keys []string
	var asOf time.Time
	err := s.rollupView(ctx, func(b *bolt.Bucket) error {
		m := sub(b, bMeta)
		if m == nil {
			return nil
		}
		run := m.Get([]byte("index_run"))
		sb := sub(sub(b, indexBucket(string(run))), []byte(by))
		if run == nil || sb == nil {
			return nil
		}
		asOf = metaMillis(b, "index_as_of")
		c := sb.Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && after != "" && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && len(keys) <= limit; k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, "", time.Time{}, err
	}
	ids, next := meter.PageOfIndex(keys, limit)
	return ids, next, asOf, nil
}

// WriteTotals replaces the totals of the buckets in [from, to).
func (s *Store) WriteTotals(ctx context.Context, g string, from, to time.Time, points []meter.UsagePoint, asOf time.Time) error {
	fields, err := meter.TotalsByBucket(g, from, to, points)
	if err != nil {
		return err
	}
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		tb, err := b.CreateBucketIfNotExists([]byte(g))
		if err != nil {
			return err
		}
		for k, v := range fields {
			if err := tb.Put(be64(k), []byte(v)); err != nil {
				return err
			}
		}
		if g == meter.GranularityHour {
			limit := to.Add(-(meter.HourlyDays*24 + 24) * time.Hour).Unix()
			c := tb.Cursor()
			for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) < limit; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return putMeta(b, g+"_as_of", be64(asOf.UnixMilli()))
	})
}

// Totals reads the totals of the buckets in [from, to).
func (s *Store) Totals(ctx context.Context, g string, from, to time.Time) (meter.RollupTotals, error) {
	var t meter.RollupTotals
	err := s.rollupView(ctx, func(b *bolt.Bucket) error {
		tb := sub(b, []byte(g))
		if tb == nil {
			return nil
		}
		t.AsOf = metaMillis(b, g+"_as_of")
		for _, start := range meter.Buckets(g, from, to) {
			v := tb.Get(be64(start.Unix()))
			if v == nil {
				continue
			}
			var pts []meter.UsagePoint
			if err := json.Unmarshal(v, &pts); err != nil {
				return err
			}
			for _, p := range pts {
				p.Start = start
				t.Points = append(t.Points, p)
			}
		}
		return nil
	})
	return t, err
}

func refusalKey(day time.Time, code string) []byte {
	return append(be64(meter.Bucket(day, meter.GranularityDay).Unix()), code...)
}

// AddRefusals adds counts to the day's refusals by code.
func (s *Store) AddRefusals(ctx context.Context, day time.Time, counts map[string]int64) error {
	if len(counts) == 0 {
		return nil
	}
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		rb, err := b.CreateBucketIfNotExists(bRefusals)
		if err != nil {
			return err
		}
		for code, n := range counts {
			k := refusalKey(day, code)
			var cur int64
			if v := rb.Get(k); len(v) == 8 {
				cur = int64(binary.BigEndian.Uint64(v))
			}
			if err := rb.Put(k, be64(cur+n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Refusals sums the refusals by code of the days in [from, to).
func (s *Store) Refusals(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.rollupView(ctx, func(b *bolt.Bucket) error {
		rb := sub(b, bRefusals)
		if rb == nil {
			return nil
		}
		lo, hi := be64(meter.Bucket(from, meter.GranularityDay).Unix()), be64(meter.Bucket(to, meter.GranularityDay).Unix())
		if !meter.Bucket(to, meter.GranularityDay).Equal(to) {
			hi = be64(meter.Bucket(to, meter.GranularityDay).Unix() + 86400)
		}
		c := rb.Cursor()
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k[:8], hi) < 0; k, v = c.Next() {
			out[string(k[8:])] += int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return out, err
}

// ClaimOnce claims key unless an unexpired claim holds it.
func (s *Store) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	var value string
	claimed := false
	err := s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		ob, err := b.CreateBucketIfNotExists(bOnce)
		if err != nil {
			return err
		}
		now := s.now().UnixMilli()
		if v := ob.Get([]byte(key)); len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) > now {
			value = string(v[8:])
			return nil
		}
		claimed = true
		return ob.Put([]byte(key), be64(now+ttl.Milliseconds()))
	})
	return value, claimed, err
}

// SetOnce records a claimed action's outcome.
func (s *Store) SetOnce(ctx context.Context, key, value string, ttl time.Duration) error {
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		ob, err := b.CreateBucketIfNotExists(bOnce)
		if err != nil {
			return err
		}
		return ob.Put([]byte(key), append(be64(s.now().UnixMilli()+ttl.Milliseconds()), value...))
	})
}

// DropOnce frees a claim.
func (s *Store) DropOnce(ctx context.Context, key string) error {
	return s.rollupUpdate(ctx, func(b *bolt.Bucket) error {
		if ob := b.Bucket(bOnce); ob != nil {
			return ob.Delete([]byte(key))
		}
		return nil
	})
}

var _ meter.RollupStore = (*Store)(nil)
