package meter_test

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// TestSettingsValidate: the rules an account's (or a plan's) settings
// meet, written once; each bad value is ECodeInvalid.
func TestSettingsValidate(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, tc := range []struct {
		name string
		s    meter.Settings
		ok   bool
	}{
		{"empty", meter.Settings{}, true},
		{"all set", meter.Settings{Rates: map[string]meter.Credits{"convert.pages": 500}, PageLimit: 10, RetentionDays: 30,
			MonthlyQuota: 1000, OverageCap: 1000, LowBalanceThreshold: 5, WebhookURL: "https://h.example/x",
			WebhookSecret: secret, TimeZone: "Europe/Paris", PeriodAnchor: meter.AnchorAnniversary}, true},
		{"unnamed rate", meter.Settings{Rates: map[string]meter.Credits{"": 1}}, false},
		{"negative rate", meter.Settings{Rates: map[string]meter.Credits{"pages": -1}}, false},
		{"negative page limit", meter.Settings{PageLimit: -1}, false},
		{"retention too long", meter.Settings{RetentionDays: 3651}, false},
		{"negative quota", meter.Settings{MonthlyQuota: -1}, false},
		{"quota too large", meter.Settings{MonthlyQuota: meter.MaxCredits + 1}, false},
		{"negative threshold", meter.Settings{LowBalanceThreshold: -1}, false},
		{"webhook without secret", meter.Settings{WebhookURL: "https://h.example"}, false},
		{"secret without webhook", meter.Settings{WebhookSecret: secret}, false},
		{"ftp webhook", meter.Settings{WebhookURL: "ftp://h.example", WebhookSecret: secret}, false},
		{"unknown zone", meter.Settings{TimeZone: "Mars/Olympus"}, false},
		{"unknown anchor", meter.Settings{PeriodAnchor: "weekly"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate(time.Now())
			if tc.ok != (err == nil) || err != nil && meter.ErrorCode(err) != meter.ECodeInvalid {
				t.Fatalf("Validate = %v; want ok %v (else %s)", err, tc.ok, meter.ECodeInvalid)
			}
		})
	}
}
