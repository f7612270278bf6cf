package meter

import (
	"fmt"
	"time"
)

// Period anchors: when an account's monthly quota period starts.
const (
	// AnchorMonthStart: periods start on the 1st of each month.
	AnchorMonthStart = "month_start"
	// AnchorAnniversary: periods start on the day of the month the
	// account was created (the 29th-31st fall back to the month's last day).
	AnchorAnniversary = "anniversary"
)

// Period is one quota period of an account: [Start, End).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ID names the period in the store: its start in UTC milliseconds. IDs of
// later periods are larger, so a store can refuse to move backwards when
// gateways' clocks disagree around a boundary.
func (p Period) ID() int64 { return p.Start.UnixMilli() }

// Millis returns the period's ID and end in UTC milliseconds, as the
// stores keep them; 0, 0 for the zero Period (no period: the store's
// current one).
func (p Period) Millis() (id, end int64) {
	if p.Start.IsZero() {
		return 0, 0
	}
	return p.ID(), p.End.UnixMilli()
}

// Location returns the account's time zone (UTC by default).
func (s Settings) Location() (*time.Location, error) {
	if s.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, Errorf(ECodeInvalid, "unknown time zone %q (use an IANA name such as Europe/Paris)", s.TimeZone)
	}
	return loc, nil
}

// PeriodAt returns the quota period containing t for an account created at
// created, in the account's time zone.
func (s Settings) PeriodAt(t, created time.Time) (Period, error) {
	loc, err := s.Location()
	if err != nil {
		return Period{}, err
	}
	day := 1
	switch s.PeriodAnchor {
	case "", AnchorMonthStart:
	case AnchorAnniversary:
		day = created.In(loc).Day()
	default:
		return Period{}, Errorf(ECodeInvalid, "unknown period_anchor %q (use %s or %s)", s.PeriodAnchor, AnchorMonthStart, AnchorAnniversary)
	}
	lt := t.In(loc)
	start := anchorIn(lt.Year(), lt.Month(), day, loc)
	if lt.Before(start) {
		start = anchorIn(lt.Year(), lt.Month()-1, day, loc)
	}
	y, m, _ := start.Date()
	return Period{Start: start, End: anchorIn(y, m+1, day, loc)}, nil
}

// anchorIn is midnight of the given day of a month, clamped to the month's
// last day (an anniversary on the 31st is the 30th in April).
func anchorIn(year int, month time.Month, day int, loc *time.Location) time.Time {
	first := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	last := first.AddDate(0, 1, -1).Day()
	if day > last {
		day = last
	}
	return time.Date(first.Year(), first.Month(), day, 0, 0, 0, 0, loc)
}

// QuotaMessage is the message of a quota_exceeded refusal.
func QuotaMessage(quota Credits, unit string, resets time.Time) string {
	if unit == "" {
		unit = "credits"
	}
	return fmt.Sprintf("You've used all %s %s of this period. Your quota resets on %s.",
		quota, unit, resets.Format("2006-01-02"))
}
