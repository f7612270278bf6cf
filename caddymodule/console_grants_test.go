package caddymodule

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// The console's credit grant form and void button, on the embedded store:
// confirmed first, granted once however often the form is resubmitted,
// shown on the account page with what it has left and its expiry; void
// takes what it has left.
func TestConsoleCreditGrants(t *testing.T) {
	g, _ := startConsole(t, strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "d"), 1))
	key := g.newAccount("acme", 10, meter.ModeLive)
	_, page := g.consoleDo("GET", "/console/accounts/acme", nil, "operator")
	if !strings.Contains(page, "No credit grants.") {
		t.Fatalf("account page without grants:\n%s", page)
	}
	form := url.Values{"idem": {formKey(t, page, `id="creditgrant-form`)}, "amount": {"100"}, "expires": {"2099-01-01"},
		"priority": {"2"}, "reason": {"December promotion"}}
	resp, page := g.consoleDo("POST", "/console/accounts/acme/creditgrant", form, "operator")
	if resp.StatusCode != 200 || !strings.Contains(page, "Grant 100 credits to account acme, spent before its paid balance, priority 2, expires 2099-01-01T00:00:00Z") {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, page)
	}
	g.assertBalance("acme", 10, 0)
	form.Set("confirm", "yes")
	for range 2 { // the second submission only lands on the first's outcome
		if resp, page := g.consoleDo("POST", "/console/accounts/acme/creditgrant", form, "operator"); resp.StatusCode != 303 {
			t.Fatalf("grant: %d\n%s", resp.StatusCode, page)
		}
	}
	g.assertBalance("acme", 110, 0)
	a := g.account("acme")
	if len(a.Grants) != 1 || a.Grants[0].Remaining != credits(100) || a.Grants[0].Priority != 2 ||
		a.Grants[0].Description != "December promotion (by operator)" {
		t.Fatalf("grants %+v", a.Grants)
	}
	gid := a.Grants[0].ID
	// The caller's own balance (meter_api) shows the grant too.
	var bal meter.Account
	if resp, raw := g.getRaw("/credits/balance", key); resp.StatusCode != 200 || json.Unmarshal(raw, &bal) != nil ||
		bal.Balance != credits(110) || len(bal.Grants) != 1 || bal.Grants[0].ID != gid || bal.Grants[0].ExpiresAt == nil {
		t.Fatalf("meter_api balance: %d %s", resp.StatusCode, raw)
	}
	_, page = g.consoleDo("GET", "/console/accounts/acme", nil, "operator")
	if !strings.Contains(page, `data-grant="`+gid+`"`) || !strings.Contains(page, `<td class="n remaining">100</td>`) {
		t.Fatalf("the account page does not show the grant:\n%s", page)
	}
	void := url.Values{"idem": {formKey(t, page, `data-grant="`+gid)}, "grant": {gid}, "reason": {"sent by mistake"}, "confirm": {"yes"}}
	if resp, page := g.consoleDo("POST", "/console/accounts/acme/voidgrant", void, "operator"); resp.StatusCode != 303 {
		t.Fatalf("void: %d\n%s", resp.StatusCode, page)
	}
	g.assertBalance("acme", 10, 0)
	if e := g.ledger("acme")[0]; e.Type != meter.EntryGrantVoid || e.Amount != -credits(100) || e.GrantIDs != gid {
		t.Fatalf("void entry %+v", e)
	}
}
