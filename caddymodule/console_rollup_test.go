package caddymodule

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// runRollup builds the store-wide rollup now, waiting for a run of the
// background runner to finish if one holds the lease.
func runRollup(t *testing.T) {
	t.Helper()
	app := activeStoreApp(t)
	if app.rollup == nil {
		t.Fatal("the app runs no rollup")
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ran, err := app.rollup.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ran {
			return
		}
	}
	t.Fatal("the rollup's lease stayed taken")
}

// smallPages is the console site with 5 accounts a page.
func smallPages(global, upstream string) string {
	site := strings.Replace(consoleSite, "\t\tmeter_console\n", "\t\tmeter_console {\n\t\t\tpage_size 5\n\t\t}\n", 1)
	return global + strings.ReplaceAll(site, "{UPSTREAM}", upstream)
}

var (
	rowAccount = regexp.MustCompile(`<tr data-account="([^"]+)">`)
	rowBalance = regexp.MustCompile(`<td class="n balance[^"]*">([^<]+)</td>`)
	nextLink   = regexp.MustCompile(`<a id="next" href="([^"]+)">`)
)

// seedBalances creates accounts whose balances tie in places, and returns
// their ids in the order the console must show: balance descending, then
// id.
func seedBalances(g *gateway, n int) []string {
	type acct struct {
		id  string
		bal int64
	}
	var as []acct
	for i := range n {
		a := acct{fmt.Sprintf("sort-%02d", i), int64((i * 37) % 11)} // 0..10, with ties
		if code := g.adminDo("POST", "/meter/accounts", map[string]any{"id": a.id, "credits": a.bal}, nil); code != 201 {
			g.t.Fatalf("create %s: %d", a.id, code)
		}
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool {
		if as[i].bal != as[j].bal {
			return as[i].bal > as[j].bal
		}
		return as[i].id < as[j].id
	})
	ids := make([]string, n)
	for i, a := range as {
		ids[i] = a.id
	}
	return ids
}

// TestConsoleSortsAllAccounts: sorted by balance, the accounts pages go
// through every account in the exact order, five a page, each balance
// the API's, on both stores.
func TestConsoleSortsAllAccounts(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			u := newUpstream(t)
			g := startGateway(t, smallPages(global, strings.TrimPrefix(u.URL, "http://")))
			want := seedBalances(g, 13)
			runRollup(t)
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				path := "/console/?sort=balance"
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				resp, body := g.consoleDo("GET", path, nil, "operator")
				if resp.StatusCode != 200 {
					t.Fatalf("page %d: %d", page, resp.StatusCode)
				}
				if !strings.Contains(body, `id="asof"`) {
					t.Fatal("no as-of time on the sorted page")
				}
				ids, bals := rowAccount.FindAllStringSubmatch(body, -1), rowBalance.FindAllStringSubmatch(body, -1)
				if len(ids) > 5 || len(ids) != len(bals) {
					t.Fatalf("page %d: %d rows, %d balances", page, len(ids), len(bals))
				}
				for i, m := range ids {
					got = append(got, m[1])
					if api := g.account(m[1]).Balance.String(); bals[i][1] != api {
						t.Errorf("%s: balance on screen %s, API %s", m[1], bals[i][1], api)
					}
				}
				m := nextLink.FindStringSubmatch(body)
				if m == nil {
					break
				}
				next, err := url.Parse(html.UnescapeString(m[1]))
				if err != nil || next.Query().Get("sort") != "balance" {
					t.Fatalf("next link %s: %v", m[1], err)
				}
				cursor = next.Query().Get("cursor")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("order\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestConsoleSortInBrowser: the operator picks "balance" in the sort
// selector and follows the pages in Chromium: every account in the exact
// order, and the order changes after a grant once the rollup ran again.
func TestConsoleSortInBrowser(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, smallPages(storeBlocks(t)["redis"], strings.TrimPrefix(u.URL, "http://")))
	want := seedBalances(g, 12)
	runRollup(t)
	b := newBrowser(t, "operator", "console-test")
	b.navigate("accounts page", chromedp.Navigate(g.URL+"/console/"))
	b.do("choose balance", chromedp.SetValue(chromedp.CSS(`select[name="sort"]`), "balance"))
	b.navigate("sort", chromedp.Submit(chromedp.CSS(`form.filters`)))
	read := func() []string {
		var ids []string
		for page := 0; ; page++ {
			ids = append(ids, eval[[]string](b, `[...document.querySelectorAll("#accounts tbody tr[data-account]")].map(r => r.dataset.account)`)...)
			if page == 0 {
				b.shot("accounts-sorted")
			}
			if !eval[bool](b, `document.getElementById("next") !== null`) {
				return ids
			}
			b.navigate("next page", chromedp.Click(chromedp.ID("next")))
		}
	}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order in the browser\n got %v\nwant %v", got, want)
	}
	if got := b.text("#asof"); !strings.Contains(got, "as of") {
		t.Errorf("as-of line: %q", got)
	}
	// The last account gets the most credits: first once the rollup ran.
	last := want[len(want)-1]
	g.adminDo("POST", "/meter/accounts/"+last+"/credits", map[string]any{"amount": 100, "type": "purchase"}, nil)
	runRollup(t)
	b.navigate("accounts page", chromedp.Navigate(g.URL+"/console/?sort=balance"))
	if got := read(); len(got) != len(want) || got[0] != last || fmt.Sprint(got[1:]) != fmt.Sprint(want[:len(want)-1]) {
		t.Fatalf("order after the grant: %v", got)
	}
}

