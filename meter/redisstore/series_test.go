package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The usage series as written by a gateway of the previous version (the
// same fields, with the routes list read on every call) is counted on:
// a day field already there is added to without reading the list, a route
// new in the day is added to the list, and an hour slot still holding the
// hour a week ago starts afresh.
func TestSeriesWrittenBefore(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(100))
	cl := srv.Client()
	defer cl.Close()
	now := time.Now().UTC()
	if now.Add(time.Minute).Hour() != now.Hour() {
		time.Sleep(time.Until(now.Truncate(time.Hour).Add(time.Hour + time.Second))) // no hour turns during the test
		now = time.Now().UTC()
	}
	day, hour := meter.Bucket(now, meter.GranularityDay), meter.Bucket(now, meter.GranularityHour)
	key := s.seriesKey(id)
	dayF := newSeriesField(day, meter.GranularityDay, "/convert").name
	hourF := newSeriesField(hour, meter.GranularityHour, "/convert").name
	weekAgo := hour.Unix()/3600 - meter.HourlyDays*24 // the same ring slot
	if err := cl.HSet(ctx, key, dayF, "2|7|4000", hourF, itoa(weekAgo)+"|9|9|9000", "routes", "/old\x00/convert").Err(); err != nil {
		t.Fatal(err)
	}

	mustReserve(t, s, id, "r1", c(5))
	mustCommit(t, s, id, "r1", c(3))
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "r2", Amount: c(2), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r2", Amount: c(2),
		Route: "/ocr", Pages: 4}); err != nil {
		t.Fatal(err)
	}

	days, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: meter.GranularityDay,
		From: day, To: day.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []meter.UsagePoint{{Start: day, Route: "/convert", Requests: 3, Pages: 7, Credits: c(7)},
		{Start: day, Route: "/ocr", Requests: 1, Pages: 4, Credits: c(2)}}
	expectPoints(t, "days", days, wantDays)
	hours, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: meter.GranularityHour,
		From: hour, To: hour.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expectPoints(t, "hours", hours, []meter.UsagePoint{{Start: hour, Route: "/convert", Requests: 1, Credits: c(3)},
		{Start: hour, Route: "/ocr", Requests: 1, Pages: 4, Credits: c(2)}})
	if routes := cl.HGet(ctx, key, "routes").Val(); routes != "/old\x00/convert\x00/ocr" {
		t.Errorf("routes %q", routes)
	}
}

func expectPoints(t *testing.T, what string, got, want []meter.UsagePoint) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || got[i].Route != want[i].Route || got[i].Requests != want[i].Requests ||
			got[i].Pages != want[i].Pages || got[i].Credits != want[i].Credits {
			t.Errorf("%s[%d]: %+v, want %+v", what, i, got[i], want[i])
		}
	}
}
