package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
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

func TestKeysListAndRevoke(t *testing.T) {
	g, _ := startPerPage(t)
	live := g.newAccount("adm_keys", 10, meter.ModeLive)
	var second struct{ Key, ID string }
	g.adminDo("POST", "/meter/accounts/adm_keys/keys", map[string]any{"mode": "test"}, &second)
	other := g.newAccount("adm_keys_other", 10, meter.ModeLive)

	var list struct{ Data []meter.Key }
	if code := g.adminDo("GET", "/meter/accounts/adm_keys/keys", nil, &list); code != 200 || len(list.Data) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	// Creating a key answers the id that revoking it takes.
	if second.ID != meter.KeyID(meter.HashKey(second.Key)) || !strings.HasPrefix(second.ID, "key_") {
		t.Fatalf("key create answered id %q", second.ID)
	}
	// Both keys may carry the same creation millisecond: find them by mode.
	byMode := func(keys []meter.Key, m meter.Mode) meter.Key {
		for _, k := range keys {
			if k.Mode == m {
				return k
			}
		}
		t.Fatalf("no %s key in %+v", m, keys)
		return meter.Key{}
	}
	k := byMode(list.Data, meter.ModeLive)
	if k.Mode != meter.ModeLive || k.Last4 != live[len(live)-4:] || k.Prefix != "sk_live" || !strings.HasPrefix(k.ID, "key_") || !k.RevokedAt.IsZero() {
		t.Fatalf("first key %+v", k)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), live) || strings.Contains(string(raw), meter.HashKey(live)) {
		t.Fatal("the key listing shows a secret or its hash")
	}

	if resp, _ := g.post("/v1/convert", live, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 200 {
		t.Fatalf("before revoking: %d", resp.StatusCode)
	}
	var revoked meter.Key
	if code := g.adminDo("DELETE", "/meter/accounts/adm_keys/keys/"+k.ID, nil, &revoked); code != 200 || revoked.RevokedAt.IsZero() {
		t.Fatalf("revoke: %d %+v", code, revoked)
	}
	// This gateway forgets the key at once; others within key_cache_ttl.
	resp, raw2 := g.post("/v1/convert", live, "application/pdf", pdftest.Pages(1))
	if code, _ := errorCode(t, raw2); resp.StatusCode != 401 || code != meter.ECodeInvalidAPIKey {
		t.Fatalf("revoked key: %d %s", resp.StatusCode, raw2)
	}
	if resp, _ := g.post("/v1/convert", other, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 200 {
		t.Fatalf("another account's key after a revocation: %d", resp.StatusCode)
	}
	var e map[string]any
	if code := g.adminDo("DELETE", "/meter/accounts/adm_keys_other/keys/"+k.ID, nil, &e); code != 404 {
		t.Fatalf("revoking a key through another account: %d", code)
	}
	g.adminDo("GET", "/meter/accounts/adm_keys/keys", nil, &list)
	if byMode(list.Data, meter.ModeLive).RevokedAt.IsZero() || !byMode(list.Data, meter.ModeTest).RevokedAt.IsZero() {
		t.Fatalf("after revoking: %+v", list.Data)
	}
	g.assertBalance("adm_keys", 9, 0)
}

func TestListAccountsAndTrim(t *testing.T) {
	g := startGateway(t, globalBlock+minimalSite)
	for _, id := range []string{"lst_c", "lst_a", "lst_b"} {
		g.newAccount(id, 1, meter.ModeLive)
	}
	var page struct {
		Data       []meter.Account
		HasMore    bool   `json:"has_more"`
		NextCursor string `json:"next_cursor"`
	}
	// Accounts come in id order; other tests' accounts sort before "lst_".
	if code := g.adminDo("GET", "/meter/accounts?limit=2&cursor=lst_", nil, &page); code != 200 || len(page.Data) != 2 ||
		page.Data[0].ID != "lst_a" || page.Data[1].ID != "lst_b" || !page.HasMore || page.NextCursor != "lst_b" {
		t.Fatalf("first page: %d %+v", code, page)
	}
	if code := g.adminDo("GET", "/meter/accounts?limit=2&cursor=lst_b", nil, &page); code != 200 || page.Data[0].ID != "lst_c" || page.Data[0].Balance != credits(1) {
		t.Fatalf("second page: %d %+v", code, page)
	}

	g.adminDo("POST", "/meter/accounts/lst_a/credits", map[string]any{"amount": 4}, nil)
	var out struct{ Removed int64 }
	if code := g.adminDo("POST", "/meter/accounts/lst_a/trim", map[string]any{"before": "2999-01-01"}, &out); code != 200 || out.Removed != 2 {
		t.Fatalf("trim: %d %+v", code, out)
	}
	if a := g.account("lst_a"); a.Balance != credits(5) || len(g.ledger("lst_a")) != 0 {
		t.Fatalf("after trim: %+v", a)
	}
	var e map[string]any
	if code := g.adminDo("POST", "/meter/accounts/lst_a/trim", map[string]any{"before": "soon"}, &e); code != 400 {
		t.Fatalf("bad trim: %d", code)
	}
}
