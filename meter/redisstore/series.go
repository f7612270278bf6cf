package redisstore

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// seriesBucket is one field of the series hash (see count_series in
// lib.lua): numbers as decimal strings.
type seriesBucket struct {
	T string               `json:"t"`
	R map[string][3]string `json:"r"`
}

// UsageSeries returns an account's usage per route in the day or hour
// buckets that start in [q.From, q.To), by bucket then route; see
// meter.SeriesQuery. It reads only the fields of the buckets asked for.
func (s *Store) UsageSeries(ctx context.Context, q meter.SeriesQuery) ([]meter.UsagePoint, error) {
	if err := meter.ValidateAccountID(q.AccountID); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := s.mustExist(ctx, q.AccountID); err != nil {
		return nil, err
	}
	var fields []string
	step := 24 * time.Hour
	if q.Granularity == meter.GranularityHour {
		step = time.Hour
	}
	for t := meter.Bucket(q.From, q.Granularity); t.Before(q.To); t = t.Add(step) {
		if q.Granularity == meter.GranularityHour {
			fields = append(fields, "h"+strconv.FormatInt((t.Unix()/3600)%(meter.HourlyDays*24), 10))
		} else {
			fields = append(fields, "d"+strconv.FormatInt(t.Unix()/86400, 10))
		}
	}
	vals, err := s.c.HMGet(ctx, s.seriesKey(q.AccountID), fields...).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	out := []meter.UsagePoint{}
	for _, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		var b seriesBucket
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, internalErr(err)
		}
		ms, _ := strconv.ParseInt(b.T, 10, 64)
		start := time.UnixMilli(ms).UTC()
		if start.Before(meter.Bucket(q.From, q.Granularity)) || !start.Before(q.To) {
			continue // a ring slot that holds another hour
		}
		for route, n := range b.R {
			p := meter.UsagePoint{Start: start, Route: route}
			p.Requests, _ = strconv.ParseInt(n[0], 10, 64)
			p.Pages, _ = strconv.ParseInt(n[1], 10, 64)
			c, _ := strconv.ParseInt(n[2], 10, 64)
			p.Credits = meter.Credits(c)
			out = append(out, p)
		}
	}
	meter.SortPoints(out)
	return out, nil
}
