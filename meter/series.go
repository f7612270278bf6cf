package meter

import (
	"sort"
	"time"
)

// Usage series granularities.
const (
	GranularityDay  = "day"
	GranularityHour = "hour"
)

// Series retention: hourly buckets are kept for the last HourlyDays days
// (a ring of slots in each store), daily buckets as long as the account.
const HourlyDays = 7

// UsagePoint is one route's usage in one bucket of a series: a UTC day or
// hour, on the store's clock when the usage was committed.
type UsagePoint struct {
	Start    time.Time `json:"start"`
	Route    string    `json:"route"`
	Requests int64     `json:"requests"`
	Pages    int64     `json:"pages"`
	Credits  Credits   `json:"credits"`
}

// SeriesQuery selects an account's usage buckets in [From, To).
type SeriesQuery struct {
	AccountID   string
	Granularity string // GranularityDay or GranularityHour
	From, To    time.Time
}

// Validate checks the granularity and bounds a query: at most 400 days of
// days, HourlyDays of hours (the older hours are gone).
func (q SeriesQuery) Validate() error {
	var most time.Duration
	switch q.Granularity {
	case GranularityDay:
		most = 400 * 24 * time.Hour
	case GranularityHour:
		most = HourlyDays * 24 * time.Hour
	default:
		return Errorf(ECodeInvalid, "granularity %q: use day or hour", q.Granularity)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return Errorf(ECodeInvalid, "from and to are required, from before to")
	}
	if q.To.Sub(q.From) > most {
		return Errorf(ECodeInvalid, "at most %d days of %s buckets in one query", int(most.Hours()/24), q.Granularity)
	}
	return nil
}

// Bucket is the start of the bucket of granularity g that holds t (UTC).
func Bucket(t time.Time, g string) time.Time {
	t = t.UTC()
	if g == GranularityHour {
		return t.Truncate(time.Hour)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// SortPoints orders a series as stores return it: by bucket, then route.
func SortPoints(pts []UsagePoint) {
	sort.Slice(pts, func(i, j int) bool {
		if !pts[i].Start.Equal(pts[j].Start) {
			return pts[i].Start.Before(pts[j].Start)
		}
		return pts[i].Route < pts[j].Route
	})
}
