package meter

import (
	"testing"
	"time"
)

func TestEventPayload(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"low balance", Event{ID: "1-1", AccountID: "a", Type: EventLowBalance, CreatedAt: at, Balance: 4500, Threshold: 5000},
			`{"data":{"account":"a","balance":4.5,"current_balance":4.5,"org_id":"a","threshold":5,"timestamp":"2030-01-02T03:04:05Z"},"event":"credits.low_balance","id":"evt_a_1-1","timestamp":"2030-01-02T03:04:05Z","type":"credits.low_balance"}`},
		{"quota", Event{ID: "1-2", AccountID: "a", Type: EventQuotaExhausted, CreatedAt: at, Limit: 10000, Used: 10000, ResetsAt: at},
			`{"data":{"account":"a","balance":0,"current_balance":0,"org_id":"a","quota_limit":10,"quota_used":10,"resets_at":"2030-01-02T03:04:05Z","timestamp":"2030-01-02T03:04:05Z"},"event":"quota.exhausted","id":"evt_a_1-2","timestamp":"2030-01-02T03:04:05Z","type":"quota.exhausted"}`},
		{"overage", Event{ID: "1-3", AccountID: "a", Type: EventOverageLimitReached, CreatedAt: at, Balance: -5000, Limit: 5000, Used: 5000},
			`{"data":{"account":"a","balance":-5,"current_balance":-5,"org_id":"a","overage_cap":5,"overage_used":5,"timestamp":"2030-01-02T03:04:05Z"},"event":"overage.limit_reached","id":"evt_a_1-3","timestamp":"2030-01-02T03:04:05Z","type":"overage.limit_reached"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.Payload()
			if err != nil || string(got) != tt.want {
				t.Fatalf("payload\n got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}