// TestConsoleGatewayTotalsAreStoreWide: the gateway page's totals are the
// sum of every account's series (more accounts than gateway_scan would
// have summed), its refusals the store's, on both stores.
func TestConsoleGatewayTotalsAreStoreWide(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			u := newUpstream(t)
			site := strings.Replace(consoleSite, "\t\tmeter_console\n", "\t\tmeter_console {\n\t\t\tgateway_scan 1\n\t\t}\n", 1)
			g := startGateway(t, global+strings.ReplaceAll(site, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://")))
			for i, pages := range []int{3, 1, 2} {
				key := g.newAccount(fmt.Sprintf("tot-%d", i), 10, meter.ModeLive)
				if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(pages)); resp.StatusCode != 200 {
					t.Fatalf("request: %d", resp.StatusCode)
				}
			}
			before := u.requests.Load()
			for range 2 {
				if resp, _ := g.post("/v1/convert", "sk_live_nosuchkey", "application/pdf", pdftest.Pages(1)); resp.StatusCode != 401 {
					t.Fatalf("unknown key: %d", resp.StatusCode)
				}
			}
			if u.requests.Load() != before {
				t.Fatal("a refused request reached the upstream")
			}
			if err := refusalTally.Flush(context.Background(), mustRollup(t), time.Now()); err != nil {
				t.Fatal(err)
			}
			runRollup(t)
			resp, body := g.consoleDo("GET", "/console/gateway", nil, "operator")
			if resp.StatusCode != 200 {
				t.Fatalf("gateway page: %d", resp.StatusCode)
			}
			var sum meter.Credits
			for i := range 3 {
				var series seriesReport
				g.adminDo("GET", fmt.Sprintf("/meter/accounts/tot-%d/usage?granularity=day", i), nil, &series)
				sum += series.Total.Credits
			}
			if sum != credits(6) || !strings.Contains(body, `data-total="`+sum.String()+`"`) {
				t.Errorf("API sum %s; page total %s", sum, regexp.MustCompile(`data-total="[^"]*"`).FindString(body))
			}
			if !regexp.MustCompile(`<tr data-code="invalid_api_key"><td>refused</td><td>invalid_api_key</td><td class="n">2</td>`).MatchString(body) {
				t.Errorf("refusals: %s", regexp.MustCompile(`(?s)<table id="refusals">.*?</table>`).FindString(body))
			}
			top := regexp.MustCompile(`(?s)<table id="top">.*?</table>`).FindString(body)
			if i, j, k := strings.Index(top, "tot-0"), strings.Index(top, "tot-2"), strings.Index(top, "tot-1"); i < 0 || i > j || j > k {
				t.Errorf("top accounts, most usage first: %s", top)
			}
		})
	}
}

func mustRollup(t *testing.T) meter.RollupStore {
	rs, ok := rollupOf(activeStore(t))
	if !ok {
		t.Fatal("the store has no rollup")
	}
	return rs
}

