package meter

import (
	"testing"
	"time"
)

func TestPeriodAt(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	created := utc("2026-01-31T15:00:00Z")
	tests := []struct {
		name       string
		s          Settings
		at         string
		start, end string
	}{
		{"UTC month", Settings{}, "2026-11-22T10:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"first instant", Settings{}, "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"last instant", Settings{}, "2026-11-30T23:59:59Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"year end", Settings{}, "2026-12-31T23:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		// 23:30 UTC on Nov 30 is already December 1st in Paris.
		{"time zone ahead", Settings{TimeZone: "Europe/Paris"}, "2026-11-30T23:30:00Z", "2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z"},
		{"time zone behind", Settings{TimeZone: "America/New_York"}, "2026-12-01T03:00:00Z", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z"},
		// Created on Jan 31st: the anniversary is the last day of shorter months.
		{"anniversary", Settings{PeriodAnchor: AnchorAnniversary}, "2026-11-22T00:00:00Z", "2026-10-31T00:00:00Z", "2026-11-30T00:00:00Z"},
		{"anniversary clamped", Settings{PeriodAnchor: AnchorAnniversary}, "2026-02-28T12:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"},
		{"anniversary before day", Settings{PeriodAnchor: AnchorAnniversary}, "2026-03-30T12:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.s.PeriodAt(utc(tt.at), created)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Start.Equal(utc(tt.start)) || !p.End.Equal(utc(tt.end)) {
				t.Fatalf("period %s - %s, want %s - %s", p.Start.UTC(), p.End.UTC(), tt.start, tt.end)
			}
		})
	}
	if _, err := (Settings{TimeZone: "Mars/Olympus"}).PeriodAt(created, created); ErrorCode(err) != ECodeInvalid {
		t.Fatalf("bad zone: %v", err)
	}
	if _, err := (Settings{PeriodAnchor: "weekly"}).PeriodAt(created, created); ErrorCode(err) != ECodeInvalid {
		t.Fatalf("bad anchor: %v", err)
	}
}

func TestQuotaMessage(t *testing.T) {
	got := QuotaMessage(CreditsFromInt(10), "scans", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if want := "You've used all 10 scans of this period. Your quota resets on 2026-12-01."; got != want {
		t.Fatalf("%q", got)
	}
}
