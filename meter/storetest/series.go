package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// testUsageSeries: the day and hour series count what Commit and job
// charges count in the usage by route, once each, in the bucket of the
// store's clock.
func testUsageSeries(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(100))
	before := time.Now()
	spend(t, s, id, "/convert", c(3), 3, meter.Period{})
	spend(t, s, id, "/scan", c(2), 1, meter.Period{})
	rid := newRID()
	mustReserve(t, s, id, rid, c(1.5))
	commit := meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(1.5), Route: "/convert"}
	for range 2 { // committed again: counted once
		if _, err := s.Commit(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	free := newRID()
	mustReserve(t, s, id, free, c(1))
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: free, Route: "/free"}); err != nil {
		t.Fatal(err)
	}
	job := mustCreateJob(t, s, jobReq(id, c(5), rates{"page": c(1)}))
	mustReport(t, s, rep(id, job.Job.ID, pages{"page": 4}))
	after := time.Now()

	want := map[string]meter.UsagePoint{
		"/convert": {Route: "/convert", Requests: 2, Pages: 3, Credits: c(4.5)},
		"/scan":    {Route: "/scan", Requests: 1, Pages: 1, Credits: c(2)},
		"/free":    {Route: "/free", Requests: 1},
		jobRoute:   {Route: jobRoute, Requests: 1, Pages: 4, Credits: c(4)},
	}
	// The usage by route, written in the same steps, says the same.
	byRoute, err := s.Usage(ctx, id, meter.Period{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range byRoute {
		if w := want[u.Route]; w.Requests != u.Requests || w.Pages != u.Pages || w.Credits != u.Credits {
			t.Errorf("usage by route %+v, want %+v", u, w)
		}
	}
	for _, g := range []string{meter.GranularityDay, meter.GranularityHour} {
		from, to := meter.Bucket(before, g).Add(-time.Hour), after.Add(time.Hour)
		pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: g, From: from, To: to})
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		got := map[string]meter.UsagePoint{}
		for _, p := range pts {
			if b := meter.Bucket(before, g); b.Equal(meter.Bucket(after, g)) && !p.Start.Equal(b) {
				t.Errorf("%s: point %+v not in the bucket of %v", g, p, b)
			}
			sum := got[p.Route]
			sum.Route, sum.Requests, sum.Pages, sum.Credits = p.Route, sum.Requests+p.Requests, sum.Pages+p.Pages, sum.Credits+p.Credits
			got[p.Route] = sum
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s series: %+v\nwant %+v", g, got, want)
		}
		// Buckets outside the range are not returned.
		later := meter.Bucket(after, g).AddDate(0, 0, 2)
		if pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: g, From: later, To: later.Add(time.Hour)}); err != nil || len(pts) != 0 {
			t.Errorf("%s series of later: %+v, %v", g, pts, err)
		}
	}

	other := newAccount(t, s, 0)
	day := meter.Bucket(time.Now(), meter.GranularityDay)
	if pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: other, Granularity: meter.GranularityDay, From: day, To: day.AddDate(0, 0, 1)}); err != nil || pts == nil || len(pts) != 0 {
		t.Errorf("series of an account without usage: %#v, %v", pts, err)
	}
	for name, q := range map[string]meter.SeriesQuery{
		"week":            {AccountID: id, Granularity: "week", From: day, To: day.AddDate(0, 0, 7)},
		"8 days of hours": {AccountID: id, Granularity: meter.GranularityHour, From: day.AddDate(0, 0, -8), To: day},
		"to before from":  {AccountID: id, Granularity: meter.GranularityDay, From: day, To: day.AddDate(0, 0, -1)},
	} {
		_, err := s.UsageSeries(ctx, q)
		if meter.ErrorCode(err) != meter.ECodeInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = s.UsageSeries(ctx, meter.SeriesQuery{AccountID: newID("missing"), Granularity: meter.GranularityDay, From: day, To: day.AddDate(0, 0, 1)})
	wantCode(t, err, meter.ECodeAccountNotFound)
}
