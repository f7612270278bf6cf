package meter

import (
	"encoding/json"
	"time"
)

// Webhook event types. A store records them in the account's outbox in
// the same atomic step as the balance change that caused them.
const (
	// EventLowBalance: a debit (a commit, a negative adjustment) took the
	// balance below Settings.LowBalanceThreshold. Once per crossing: it is
	// re-armed when the balance is back at or above the threshold (a
	// purchase, a refund).
	EventLowBalance = "credits.low_balance"
	// EventQuotaExhausted: a commit used the last of the period's quota.
	EventQuotaExhausted = "quota.exhausted"
	// EventOverageLimitReached: a commit used the last of the period's
	// overage cap.
	EventOverageLimitReached = "overage.limit_reached"
	// EventShortfall: an output-priced commit charged more than the
	// account's pools could give (Used is that shortfall); the account's
	// requests are refused with ECodeCreditsOwed until it buys credits.
	EventShortfall = "credits.shortfall"
)

// Event is a webhook event waiting in an account's outbox until a
// delivery is acknowledged (Store.AckEvent).
type Event struct {
	// ID is unique within the account: "<ms>-<seq>" of the store's clock.
	ID        string    `json:"id"`
	AccountID string    `json:"account"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	// Balance is the balance right after the change that caused it.
	Balance Credits `json:"balance"`
	// Threshold is the low-balance threshold (EventLowBalance).
	Threshold Credits `json:"threshold,omitempty"`
	// Limit and Used are the quota limit or overage cap of the period and
	// what was used of it (EventQuotaExhausted, EventOverageLimitReached).
	Limit Credits `json:"limit,omitempty"`
	Used  Credits `json:"used,omitempty"`
	// ResetsAt is the end of the period (EventQuotaExhausted,
	// EventOverageLimitReached), when the store knows it.
	ResetsAt time.Time `json:"resets_at,omitzero"`
	// JobID and UpstreamJobID name the job of EventJobBlocked (the
	// upstream's id when the job had one then).
	JobID         string `json:"job_id,omitempty"`
	UpstreamJobID string `json:"upstream_job_id,omitempty"`
	// Attempts is how many deliveries were retried (Store.RetryEvent).
	Attempts int `json:"attempts"`
}

// WebhookID is the event's id on the wire: unique across accounts and
// stable across retries, so that receivers can deduplicate by it.
func (e Event) WebhookID() string { return "evt_" + e.AccountID + "_" + e.ID }

// Payload is the JSON body of the event's webhook:
//
//	{"type": "credits.low_balance", "event": "credits.low_balance",
//	 "id": "evt_...", "timestamp": "<RFC 3339>",
//	 "data": {"account": "...", "balance": 4.5, "threshold": 5,
//	          "org_id": "...", "current_balance": 4.5, "timestamp": "<RFC 3339>"}}
//
// type, id, timestamp, data.account and data.balance are the Standard
// Webhooks form; event, data.org_id, data.current_balance and
// data.timestamp repeat them under DocExtract's names, so receivers written
// for either read it unchanged. quota.exhausted carries quota_limit,
// quota_used and resets_at in data; overage.limit_reached overage_cap,
// overage_used and resets_at.
func (e Event) Payload() ([]byte, error) {
	ts := e.CreatedAt.UTC().Format(time.RFC3339Nano)
	data := map[string]any{"account": e.AccountID, "balance": e.Balance,
		"org_id": e.AccountID, "current_balance": e.Balance, "timestamp": ts}
	switch e.Type {
	case EventLowBalance:
		data["threshold"] = e.Threshold
	case EventQuotaExhausted:
		data["quota_limit"], data["quota_used"] = e.Limit, e.Used
	case EventOverageLimitReached:
		data["overage_cap"], data["overage_used"] = e.Limit, e.Used
	case EventShortfall:
		data["shortfall"] = e.Used
	case EventJobBlocked:
		data["job_id"] = e.JobID
		if e.UpstreamJobID != "" {
			data["upstream_job_id"] = e.UpstreamJobID
		}
	}
	if e.Type != EventLowBalance && e.Type != EventJobBlocked && e.Type != EventShortfall && !e.ResetsAt.IsZero() {
		data["resets_at"] = e.ResetsAt.UTC().Format(time.RFC3339)
	}
	return json.Marshal(map[string]any{"type": e.Type, "event": e.Type, "id": e.WebhookID(),
		"timestamp": ts, "data": data})
}

// ValidateEventID checks an event id's form ("<ms>-<seq>").
func ValidateEventID(id string) error {
	if !LedgerEntryID.MatchString(id) {
		return Errorf(ECodeNotFound, "no event %q", id)
	}
	return nil
}
