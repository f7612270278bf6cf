package caddymodule

import (
	"encoding/json"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

func TestDryRun(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_dryrun", 5, meter.ModeLive)
	mp, mpType := multipartBody(t,
		[3]string{"a.pdf", "application/pdf", string(pdftest.Pages(3))},
		[3]string{"b.png", "image/png", "png"},
	)
	resp, raw := g.post("/v1/convert", key, mpType, mp, HeaderDryRun, "true")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderDryRun) != "true" {
		t.Fatalf("dry run: %d %s", resp.StatusCode, raw)
	}
	assertMoney(t, resp, "0", "5")
	var dr struct {
		DryRun     bool `json:"dry_run"`
		Total      meter.Credits
		Pages      int
		Affordable bool
		Available  meter.Credits
		Lines      []struct {
			Name     string
			Units    int64
			UnitCost meter.Credits `json:"unit_cost"`
			Cost     meter.Credits
		}
		Files []struct {
			Name  string
			Kind  string
			Pages int
		}
	}
	if err := json.Unmarshal(raw, &dr); err != nil {
		t.Fatal(err)
	}
	if !dr.DryRun || dr.Total != 4000 || dr.Pages != 4 || !dr.Affordable || dr.Available != 5000 ||
		len(dr.Lines) != 1 || dr.Lines[0].Units != 4 || dr.Lines[0].Cost != 4000 || dr.Lines[0].UnitCost != 1000 ||
		len(dr.Files) < 2 || dr.Files[0].Name != "a.pdf" || dr.Files[0].Pages != 3 || dr.Files[1].Kind != "image" {
		t.Fatalf("dry run body %s", raw)
	}
	if u.requests.Load() != 0 {
		t.Fatal("a dry run reached the upstream")
	}
	g.assertBalance("e2e_dryrun", 5, 0)
	if n := len(g.ledger("e2e_dryrun")); n != 1 {
		t.Fatalf("%d ledger entries, want only the initial purchase", n)
	}

	// The real request is charged exactly the dry run's total.
	resp, _ = g.post("/v1/convert", key, mpType, mp)
	assertMoney(t, resp, "4", "1")

	// Now the same request is unaffordable, and the dry run says so.
	resp, raw = g.post("/v1/convert", key, mpType, mp, HeaderDryRun, "1")
	if err := json.Unmarshal(raw, &dr); err != nil || resp.StatusCode != 200 || dr.Affordable || dr.Available != 1000 {
		t.Fatalf("unaffordable dry run: %d %s", resp.StatusCode, raw)
	}
}

func TestAccountSettings(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_settings", 100, meter.ModeLive)
	patch := func(body string, status int) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if got := g.adminDo("PATCH", "/meter/accounts/e2e_settings", v, &out); got != status {
			t.Fatalf("PATCH %s: HTTP %d, want %d: %v", body, got, status, out)
		}
	}
	// Settings reach the gateway within key_cache_ttl (cached with the
	// key); the test empties the cache instead of waiting.
	resetCache := func() { activeStoreApp(t).keys = newKeyCache(activeStoreApp(t).keys.ttl, 100) }

	patch(`{"page_limit": 5}`, 200)
	resetCache()
	resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(6))
	if resp.StatusCode != 413 {
		t.Fatalf("over the page limit: %d %s", resp.StatusCode, raw)
	}
	if code, d := errorCode(t, raw); code != meter.ECodePageLimitExceeded || d["page_limit"] != float64(5) || d["pages"] != float64(6) {
		t.Fatalf("page limit error %s", raw)
	}
	assertMoney(t, resp, "6", "100")

	patch(`{"rates": {"pages": 0.25}}`, 200)
	resetCache()
	resp, _ = g.post("/v1/convert", key, "application/pdf", pdftest.Pages(5))
	assertMoney(t, resp, "1.25", "98.75")

	patch(`{"enabled": false}`, 200)
	resetCache()
	before := u.requests.Load()
	resp, raw = g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1))
	if code, _ := errorCode(t, raw); resp.StatusCode != 403 || code != meter.ECodeAccountDisabled {
		t.Fatalf("disabled: %d %s", resp.StatusCode, raw)
	}
	if u.requests.Load() != before {
		t.Fatal("a disabled account reached the upstream")
	}

	patch(`{"enabled": null, "rates": null, "page_limit": null}`, 200)
	resetCache()
	resp, _ = g.post("/v1/convert", key, "application/pdf", pdftest.Pages(6))
	assertMoney(t, resp, "6", "92.75")

	patch(`{"colour": "blue"}`, 400)
	patch(`{"page_limit": -1}`, 400)
	patch(`{"rates": {"pages": -1}}`, 400)
	var a meter.Account
	g.adminDo("GET", "/meter/accounts/e2e_settings", nil, &a)
	if !a.Settings.IsEnabled() || a.Settings.PageLimit != 0 || a.Settings.Rates != nil {
		t.Fatalf("settings after reset and refused patches: %+v", a.Settings)
	}
	g.assertBalance("e2e_settings", 92.75, 0)
}
