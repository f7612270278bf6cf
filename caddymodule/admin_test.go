package caddymodule

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func TestAdminAPI(t *testing.T) {
	g := startGateway(t, globalBlock+minimalSite)
	type call struct {
		name, method, path string
		body               any
		status             int
		code               string // error code, if an error is expected
	}
	calls := []call{
		{"create", "POST", "/meter/accounts", map[string]any{"id": "adm_a", "credits": 100}, 201, ""},
		{"create again", "POST", "/meter/accounts", map[string]any{"id": "adm_a"}, 409, meter.ECodeAccountExists},
		{"bad id", "POST", "/meter/accounts", map[string]any{"id": "a{b}"}, 400, meter.ECodeInvalid},
		{"unknown field", "POST", "/meter/accounts", map[string]any{"id": "adm_x", "credit": 1}, 400, meter.ECodeBadRequest},
		{"negative credits", "POST", "/meter/accounts", map[string]any{"id": "adm_x", "credits": -1}, 400, meter.ECodeInvalid},
		{"get unknown", "GET", "/meter/accounts/adm_nope", nil, 404, meter.ECodeAccountNotFound},
		{"key for unknown account", "POST", "/meter/accounts/adm_nope/keys", map[string]any{"mode": "live"}, 404, meter.ECodeAccountNotFound},
		{"bad key mode", "POST", "/meter/accounts/adm_a/keys", map[string]any{"mode": "prod"}, 400, meter.ECodeInvalid},
		{"purchase", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": 50, "type": "purchase", "idempotency_key": "order-1"}, 201, ""},
		{"purchase retried", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": 50, "type": "purchase", "idempotency_key": "order-1"}, 201, ""},
		{"fractional adjustment", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": -0.5, "type": "adjustment"}, 201, ""},
		{"negative purchase", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": -5, "type": "purchase"}, 400, meter.ECodeInvalid},
		{"zero amount", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": 0}, 400, meter.ECodeInvalid},
		{"unknown type", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": 1, "type": "gift"}, 400, meter.ECodeInvalid},
		{"overdraw adjustment", "POST", "/meter/accounts/adm_a/credits", map[string]any{"amount": -1000, "type": "adjustment"}, 402, meter.ECodeInsufficientCredits},
		{"credits to unknown account", "POST", "/meter/accounts/adm_nope/credits", map[string]any{"amount": 1}, 404, meter.ECodeAccountNotFound},
		{"unknown endpoint", "DELETE", "/meter/accounts/adm_a", nil, 404, meter.ECodeNotFound},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			var out map[string]any
			status := g.adminDo(c.method, c.path, c.body, &out)
			if status != c.status {
				t.Fatalf("HTTP %d, want %d: %v", status, c.status, out)
			}
			if c.code != "" {
				e, _ := out["error"].(map[string]any)
				if e["code"] != c.code || e["message"] == "" {
					t.Fatalf("error %v, want code %s", out, c.code)
				}
			}
		})
	}
	// 100 + 50 (once, despite the retry) - 0.5
	a := g.account("adm_a")
	if a.Balance != 149500 || a.Available != 149500 || a.Reserved != 0 {
		t.Fatalf("account %+v", a)
	}
	entries := g.ledger("adm_a")
	if len(entries) != 3 || entries[0].Type != meter.EntryAdjustment || entries[0].Amount != -500 || entries[0].BalanceAfter != 149500 ||
		entries[1].Type != meter.EntryPurchase || entries[1].Amount != 50000 || entries[1].BalanceAfter != 150000 {
		t.Fatalf("ledger %+v", entries)
	}

	var k struct {
		Key, Account, Mode, Prefix, Last4 string
	}
	if status := g.adminDo("POST", "/meter/accounts/adm_a/keys", map[string]any{"mode": "test"}, &k); status != 201 {
		t.Fatalf("key: HTTP %d", status)
	}
	if !strings.HasPrefix(k.Key, "sk_test_") || k.Account != "adm_a" || k.Mode != "test" || k.Last4 != k.Key[len(k.Key)-4:] {
		t.Fatalf("key %+v", k)
	}
}
