package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// A request paid from a promotional credit grant, end to end on both
// stores: the grant is spent before the paid credit, the remaining header
// counts it, and once it expires (the store's clock) what it had left
// leaves with an expiration entry and the next request is refused before
// the upstream.
func TestGrantPaysThenExpires(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			u := newUpstream(t)
			global := globalBlock
			if store == "embedded" {
				global = strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1)
			}
			g := startGateway(t, global+strings.ReplaceAll(perPageSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://")))
			grantPaysThenExpires(t, g, u, "e2e_grant_"+store)
		})
	}
}

func grantPaysThenExpires(t *testing.T, g *gateway, u *upstream, id string) {
	key := g.newAccount(id, 1, meter.ModeLive)
	expires := time.Now().Add(1500 * time.Millisecond)
	var out struct{ Grant meter.CreditGrant }
	if code := g.adminDo("POST", "/meter/accounts/"+id+"/grants", map[string]any{"amount": 3, "expires_at": expires,
		"description": "welcome promotion"}, &out); code != 201 || out.Grant.Remaining != credits(3) {
		t.Fatalf("create grant: HTTP %d %+v", code, out.Grant)
	}
	resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(2))
	if resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, raw)
	}
	assertMoney(t, resp, "2", "2") // 1 of the grant and the paid 1 left
	a := g.account(id)
	if len(a.Grants) != 1 || a.Grants[0].Remaining != credits(1) || a.Grants[0].ExpiresAt == nil {
		t.Fatalf("grants %+v", a.Grants)
	}
	es := g.ledger(id) // newest first
	if es[0].Type != meter.EntryUsage || es[0].Amount != -credits(2) || es[0].Granted != credits(2) || es[0].GrantIDs != out.Grant.ID {
		t.Fatalf("usage entry %+v", es[0])
	}
	time.Sleep(time.Until(expires) + 50*time.Millisecond)
	g.assertBalance(id, 1, 0) // the grant's last credit expired
	es = g.ledger(id)
	if es[0].Type != meter.EntryExpiration || es[0].Amount != -credits(1) || es[0].BalanceAfter != credits(1) {
		t.Fatalf("expiration entry %+v", es[0])
	}
	before := u.requests.Load()
	resp, raw = g.post("/v1/convert", key, "application/pdf", pdftest.Pages(2))
	if code, _ := errorCode(t, raw); resp.StatusCode != 402 || code != meter.ECodeInsufficientCredits || u.requests.Load() != before {
		t.Fatalf("after the expiry: %d %s (upstream called %d times)", resp.StatusCode, raw, u.requests.Load()-before)
	}
	g.assertBalance(id, 1, 0)
	if len(g.ledger(id)) != 4 { // purchase, grant, usage, expiration
		t.Fatalf("ledger %+v", g.ledger(id))
	}
	var page struct{ Data []meter.LedgerEntry }
	if code := g.adminDo("GET", "/meter/accounts/"+id+"/transactions?type=expiration", nil, &page); code != 200 ||
		len(page.Data) != 1 || page.Data[0].Amount != -credits(1) {
		t.Fatalf("expiration entries: HTTP %d %+v", code, page.Data)
	}
}
