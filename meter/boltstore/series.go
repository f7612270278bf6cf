package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The usage series of an account, in its sub-bucket series/ (created with
// its first usage): 'd' or 'h', the bucket's start ms (8 bytes,
// big-endian), the route -> counters (binary). Written by count, in the
// transaction of the commit or job charge it counts; hours older than
// meter.HourlyDays are deleted as new hours are written.
var bSeries = []byte("series")

const hourMS, dayMS = int64(time.Hour / time.Millisecond), int64(24 * time.Hour / time.Millisecond)

func seriesKey(kind byte, start int64, route string) []byte {
	k := make([]byte, 0, 9+len(route))
	k = append(k, kind)
	k = binary.BigEndian.AppendUint64(k, uint64(start))
	return append(k, route...)
}

// countSeries adds one request's usage to the day and hour buckets of now.
func (o *op) countSeries(route string, pages, credits int64) error {
	b, err := o.b.CreateBucketIfNotExists(bSeries)
	if err != nil {
		return err
	}
	o.dirty = true
	hour := o.now - o.now%hourMS
	for _, k := range [][]byte{seriesKey('d', o.now-o.now%dayMS, route), seriesKey('h', hour, route)} {
		var n counters
		if raw := b.Get(k); raw != nil {
			if err := decodeCounters(raw, &n); err != nil {
				return internalErr(err)
			}
		}
		n.Requests++
		n.Pages += pages
		n.Credits += credits
		if err := b.Put(k, n.encode()); err != nil {
			return err
		}
	}
	// Forget the hours that fell out of the ring: the oldest first, so
	// this stops at the first one kept.
	cutoff := seriesKey('h', hour-meter.HourlyDays*24*hourMS, "")
	c := b.Cursor()
	for k, _ := c.Seek([]byte{'h'}); k != nil && k[0] == 'h' && bytes.Compare(k, cutoff) < 0; k, _ = c.Seek([]byte{'h'}) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// UsageSeries returns an account's usage per route in the day or hour
// buckets that start in [q.From, q.To), by bucket then route; see
// meter.SeriesQuery.
func (s *Store) UsageSeries(ctx context.Context, q meter.SeriesQuery) ([]meter.UsagePoint, error) {
	kind := byte('d')
	if q.Granularity == meter.GranularityHour {
		kind = 'h'
	}
	from := seriesKey(kind, meter.Bucket(q.From, q.Granularity).UnixMilli(), "")
	to := seriesKey(kind, q.To.UnixMilli(), "")
	out := []meter.UsagePoint{}
	err := s.view(ctx, q.AccountID, func(o *op) error {
		b := o.sub(bSeries)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(from); k != nil && bytes.Compare(k, to) < 0; k, v = c.Next() {
			var n counters
			if err := decodeCounters(v, &n); err != nil {
				return internalErr(err)
			}
			start := time.UnixMilli(int64(binary.BigEndian.Uint64(k[1:9]))).UTC()
			out = append(out, meter.UsagePoint{Start: start, Route: string(k[9:]), Requests: n.Requests,
				Pages: n.Pages, Credits: meter.Credits(n.Credits)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	meter.SortPoints(out)
	return out, nil
}