// TestConsoleKeyCreateOnce: a confirmed key form submitted again, after
// the gateway forgot it (a restart, or another gateway), creates no
// second key and shows no secret; on both stores.
func TestConsoleKeyCreateOnce(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			g, _ := startConsole(t, global)
			g.adminDo("POST", "/meter/accounts", map[string]any{"id": "once", "credits": 5}, nil)
			_, page := g.consoleDo("GET", "/console/accounts/once", nil, "operator")
			form := url.Values{"idem": {formKey(t, page, "/console/accounts/once/key")}, "mode": {"live"}, "confirm": {"yes"}}
			origin := []string{"Origin", g.URL}
			resp, body := g.consoleDo("POST", "/console/accounts/once/key", form, "operator", origin...)
			if resp.StatusCode != 201 || !strings.Contains(body, "sk_live_") {
				t.Fatalf("create: %d", resp.StatusCode)
			}
			for _, c := range activeStoreApp(t).consoles {
				c.done = newActionLog(10) // what a restarted or other gateway remembers
			}
			resp, body = g.consoleDo("POST", "/console/accounts/once/key", form, "operator", origin...)
			if resp.StatusCode != 200 || strings.Contains(body, "sk_live_") || !strings.Contains(body, "already") {
				t.Fatalf("resubmitted: %d\n%s", resp.StatusCode, body)
			}
			keys, err := activeStore(t).ListKeys(context.Background(), "once")
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys: %d %v", len(keys), err)
			}
			if !strings.Contains(body, keys[0].ID) {
				t.Errorf("the answer does not name the key %s", keys[0].ID)
			}
		})
	}
}

// TestConsoleChartShowsRefunds: a refund appears as its own column of the
// account's usage table, the routes' credits unchanged; both stores.
func TestConsoleChartShowsRefunds(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			g, _ := startConsole(t, global)
			key := g.newAccount("refunded", 10, meter.ModeLive)
			if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(4)); resp.StatusCode != 200 {
				t.Fatalf("request: %d", resp.StatusCode)
			}
			usage := g.ledger("refunded")[0]
			if _, err := activeStore(t).Refund(context.Background(), meter.Refund{AccountID: "refunded", EntryID: usage.ID, Amount: credits(1.5)}); err != nil {
				t.Fatal(err)
			}
			_, body := g.consoleDo("GET", "/console/accounts/refunded", nil, "operator")
			table := regexp.MustCompile(`(?s)<table id="usage-table">.*?</table>`).FindString(body)
			if !strings.Contains(table, `<th class="n">refunds</th>`) || !strings.Contains(table, `<td class="n">4</td><td class="n refund">1.5</td>`) {
				t.Errorf("usage table: %s", table)
			}
			if !strings.Contains(body, `"refund_total":1.5`) {
				t.Error("the chart's data has no refunds")
			}
		})
	}
}

// TestConsoleListsRecentJobs: the jobs that charged an account are listed
// on its page, newest first, with the store's status and charges; both
// stores.
func TestConsoleListsRecentJobs(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			g, _ := startConsole(t, global)
			g.adminDo("POST", "/meter/accounts", map[string]any{"id": "jobs", "credits": 50}, nil)
			s := activeStore(t)
			ctx := context.Background()
			for i, pages := range []int{2, 3} {
				id := fmt.Sprintf("job_console%d", i)
				if _, err := s.CreateJob(ctx, meter.JobRequest{AccountID: "jobs", ID: id, Route: "convert",
					Rates: map[string]meter.Credits{"page": credits(1)}, EstimatedPages: 5, Estimate: credits(5), TTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.ReportJob(ctx, meter.JobReport{AccountID: "jobs", JobID: id, Done: map[string]int{"page": pages},
					RequestID: fmt.Sprintf("rq%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			// A job that charged nothing is not listed.
			if _, err := s.CreateJob(ctx, meter.JobRequest{AccountID: "jobs", ID: "job_idle", Route: "convert",
				Rates: map[string]meter.Credits{"page": credits(1)}, EstimatedPages: 1, Estimate: credits(1), TTL: time.Minute}); err != nil {
				t.Fatal(err)
			}
			_, body := g.consoleDo("GET", "/console/accounts/jobs", nil, "operator")
			table := regexp.MustCompile(`(?s)<table id="jobs-table">.*?</table>`).FindString(body)
			rows := regexp.MustCompile(`<tr data-job="([^"]+)">`).FindAllStringSubmatch(table, -1)
			if len(rows) != 2 || rows[0][1] != "job_console1" || rows[1][1] != "job_console0" {
				t.Fatalf("jobs listed: %v\n%s", rows, table)
			}
			for _, id := range []string{"job_console0", "job_console1"} {
				j, err := s.Job(ctx, "jobs", id)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf(`<td>%s</td><td class="n">%s</td><td class="n">%s</td>`, j.Status, j.Debited, j.Reserved)
				if !strings.Contains(table, want) {
					t.Errorf("%s: want %s in\n%s", id, want, table)
				}
			}
		})
	}
}
