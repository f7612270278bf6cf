package caddymodule

import (
	"context"
	"net/http"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// seriesReport is an account's usage over time: ?granularity=day|hour
// &from=&to= on the usage endpoints of the admin API and meter_api.
type seriesReport struct {
	Granularity string    `json:"granularity"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	// Buckets has one element per day or hour of [from, to), usage or
	// not: the totals of every route, for a chart.
	Buckets []seriesBucket `json:"buckets"`
	// Data is the usage per route of each bucket that has some.
	Data  []meter.UsagePoint `json:"data"`
	Total routeTotals        `json:"total"`
}

type seriesBucket struct {
	Start    time.Time     `json:"start"`
	Requests int64         `json:"requests"`
	Pages    int64         `json:"pages"`
	Credits  meter.Credits `json:"credits"`
}

// seriesQuery reads granularity, from and to (RFC 3339 or a UTC date; a
// date as to includes its day). Defaults: the last 30 days (today
// included) by day, the last 24 hours by hour.
func seriesQuery(r *http.Request, account string) (meter.SeriesQuery, error) {
	v := r.URL.Query()
	q := meter.SeriesQuery{AccountID: account, Granularity: v.Get("granularity")}
	if q.Granularity != meter.GranularityDay && q.Granularity != meter.GranularityHour {
		return q, meter.Errorf(meter.ECodeInvalid, "granularity %q: use day or hour", q.Granularity)
	}
	var err error
	if q.From, err = dateParam(v.Get("from"), false); err != nil {
		return q, err
	}
	if q.To, err = dateParam(v.Get("to"), true); err != nil {
		return q, err
	}
	step, span := 24*time.Hour, 30*24*time.Hour
	if q.Granularity == meter.GranularityHour {
		step, span = time.Hour, 24*time.Hour
	}
	if q.To.IsZero() {
		q.To = meter.Bucket(time.Now(), q.Granularity).Add(step)
		if !q.From.IsZero() && q.From.Add(span).Before(q.To) {
			q.To = meter.Bucket(q.From, q.Granularity).Add(span)
		}
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-span)
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	return q, q.Validate()
}

// seriesFor answers a usage request that names a granularity.
func seriesFor(ctx context.Context, s meter.UsageStore, r *http.Request, account string) (seriesReport, error) {
	q, err := seriesQuery(r, account)
	if err != nil {
		return seriesReport{}, err
	}
	pts, err := s.UsageSeries(ctx, q)
	if err != nil {
		return seriesReport{}, err
	}
	rep := seriesReport{Granularity: q.Granularity, From: q.From, To: q.To, Data: pts, Buckets: []seriesBucket{}}
	index := map[int64]int{} // by Unix time: Time values are not map keys
	for t := meter.Bucket(q.From, q.Granularity); t.Before(q.To); t = next(t, q.Granularity) {
		index[t.Unix()] = len(rep.Buckets)
		rep.Buckets = append(rep.Buckets, seriesBucket{Start: t})
	}
	for _, p := range pts {
		i, ok := index[p.Start.Unix()]
		if !ok {
			continue
		}
		b := &rep.Buckets[i]
		b.Requests += p.Requests
		b.Pages += p.Pages
		b.Credits += p.Credits
		rep.Total.Requests += p.Requests
		rep.Total.Pages += p.Pages
		rep.Total.Credits += p.Credits
	}
	return rep, nil
}

func next(t time.Time, g string) time.Time {
	if g == meter.GranularityHour {
		return t.Add(time.Hour)
	}
	return t.AddDate(0, 0, 1)
}
