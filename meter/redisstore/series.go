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
	type field struct {
		start time.Time
		route string
	}
	var fields []field
	var names []string
	for t := meter.Bucket(q.From, q.Granularity); t.Before(q.To); {
		for _, route := range strings.Split(routes, "\x00") {
			name := "d" + strconv.FormatInt(t.Unix()/86400, 10)
			if hourly {
				name = "h" + strconv.FormatInt((t.Unix()/3600)%(meter.HourlyDays*24), 10)
			}
			fields = append(fields, field{t, route})
			names = append(names, name+"\x00"+route)
		}
		if hourly {
			t = t.Add(time.Hour)
		} else {
			t = t.AddDate(0, 0, 1)
		}
	}
	vals, err := s.c.HMGet(ctx, key, names...).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		n := strings.Split(raw, "|")
		if hourly {
			// A ring slot that holds another hour is not this one's.
			if len(n) != 4 || n[0] != strconv.FormatInt(fields[i].start.Unix()/3600, 10) {
				continue
			}
			n = n[1:]
		}
		if len(n) != 3 {
			return nil, internalErr(fmt.Errorf("redisstore: bad series field %q: %q", names[i], raw))
		}
		p := meter.UsagePoint{Start: fields[i].start, Route: fields[i].route}
		p.Requests, _ = strconv.ParseInt(n[0], 10, 64)
		p.Pages, _ = strconv.ParseInt(n[1], 10, 64)
		c, _ := strconv.ParseInt(n[2], 10, 64)
		p.Credits = meter.Credits(c)
		out = append(out, p)
	}
	meter.SortPoints(out)
	return out, nil
}
