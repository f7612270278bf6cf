package redisstore

import (
	"reflect"
	"testing"
)

// The reply names read from the scripts' headers are at the positions the
// scripts return them (a header out of step with its script fails here,
// or in the store's tests as an internal error).
func TestReplyLayouts(t *testing.T) {
	for _, tc := range []struct {
		sc    *script
		code  string
		names map[string]int
	}{
		{reserveScript, "ok", map[string]int{"amount": 1, "balance": 2, "available": 3, "replayed_rid": 4, "period_id": 5,
			"quota_limit": 6, "overage_remaining": 14}},
		{commitScript, "ok", map[string]int{"charged": 1, "entry_id": 4, "late": 5, "quota_limit": 6, "events": 15, "shortfall": 16}},
		{commitScript, "period", map[string]int{"id": 1}},
		{commitScript, "reservation_settled", map[string]int{"status": 1}},
		{leaseSettleScript, "ok", map[string]int{"balance": 1, "available": 2, "events": 3, "quota_limit": 4,
			"overage_remaining": 12}},
		{leaseSettleScript, "period", map[string]int{"id": 1}},
		{leaseSettleScript, "reservation_settled", map[string]int{"status": 1}},
		{voidScript, "ok", map[string]int{"balance": 1, "available": 2, "quota_limit": 3}},
		{accountScript, "ok", map[string]int{"settings_json": 4, "updated_ms": 7, "quota_limit": 8}},
		{settingsScript, "ok", map[string]int{"settings_json": 4, "updated_ms": 7, "quota_limit": 8}},
		{createAccountScript, "ok", map[string]int{"total_purchased": 5, "updated_ms": 7}},
		{grantScript, "ok", map[string]int{"entry_id": 1, "description": 5, "events": 7}},
		{reserveScript, "quota_exceeded", map[string]int{"limit": 1, "used": 2, "resets_at_ms": 3, "unit": 4}},
		{reserveScript, "overage_limit_reached", map[string]int{"required": 1, "available": 2, "cap": 3}},
		{reserveScript, "credits_owed", map[string]int{"required": 1, "available": 2, "owed": 3}},
		{jobCreateScript, "credits_owed", map[string]int{"required": 1, "available": 2, "owed": 3}},
		{refundScript, "refund_not_allowed", map[string]int{"message": 1, "amount": 2, "took": 3}},
		{jobReportScript, "ok", map[string]int{"job_json": 1, "reserved": 2, "period": 7, "events": 8}},
		{jobReportScript, "job_finished", map[string]int{"id": 1, "status": 2}},
		{claimEventsScript, "ok", map[string]int{"left": 1, "id": 2, "record": 3}},
		{paymentReverseScript, "ok", map[string]int{"entry_id": 1, "taken": 2, "key": 4, "events": 7, "shortfall": 8}},
		{paymentPurchaseScript, "ok", map[string]int{"balance_after": 2, "replayed": 3, "created_ms": 5}},
	} {
		got := map[string]int{}
		for name := range tc.names {
			if i, ok := tc.sc.replies[tc.code][name]; ok {
				got[name] = i
			}
		}
		if !reflect.DeepEqual(got, tc.names) {
			t.Errorf("%s %s: %v, want %v (all: %v)", tc.sc.name, tc.code, got, tc.names, tc.sc.replies[tc.code])
		}
	}
}
