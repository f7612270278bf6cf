package caddymodule

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/redisstore"
)

// plansConfig declares two plans in the Caddyfile, builder the default,
// in front of a per-document route (one scan a PDF, as BlueClerk's).
const plansConfig = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	meter {
		redis {$CREDITGATE_REDIS:off}
		plan builder {
			monthly_quota 10
			quota_unit "AI scans"
		}
		plan studio {
			monthly_quota 50
			overage_cap 5
			rate pages 2
			page_limit 30
		}
		default_plan builder
	}
}
http://{SITE} {
	route /scan* {
		meter {
			route plan_scan
			tiers scans *:1
		}
		reverse_proxy {UPSTREAM}
	}
	route /pages* {
		meter {
			route pages
			per_page 1
		}
		reverse_proxy {UPSTREAM}
	}
}
`

func startPlans(t *testing.T) (*gateway, *upstream) {
	u := newUpstream(t)
	src := strings.ReplaceAll(plansConfig, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
	return startGatewayRedis(t, src, ""), u
}

func (g *gateway) accountInForce(id string) accountView {
	g.t.Helper()
	var a accountView
	if code := g.adminDo("GET", "/meter/accounts/"+id, nil, &a); code != 200 {
		g.t.Fatalf("get account %s: HTTP %d", id, code)
	}
	return a
}

func (g *gateway) patch(id string, body map[string]any) {
	g.t.Helper()
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, body, nil); code != 200 {
		g.t.Fatalf("PATCH %s %v: HTTP %d", id, body, code)
	}
}

func (g *gateway) putPlan(name string, body map[string]any) {
	g.t.Helper()
	if code := g.adminDo("PUT", "/meter/plans/"+name, body, nil); code != 200 {
		g.t.Fatalf("PUT plan %s: HTTP %d", name, code)
	}
}

// BlueClerk: "10 free scans per month - Default for all builder
// accounts." An account created with no settings at all is on the
// default plan: 10 scans are free, the 11th is refused (429) and never
// reaches the scanner, with no admin PATCH.
func TestPlanDefaultForNewAccounts(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, u := startPlans(t)
		key := g.newAccount("pl_builder", 0, meter.ModeLive)
		a := g.accountInForce("pl_builder")
		if a.Settings.Plan != "builder" || a.InForce.MonthlyQuota != credits(10) || a.Quota.Limit != credits(10) {
			t.Fatalf("new account: settings %+v in force %+v quota %+v", a.Settings, a.InForce, a.Quota)
		}
		doc := pdftest.Pages(2)
		for i := 0; i < 10; i++ {
			resp, raw := g.post("/scan", key, "application/pdf", doc)
			if resp.StatusCode != 200 {
				t.Fatalf("scan %d: HTTP %d %s", i+1, resp.StatusCode, raw)
			}
			assertMoney(t, resp, "1", "0")
		}
		resp, raw := g.post("/scan", key, "application/pdf", doc)
		if code, _ := errorCode(t, raw); resp.StatusCode != 429 || code != meter.ECodeQuotaExceeded ||
			!strings.Contains(string(raw), "You've used all 10 AI scans") {
			t.Fatalf("11th scan: HTTP %d %s", resp.StatusCode, raw)
		}
		if n := u.requests.Load(); n != 10 {
			t.Errorf("upstream reached %d times, want 10", n)
		}
		g.assertBalance("pl_builder", 0, 0)
		var quota meter.Credits
		for _, e := range g.ledger("pl_builder") {
			quota += e.Quota
		}
		if quota != credits(10) {
			t.Errorf("ledger quota parts sum to %s, want 10", quota)
		}
		// Created with an explicit plan, or none.
		if code := g.adminDo("POST", "/meter/accounts", map[string]any{"id": "pl_none", "plan": ""}, nil); code != 201 {
			t.Fatalf("create without plan: HTTP %d", code)
		}
		if a := g.accountInForce("pl_none"); a.Settings.Plan != "" || a.Quota.Limit != 0 {
			t.Errorf("account without plan: %+v", a.Account)
		}
		var e struct{ Error map[string]any }
		if code := g.adminDo("POST", "/meter/accounts", map[string]any{"id": "pl_bad", "plan": "nope"}, &e); code != 400 {
			t.Errorf("unknown plan: HTTP %d %v", code, e)
		}
	})
}

// A plan changed in one place reaches every account on it; an account's
// own setting wins over its plan's; lowering the quota mid-period leaves
// nothing above the new maximum; and no plan change touches credits that
// were granted. PITFALLS: "Lowering a quota or cap mid-period left
// remaining above the new maximum", "A changed default turned one-time
// credits into a monthly refill".
func TestPlanChangeReachesAccounts(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, u := startPlans(t)
		g.putPlan("team", map[string]any{"monthly_quota": 5})
		k1 := g.newAccount("pl_t1", 3, meter.ModeLive)
		k2 := g.newAccount("pl_t2", 0, meter.ModeLive)
		g.patch("pl_t1", map[string]any{"plan": "team"})
		g.patch("pl_t2", map[string]any{"plan": "team"})
		doc := pdftest.Pages(1)
		for i := 0; i < 3; i++ {
			for _, k := range []string{k1, k2} {
				if resp, raw := g.post("/scan", k, "application/pdf", doc); resp.StatusCode != 200 {
					t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
				}
			}
		}
		if a := g.accountInForce("pl_t2"); a.Quota != (meter.QuotaState{Limit: credits(5), Used: credits(3), Remaining: credits(2), ResetsAt: a.Quota.ResetsAt}) {
			t.Fatalf("quota %+v", a.Quota)
		}
		// Lowered to 2 mid-period: nothing remains for either account.
		g.putPlan("team", map[string]any{"monthly_quota": 2})
		a := g.accountInForce("pl_t2")
		if a.Quota.Limit != credits(2) || a.Quota.Remaining != 0 {
			t.Fatalf("after lowering: quota %+v", a.Quota)
		}
		before := u.requests.Load()
		resp, raw := g.post("/scan", k2, "application/pdf", doc)
		if code, _ := errorCode(t, raw); resp.StatusCode != 429 || code != meter.ECodeQuotaExceeded {
			t.Fatalf("over the lowered quota: HTTP %d %s", resp.StatusCode, raw)
		}
		if u.requests.Load() != before {
			t.Fatal("a refused request reached the upstream")
		}
		// pl_t1 pays from its 3 purchased credits, which no change touched.
		resp, _ = g.post("/scan", k1, "application/pdf", doc)
		assertMoney(t, resp, "1", "2")
		g.assertBalance("pl_t1", 2, 0)
		if a := g.account("pl_t1"); a.TotalPurchased != credits(3) {
			t.Errorf("purchased %s, want 3", a.TotalPurchased)
		}
		// The account's own quota wins over the plan's.
		g.patch("pl_t2", map[string]any{"monthly_quota": 20})
		resp, _ = g.post("/scan", k2, "application/pdf", doc)
		assertMoney(t, resp, "1", "0")
		a = g.accountInForce("pl_t2")
		if a.Quota.Limit != credits(20) || a.Quota.Used != credits(4) || a.Settings.Plan != "team" {
			t.Errorf("own quota: %+v settings %+v", a.Quota, a.Settings)
		}
		// Back to the plan's (null resets the own setting), then a raise.
		g.patch("pl_t2", map[string]any{"monthly_quota": nil})
		g.putPlan("team", map[string]any{"monthly_quota": 6})
		if a := g.accountInForce("pl_t2"); a.Quota.Limit != credits(6) || a.Quota.Remaining != credits(2) {
			t.Errorf("raised plan: %+v", a.Quota)
		}
		g.assertBalance("pl_t2", 0, 0)
	})
}

// A plan's rates and page limit apply to its accounts like their own.
func TestPlanRatesAndLimits(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, u := startPlans(t)
		key := g.newAccount("pl_studio", 10, meter.ModeLive)
		g.patch("pl_studio", map[string]any{"plan": "studio"})
		resp, raw := g.post("/pages", key, "application/pdf", pdftest.Pages(3))
		if resp.StatusCode != 200 {
			t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
		}
		assertMoney(t, resp, "6", "10") // the plan's rate, 3 x 2, from its quota
		// The account's own rate wins over its plan's.
		g.patch("pl_studio", map[string]any{"rates": map[string]any{"pages": 3}})
		resp, _ = g.post("/pages", key, "application/pdf", pdftest.Pages(3))
		assertMoney(t, resp, "9", "10")
		if a := g.accountInForce("pl_studio"); a.Quota.Used != credits(15) {
			t.Errorf("quota used %s, want 15", a.Quota.Used)
		}
		before := u.requests.Load()
		resp, raw = g.post("/scan", key, "application/pdf", pdftest.Pages(31))
		if code, _ := errorCode(t, raw); resp.StatusCode != 413 || code != meter.ECodePageLimitExceeded {
			t.Fatalf("over the plan's page limit: HTTP %d %s", resp.StatusCode, raw)
		}
		if u.requests.Load() != before {
			t.Fatal("a refused request reached the upstream")
		}
		g.assertBalance("pl_studio", 10, 0)

		// A plan that disables its accounts, unless one says otherwise.
		g.putPlan("paused", map[string]any{"enabled": false})
		g.patch("pl_studio", map[string]any{"plan": "paused", "rates": nil})
		before = u.requests.Load()
		resp, raw = g.post("/pages", key, "application/pdf", pdftest.Pages(1))
		if code, _ := errorCode(t, raw); resp.StatusCode != 403 || code != meter.ECodeAccountDisabled {
			t.Fatalf("on a disabled plan: HTTP %d %s", resp.StatusCode, raw)
		}
		if u.requests.Load() != before {
			t.Fatal("a refused request reached the upstream")
		}
		g.patch("pl_studio", map[string]any{"enabled": true})
		resp, _ = g.post("/pages", key, "application/pdf", pdftest.Pages(1))
		assertMoney(t, resp, "1", "9")
		g.assertBalance("pl_studio", 9, 0)
	})
}

// The admin API lists config and stored plans, refuses to change a
// config plan or to name a plan that does not exist.
func TestPlanAdminAPI(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CREDITGATE_REDIS", testRedisURL(t))
	g, _ := startPlans(t)
	g.putPlan("team", map[string]any{"monthly_quota": 5, "quota_unit": "scans"})
	var list struct {
		Plans []struct {
			Name         string        `json:"name"`
			Source       string        `json:"source"`
			MonthlyQuota meter.Credits `json:"monthly_quota"`
		}
		DefaultPlan string `json:"default_plan"`
	}
	if code := g.adminDo("GET", "/meter/plans", nil, &list); code != 200 {
		t.Fatalf("GET plans: HTTP %d", code)
	}
	got := []string{}
	for _, p := range list.Plans {
		got = append(got, p.Name+":"+p.Source+":"+p.MonthlyQuota.String())
	}
	if strings.Join(got, " ") != "builder:config:10 studio:config:50 team:store:5" || list.DefaultPlan != "builder" {
		t.Errorf("plans %v default %q", got, list.DefaultPlan)
	}
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"PUT", "/meter/plans/builder", map[string]any{"monthly_quota": 1}, 400},
		{"DELETE", "/meter/plans/builder", nil, 400},
		{"PUT", "/meter/plans/Bad Name", map[string]any{}, 400},
		{"PUT", "/meter/plans/x", map[string]any{"webhook_url": "https://example.com"}, 400},
		{"PUT", "/meter/plans/x", map[string]any{"time_zone": "Europe/Paris"}, 400},
		{"PUT", "/meter/plans/x", map[string]any{"monthly_quota": -1}, 400},
		{"PUT", "/meter/plans/x", map[string]any{"no_such": 1}, 400},
		{"PUT", "/meter/plans/x", map[string]any{"rates": map[string]any{"drawng": 8}}, 400}, // no route has that rate
		{"GET", "/meter/plans/nope", nil, 404},
		{"DELETE", "/meter/plans/nope", nil, 404},
	} {
		if code := g.adminDo(tt.method, tt.path, tt.body, nil); code != tt.status {
			t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, code, tt.status)
		}
	}
	g.newAccount("pl_admin", 0, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/pl_admin", map[string]any{"plan": "nope"}, nil); code != 400 {
		t.Errorf("PATCH unknown plan: HTTP %d", code)
	}
	if code := g.adminDo("DELETE", "/meter/plans/team", nil, nil); code != 200 {
		t.Errorf("DELETE team: HTTP %d", code)
	}
}

// A plan changed by another gateway (here: written to the shared Redis
// store directly) reaches this gateway's accounts within key_cache_ttl,
// with no admin call to this gateway.
func TestPlanChangeFromAnotherGateway(t *testing.T) {
	url := testRedisURL(t)
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CREDITGATE_REDIS", url)
	u := newUpstream(t)
	src := strings.ReplaceAll(plansConfig, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
	src = strings.Replace(src, "default_plan builder", "default_plan builder\n\t\tkey_cache_ttl 300ms", 1)
	g := startGatewayRedis(t, src, "")
	other, err := redisstore.Open(context.Background(), url, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	g.putPlan("team", map[string]any{"monthly_quota": 1})
	key := g.newAccount("pl_other", 0, meter.ModeLive)
	g.patch("pl_other", map[string]any{"plan": "team"})
	doc := pdftest.Pages(1)
	if resp, raw := g.post("/scan", key, "application/pdf", doc); resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
	}
	if resp, _ := g.post("/scan", key, "application/pdf", doc); resp.StatusCode != 429 {
		t.Fatalf("over the quota: HTTP %d", resp.StatusCode)
	}
	if err := other.PutPlan(context.Background(), meter.Plan{Name: "team", Settings: meter.Settings{MonthlyQuota: credits(3)}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // key_cache_ttl: the next lookup resolves the plan again
	for i := 0; i < 2; i++ {
		resp, raw := g.post("/scan", key, "application/pdf", doc)
		if resp.StatusCode != 200 {
			t.Fatalf("after the change, scan %d: HTTP %d %s", i+2, resp.StatusCode, raw)
		}
	}
	if resp, _ := g.post("/scan", key, "application/pdf", doc); resp.StatusCode != 429 {
		t.Fatalf("over the raised quota: HTTP %d", resp.StatusCode)
	}
	if n := u.requests.Load(); n != 3 {
		t.Errorf("upstream reached %d times, want 3", n)
	}
	g.assertBalance("pl_other", 0, 0)
}
