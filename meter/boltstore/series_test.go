package boltstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Usage lands in the day and hour of the store's clock; hours older than
// meter.HourlyDays are forgotten as new ones are written, days are kept.
func TestSeriesFollowsTheClock(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(100)); err != nil {
		t.Fatal(err)
	}
	charge := func(rid string, amount meter.Credits) {
		t.Helper()
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: rid, Amount: amount, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: rid, Amount: amount, Route: "/x", Pages: 1}); err != nil {
			t.Fatal(err)
		}
	}
	series := func(g string, from time.Time, d time.Duration) []meter.UsagePoint {
		t.Helper()
		pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: "a", Granularity: g, From: from, To: from.Add(d)})
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}
	first := clk.Now() // 2030-01-15 12:00 UTC
	charge("r1", c(2))
	clk.Add(59 * time.Minute)
	charge("r2", c(3))
	clk.Add(time.Minute) // 13:00: the next hour
	charge("r3", c(4))
	hour := first.Truncate(time.Hour)
	if got := series(meter.GranularityHour, hour, 2*time.Hour); len(got) != 2 || got[0].Credits != c(5) || got[1].Credits != c(4) ||
		!got[1].Start.Equal(hour.Add(time.Hour)) {
		t.Fatalf("hours: %+v", got)
	}
	day := meter.Bucket(first, meter.GranularityDay)
	if got := series(meter.GranularityDay, day, 24*time.Hour); len(got) != 1 || got[0].Credits != c(9) || got[0].Requests != 3 || got[0].Pages != 3 {
		t.Fatalf("day: %+v", got)
	}
	clk.Add(meter.HourlyDays * 24 * time.Hour)
	charge("r4", c(1))
	if got := series(meter.GranularityHour, hour, 2*time.Hour); len(got) != 1 || got[0].Credits != c(4) {
		t.Errorf("the first hour is %d days old: %+v", meter.HourlyDays, got)
	}
	if got := series(meter.GranularityDay, day, 24*time.Hour); len(got) != 1 || got[0].Credits != c(9) {
		t.Errorf("days are kept: %+v", got)
	}
}
