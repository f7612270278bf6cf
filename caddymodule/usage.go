package caddymodule

import (
	"context"
	"net/http"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// usageReport is an account's usage by route over one period.
type usageReport struct {
	Period meter.Period `json:"period"`
	Data   []routeShare `json:"data"`
	Total  routeTotals  `json:"total"`
}

type routeShare struct {
	meter.RouteUsage
	// Share is this route's part of the period's credits, 0 to 1.
	Share float64 `json:"share"`
}

type routeTotals struct {
	Requests int64         `json:"requests"`
	Pages    int64         `json:"pages"`
	Credits  meter.Credits `json:"credits"`
}

// periodParam reads ?period=: "current" (default), "previous", or a date
// (YYYY-MM-DD) inside the wanted period.
func periodParam(r *http.Request, st meter.Settings, created time.Time) (meter.Period, error) {
	now := time.Now()
	switch v := r.URL.Query().Get("period"); v {
	case "", "current":
		return st.PeriodAt(now, created)
	case "previous":
		cur, err := st.PeriodAt(now, created)
		if err != nil {
			return cur, err
		}
		return st.PeriodAt(cur.Start.Add(-time.Nanosecond), created)
	default:
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return meter.Period{}, meter.Errorf(meter.ECodeInvalid, "period %q: use current, previous or a date (YYYY-MM-DD) in the period", v)
		}
		loc, err := st.Location()
		if err != nil {
			return meter.Period{}, err
		}
		return st.PeriodAt(time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, loc), created)
	}
}

// usageFor builds the usage report of an account for the request's period.
func usageFor(ctx context.Context, s meter.UsageStore, r *http.Request, acct meter.Account) (usageReport, error) {
	p, err := periodParam(r, acct.Settings, acct.CreatedAt)
	if err != nil {
		return usageReport{}, err
	}
	routes, err := s.Usage(ctx, acct.ID, p)
	if err != nil {
		return usageReport{}, err
	}
	rep := usageReport{Period: p, Data: make([]routeShare, 0, len(routes))}
	for _, u := range routes {
		rep.Total.Requests += u.Requests
		rep.Total.Pages += u.Pages
		rep.Total.Credits += u.Credits
	}
	for _, u := range routes {
		share := 0.0
		if rep.Total.Credits > 0 {
			share = float64(u.Credits) / float64(rep.Total.Credits)
		}
		rep.Data = append(rep.Data, routeShare{RouteUsage: u, Share: share})
	}
	return rep, nil
}
