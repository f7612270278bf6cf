package caddymodule

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// consoleHash is the bcrypt (cost 4, for speed) of "console-test".
const consoleHash = `$2a$04$keQxusxNIopkamZgNQ48iu0n1ZmIA3ELSqnSns3SM22IcfeKhvznu`

// consoleSite meters /v1/* in front of {UPSTREAM} and mounts the console
// behind basic_auth (operator / console-test).
const consoleSite = `
http://{SITE} {
	route /v1/* {
		meter {
			per_page 1
			route convert
		}
		reverse_proxy {UPSTREAM}
	}
	handle /credits/* {
		meter_api
	}
	handle /console* {
		basic_auth {
			operator ` + consoleHash + `
		}
		meter_console
	}
}
`

// storeBlocks are the global options of each store.
func storeBlocks(t *testing.T) map[string]string {
	return map[string]string{
		"redis": globalBlock,
		"bolt":  strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+t.TempDir(), 1),
	}
}

func startConsole(t *testing.T, global string) (*gateway, *upstream) {
	u := newUpstream(t)
	src := global + strings.ReplaceAll(consoleSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
	return startGateway(t, src), u
}

// consoleDo sends a console request as the operator (user "" sends no
// credentials) and does not follow redirects.
func (g *gateway) consoleDo(method, path string, form url.Values, user string, hdr ...string) (*http.Response, string) {
	g.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, g.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, "console-test")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// formKey finds the idempotency key of the form with the given id or
// action in a page.
func formKey(t *testing.T, page, form string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(form) + `"[^>]*>[\s\S]*?name="idem" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form %s in the page", form)
	}
	return m[1]
}

func TestConsoleRefusesUnguardedRoutes(t *testing.T) {
	guardTests := []struct {
		name, site string
		ok         bool
	}{
		{"basic_auth in the same handle", `handle /console* {
			basic_auth {
				operator ` + consoleHash + `
			}
			meter_console
		}`, true},
		{"basic_auth for the whole site", `basic_auth {
			operator ` + consoleHash + `
		}
		meter_console`, true},
		{"forward_auth before it", `handle /console* {
			forward_auth 127.0.0.1:9 {
				uri /check
			}
			meter_console
		}`, true},
		{"nothing in front", `handle /console* {
			meter_console
		}`, false},
		{"basic_auth on another path", `basic_auth /admin/* {
			operator ` + consoleHash + `
		}
		handle /console* {
			meter_console
		}`, false},
		{"basic_auth in another handle", `handle /admin* {
			basic_auth {
				operator ` + consoleHash + `
			}
		}
		handle /console* {
			meter_console
		}`, false},
		{"basic_auth with the same matcher", `basic_auth /console* {
			operator ` + consoleHash + `
		}
		meter_console /console*`, true},
		{"insecure_no_auth", `handle /console* {
			meter_console {
				insecure_no_auth
			}
		}`, true},
	}
	for _, tc := range guardTests {
		t.Run(tc.name, func(t *testing.T) {
			caddyMu.Lock()
			defer caddyMu.Unlock()
			src := globalBlock + "http://{SITE} {\n" + tc.site + "\n}\n"
			err := loadCaddyfile(t, src, freeAddr(t), freeAddr(t), testRedisURL(t))
			if err == nil {
				defer caddy.Stop()
			}
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "no authentication before it")) {
				t.Fatalf("loaded: %v", err)
			}
		})
	}
}

func TestConsoleMoneyActions(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			g, up := startConsole(t, global)
			key := g.newAccount("acme", 100, meter.ModeLive)
			if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(3)); resp.StatusCode != 200 {
				t.Fatalf("metered request: %d", resp.StatusCode)
			}
			charged := g.ledger("acme")[0].CreatedAt // the store's clock: the series' bucket
			g.assertBalance("acme", 97, 0)

			// No credentials: 401 from basic_auth, nothing rendered.
			if resp, _ := g.consoleDo("GET", "/console/accounts/acme", nil, ""); resp.StatusCode != 401 {
				t.Fatalf("without credentials: %d", resp.StatusCode)
			}
			resp, page := g.consoleDo("GET", "/console/accounts/acme", nil, "operator")
			if resp.StatusCode != 200 || !strings.Contains(page, `id="balance">97<`) {
				t.Fatalf("account page: %d\n%s", resp.StatusCode, page)
			}
			// The accounts list shows the API's numbers.
			_, list := g.consoleDo("GET", "/console/", nil, "operator")
			if !regexp.MustCompile(`data-account="acme">\s*<td><a [^>]*>acme</a></td>\s*<td>—</td>\s*<td><span class="ok">enabled</span></td>\s*` +
				`<td class="n balance ">97</td><td class="n">0</td><td class="n">97</td>[\s\S]*?<td class="n">3</td>`).MatchString(list) {
				t.Fatalf("accounts list:\n%s", list)
			}
			// Without JavaScript the chart is a table: the request's day.
			today := charged.UTC().Format("2006-01-02")
			if !strings.Contains(page, `<tr><td>`+today+`</td><td class="n">3</td><td class="n">1</td><td class="n">3</td></tr>`) {
				t.Fatalf("no usage row for %s in the table:\n%s", today, page)
			}
			// By hour, the last 24 hours: the row of the request's hour.
			if _, hourly := g.consoleDo("GET", "/console/accounts/acme?hours=24", nil, "operator"); !strings.Contains(hourly,
				`<tr><td>`+charged.UTC().Format("2006-01-02 15:00")+`</td><td class="n">3</td><td class="n">1</td><td class="n">3</td></tr>`) {
				t.Fatalf("no usage row for %v in the hourly table:\n%s", charged, hourly)
			}
			idem := formKey(t, page, `id="grant-form`)
			grant := url.Values{"idem": {idem}, "type": {"purchase"}, "amount": {"50"}, "reason": {"invoice 1042"}}

			// A cross-origin submission is refused before anything else.
			resp, _ = g.consoleDo("POST", "/console/accounts/acme/grant", url.Values{"idem": {idem}, "type": {"purchase"},
				"amount": {"50"}, "reason": {"x"}, "confirm": {"yes"}}, "operator", "Sec-Fetch-Site", "cross-site")
			if resp.StatusCode != 403 {
				t.Fatalf("cross-site grant: %d", resp.StatusCode)
			}
			// The first POST only asks for confirmation.
			resp, page = g.consoleDo("POST", "/console/accounts/acme/grant", grant, "operator")
			if resp.StatusCode != 200 || !strings.Contains(page, "Grant 50 credits (purchase) on account acme") {
				t.Fatalf("confirmation: %d\n%s", resp.StatusCode, page)
			}
			g.assertBalance("acme", 97, 0)
			grant.Set("confirm", "yes")
			resp, _ = g.consoleDo("POST", "/console/accounts/acme/grant", grant, "operator")
			first := resp.Header.Get("Location")
			if resp.StatusCode != 303 || !strings.Contains(first, "done=") {
				t.Fatalf("grant: %d %q", resp.StatusCode, first)
			}
			// The same form again lands nowhere new.
			resp, _ = g.consoleDo("POST", "/console/accounts/acme/grant", grant, "operator")
			if resp.StatusCode != 303 || resp.Header.Get("Location") != first {
				t.Fatalf("resubmitted grant: %d %q, first %q", resp.StatusCode, resp.Header.Get("Location"), first)
			}
			g.assertBalance("acme", 147, 0)
			led := g.ledger("acme")
			if e := led[0]; e.Type != meter.EntryPurchase || e.Amount != credits(50) || e.Description != "invoice 1042 (by operator)" {
				t.Fatalf("grant entry %+v", e)
			}

			// Refund the usage entry, with confirmation, once.
			usage := led[1]
			if usage.Type != meter.EntryUsage {
				t.Fatalf("entry %+v", usage)
			}
			_, page = g.consoleDo("GET", "/console/accounts/acme?refund="+usage.ID, nil, "operator")
			refund := url.Values{"idem": {formKey(t, page, `id="refund`)}, "entry": {usage.ID}, "reason": {"bad scan"}, "confirm": {"yes"}}
			for range 2 {
				if resp, page := g.consoleDo("POST", "/console/accounts/acme/refund", refund, "operator"); resp.StatusCode != 303 {
					t.Fatalf("refund: %d\n%s", resp.StatusCode, page)
				}
			}
			g.assertBalance("acme", 150, 0)

			// An adjustment may remove credits; bad forms move nothing.
			adj := url.Values{"idem": {newFormKey()}, "type": {"adjustment"}, "amount": {"-7.5"}, "reason": {"duplicate top-up"}, "confirm": {"yes"}}
			if resp, page := g.consoleDo("POST", "/console/accounts/acme/grant", adj, "operator"); resp.StatusCode != 303 {
				t.Fatalf("adjustment: %d\n%s", resp.StatusCode, page)
			}
			g.assertBalance("acme", 142.5, 0)
			for name, form := range map[string]url.Values{
				"negative purchase": {"type": {"purchase"}, "amount": {"-1"}, "reason": {"x"}},
				"no reason":         {"type": {"purchase"}, "amount": {"1"}},
				"zero":              {"type": {"adjustment"}, "amount": {"0"}, "reason": {"x"}},
				"not a number":      {"type": {"purchase"}, "amount": {"ten"}, "reason": {"x"}},
				"no form key":       {"type": {"purchase"}, "amount": {"1"}, "reason": {"x"}, "idem": {""}},
			} {
				if !form.Has("idem") {
					form.Set("idem", newFormKey())
				}
				form.Set("confirm", "yes")
				if resp, page := g.consoleDo("POST", "/console/accounts/acme/grant", form, "operator"); resp.StatusCode != 400 || !strings.Contains(page, "invalid") {
					t.Errorf("%s: %d\n%s", name, resp.StatusCode, page)
				}
			}
			g.assertBalance("acme", 142.5, 0)

			// Disabling the account refuses its requests, unforwarded.
			off := url.Values{"idem": {newFormKey()}, "enabled": {"false"}, "confirm": {"yes"}}
			if resp, _ := g.consoleDo("POST", "/console/accounts/acme/enable", off, "operator"); resp.StatusCode != 303 {
				t.Fatalf("disable: %d", resp.StatusCode)
			}
			before := up.requests.Load()
			if resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 403 || !strings.Contains(string(raw), "account_disabled") {
				t.Fatalf("disabled account: %d %s", resp.StatusCode, raw)
			}
			if up.requests.Load() != before {
				t.Fatal("a disabled account reached the upstream")
			}
			on := url.Values{"idem": {newFormKey()}, "enabled": {"true"}, "confirm": {"yes"}}
			if resp, _ := g.consoleDo("POST", "/console/accounts/acme/enable", on, "operator"); resp.StatusCode != 303 || !g.account("acme").Settings.IsEnabled() {
				t.Fatalf("enable: %d", resp.StatusCode)
			}
			g.assertBalance("acme", 142.5, 0)

			// A key's secret is shown once; the form again does not show it.
			_, page = g.consoleDo("GET", "/console/accounts/acme", nil, "operator")
			mk := url.Values{"idem": {formKey(t, page, `id="key-form`)}, "mode": {"live"}, "confirm": {"yes"}}
			resp, page = g.consoleDo("POST", "/console/accounts/acme/key", mk, "operator")
			secret := regexp.MustCompile(`<pre id="secret">([^<]+)</pre>`).FindStringSubmatch(page)
			if resp.StatusCode != 201 || secret == nil {
				t.Fatalf("new key: %d\n%s", resp.StatusCode, page)
			}
			resp, page = g.consoleDo("POST", "/console/accounts/acme/key", mk, "operator")
			if resp.StatusCode != 200 || strings.Contains(page, secret[1]) || !strings.Contains(page, `id="already"`) {
				t.Fatalf("resubmitted key form: %d\n%s", resp.StatusCode, page)
			}
			if _, page = g.consoleDo("GET", "/console/accounts/acme", nil, "operator"); strings.Contains(page, secret[1]) {
				t.Fatal("the account page shows a key secret")
			}
			var keys struct{ Data []meter.Key }
			g.adminDo("GET", "/meter/accounts/acme/keys", nil, &keys)
			if len(keys.Data) != 2 {
				t.Fatalf("keys %+v", keys.Data)
			}

			// Revoke the new key: the gateway refuses it, unforwarded.
			newKey := keys.Data[1].ID
			m := regexp.MustCompile(`name="idem" value="([0-9a-f]+)"><input type="hidden" name="key" value="` + newKey).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no revoke form for %s", newKey)
			}
			rv := url.Values{"idem": {m[1]}, "key": {newKey}}
			if resp, page := g.consoleDo("POST", "/console/accounts/acme/revoke", rv, "operator"); resp.StatusCode != 200 || !strings.Contains(page, "Revoke key "+newKey) {
				t.Fatalf("revoke confirmation: %d", resp.StatusCode)
			}
			rv.Set("confirm", "yes")
			if resp, _ := g.consoleDo("POST", "/console/accounts/acme/revoke", rv, "operator"); resp.StatusCode != 303 {
				t.Fatalf("revoke: %d", resp.StatusCode)
			}
			before = up.requests.Load()
			if resp, _ := g.post("/v1/convert", secret[1], "application/pdf", pdftest.Pages(1)); resp.StatusCode != 401 {
				t.Fatalf("revoked key: %d", resp.StatusCode)
			}
			if up.requests.Load() != before {
				t.Fatal("a revoked key reached the upstream")
			}
			g.assertBalance("acme", 142.5, 0)
		})
	}
}

// Disabling and enabling an account on a plan through the console keeps
// the plan's limits in force, as the admin API's PATCH does; the pages show
// the plan and its quota.
func TestConsoleKeepsThePlan(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			global = strings.Replace(global, "\tmeter {\n", "\tmeter {\n\t\tplan builder {\n\t\t\tmonthly_quota 10\n\t\t}\n\t\tdefault_plan builder\n", 1)
			g, _ := startConsole(t, global)
			g.newAccount("acme", 5, meter.ModeLive)
			if a := g.account("acme"); a.Settings.Plan != "builder" || a.Quota.Limit != credits(10) {
				t.Fatalf("account on the plan: %+v", a)
			}
			for _, on := range []string{"false", "true"} {
				form := url.Values{"idem": {newFormKey()}, "enabled": {on}, "confirm": {"yes"}}
				if resp, page := g.consoleDo("POST", "/console/accounts/acme/enable", form, "operator"); resp.StatusCode != 303 {
					t.Fatalf("enabled=%s: %d\n%s", on, resp.StatusCode, page)
				}
				if a := g.account("acme"); a.Settings.Plan != "builder" || a.Quota.Limit != credits(10) || a.Settings.IsEnabled() != (on == "true") {
					t.Fatalf("after enabled=%s: %+v", on, a)
				}
			}
			_, page := g.consoleDo("GET", "/console/accounts/acme", nil, "operator")
			if !strings.Contains(page, `<span class="tag">plan builder</span>`) || !strings.Contains(page, `<tr><th>monthly quota</th><td>10 </td></tr>`) {
				t.Fatalf("account page:\n%s", page)
			}
		})
	}
}
