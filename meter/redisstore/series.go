package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// UsageSeries returns an account's usage per route in the day or hour
// buckets that start in [q.From, q.To), by bucket then route; see
// meter.SeriesQuery. It reads the list of routes, then only the fields of
// the buckets asked for (see count_series in lib.lua).
func (s *Store) UsageSeries(ctx context.Context, q meter.SeriesQuery) ([]meter.UsagePoint, error) {
	if err := s.mustExist(ctx, q.AccountID); err != nil {
		return nil, err
	}
	out := []meter.UsagePoint{}
	key := s.seriesKey(q.AccountID)
	routes, err := s.c.HGet(ctx, key, "routes").Result()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, storeErr(err)
	}
	hourly := q.Granularity == meter.GranularityHour
	var fields []seriesField
	for t := meter.Bucket(q.From, q.Granularity); t.Before(q.To); t = nextBucket(t, q.Granularity) {
		for _, route := range strings.Split(routes, "\x00") {
			fields = append(fields, newSeriesField(t, q.Granularity, route))
		}
	}
	names := fieldNames(fields)
	vals, err := s.c.HMGet(ctx, key, names...).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		p, ok, err := seriesPoint(fields[i], raw, hourly)
		if err != nil {
			return nil, internalErr(fmt.Errorf("redisstore: bad series field %q: %q", names[i], raw))
		}
		if ok {
			out = append(out, p)
		}
	}
	meter.SortPoints(out)
	return out, nil
}

// seriesField is one bucket and route of a series hash (see count_series
// in lib.lua).
type seriesField struct {
	start time.Time
	route string
	name  string
}

// newSeriesField names the field of route in the bucket of granularity g
// that starts at t: days by their number, hours by their slot in the
// HourlyDays ring.
func newSeriesField(t time.Time, g, route string) seriesField {
	name := "d" + strconv.FormatInt(t.Unix()/86400, 10)
	if g == meter.GranularityHour {
		name = "h" + strconv.FormatInt((t.Unix()/3600)%(meter.HourlyDays*24), 10)
	}
	return seriesField{t, route, name + "\x00" + route}
}

// nextBucket is the start of the bucket after t's.
func nextBucket(t time.Time, g string) time.Time {
	if g == meter.GranularityHour {
		return t.Add(time.Hour)
	}
	return t.AddDate(0, 0, 1)
}

func fieldNames(fs []seriesField) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// seriesPoint parses one series field's value "requests|pages|credits"
// (hourly: "hour|" first). ok is false for a ring slot that holds
// another hour than f's; err for a value of another shape.
func seriesPoint(f seriesField, raw string, hourly bool) (p meter.UsagePoint, ok bool, err error) {
	n := strings.Split(raw, "|")
	if hourly {
		if len(n) != 4 || n[0] != strconv.FormatInt(f.start.Unix()/3600, 10) {
			return p, false, nil
		}
		n = n[1:]
	}
	if len(n) != 3 {
		return p, false, errors.New("bad series value")
	}
	p = meter.UsagePoint{Start: f.start, Route: f.route}
	p.Requests, _ = strconv.ParseInt(n[0], 10, 64)
	p.Pages, _ = strconv.ParseInt(n[1], 10, 64)
	c, _ := strconv.ParseInt(n[2], 10, 64)
	p.Credits = meter.Credits(c)
	return p, true, nil
}
