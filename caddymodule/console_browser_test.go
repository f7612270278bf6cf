package caddymodule

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// The console in a real browser: headless Chromium (Debian's chromium,
// installed by `make deps`) driven with chromedp. The tests skip when no
// Chromium is found, unless CI is set: then they fail.

// findChromium returns the browser's path, or skips the test.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium in PATH, and CI is set: install it (make deps)")
	}
	t.Skip("no chromium in PATH (make deps installs it)")
	return ""
}

// screenshotDir is where the browser tests save their screenshots:
// $CONSOLE_SCREENSHOTS, or creditgate-console in the temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "creditgate-console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab that answers basic_auth challenges
// with the operator's credentials, counting them.
type browser struct {
	t          *testing.T
	ctx        context.Context
	challenges atomic.Int64
	shots      string
}

func newBrowser(t *testing.T, user, password string) *browser {
	path := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: screenshotDir(t)}
	// Start the browser, then let every request through and answer the
	// basic_auth challenges: the login of an operator.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	auth := chromedp.Events(ctx, fetch.AuthRequired)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true)}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	go func() {
		for ev, err := range auth {
			if err != nil {
				return
			}
			b.challenges.Add(1)
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: password}})
		}
	}()
	return b
}

// do runs steps within a time limit.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs steps that load a page and checks its status.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp.Status >= 400 {
		b.t.Fatalf("%s: HTTP %d", what, resp.Status)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

func TestConsoleInBrowser(t *testing.T) {
	g, up := startConsole(t, storeBlocks(t)["bolt"])
	key := g.newAccount("acme", 100, meter.ModeLive)
	g.newAccount("globex", 40, meter.ModeLive)
	for _, n := range []int{3, 2} {
		if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(n)); resp.StatusCode != 200 {
			t.Fatalf("metered request: %d", resp.StatusCode)
		}
	}
	b := newBrowser(t, "operator", "console-test")

	// Log in and find the account.
	b.navigate("accounts page", chromedp.Navigate(g.URL+"/console/"))
	if b.challenges.Load() == 0 {
		t.Fatal("the console loaded without a basic_auth challenge")
	}
	b.do("accounts table", chromedp.WaitVisible(chromedp.CSS(`tr[data-account="globex"]`)))
	b.shot("accounts")
	b.do("search", chromedp.SendKeys(chromedp.CSS(`header input[name="q"]`), "acm"))
	b.navigate("search results", chromedp.Submit(chromedp.CSS(`header form.search`)))
	if got := b.text(`#accounts tbody`); !strings.Contains(got, "acme") || strings.Contains(got, "globex") {
		t.Fatalf("search for acm found: %s", got)
	}
	b.navigate("open the account", chromedp.Click(chromedp.CSS(`tr[data-account="acme"] a`)))

	// Its balance and chart values are the API's.
	api := g.account("acme")
	if got := b.text("#balance"); got != api.Balance.String() || got != "95" {
		t.Fatalf("balance on screen %q, API %s", got, api.Balance)
	}
	var series seriesReport
	g.adminDo("GET", "/meter/accounts/acme/usage?granularity=day", nil, &series)
	chart := eval[[][]float64](b, `window.consoleCharts.usage.data`)
	if len(chart) != 2 || len(chart[0]) != len(series.Buckets) {
		t.Fatalf("chart data %v for %d API buckets", chart, len(series.Buckets))
	}
	for i, bk := range series.Buckets {
		if chart[0][i] != float64(bk.Start.Unix()) || credits(chart[1][i]) != bk.Credits {
			t.Errorf("chart day %d: %v credits at %v; API %s at %v", i, chart[1][i], chart[0][i], bk.Credits, bk.Start)
		}
	}
	if series.Total.Credits != credits(5) {
		t.Errorf("API series total %s", series.Total.Credits)
	}
	b.shot("account")

	// Grant credits through the form: a confirmation, then the ledger row.
	b.do("grant form",
		chromedp.SetValue(chromedp.CSS(`#grant-form input[name="amount"]`), "25"),
		chromedp.SetValue(chromedp.CSS(`#grant-form input[name="reason"]`), "goodwill"))
	b.navigate("grant", chromedp.Click(chromedp.CSS(`#grant-form button`)))
	if got := b.text("#summary"); got != "Grant 25 credits (purchase) on account acme. Reason: goodwill" {
		t.Fatalf("confirmation says %q", got)
	}
	b.shot("confirm")
	if g.account("acme").Balance != credits(95) {
		t.Fatal("credits moved before the confirmation")
	}
	b.navigate("confirm", chromedp.Click(chromedp.ID("confirm")))
	row := b.text(`#ledger-table tbody tr:first-child`)
	if !strings.Contains(row, "purchase") || !strings.Contains(row, "25") || !strings.Contains(row, "goodwill (by operator)") {
		t.Fatalf("first ledger row: %s", row)
	}
	g.assertBalance("acme", 120, 0)
	if got := b.text("#balance"); got != "120" {
		t.Fatalf("balance on screen after the grant: %s", got)
	}
	b.shot("granted")

	// Revoke the key: the gateway refuses it, unforwarded.
	b.navigate("revoke", chromedp.Click(chromedp.CSS(`#keys-table tbody tr:first-child button`)))
	b.navigate("confirm revoke", chromedp.Click(chromedp.ID("confirm")))
	if got := b.text(`#keys-table tbody tr:first-child`); !strings.Contains(got, "revoked") {
		t.Fatalf("key row after revoking: %s", got)
	}
	before := up.requests.Load()
	if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 401 {
		t.Fatalf("revoked key: %d", resp.StatusCode)
	}
	if up.requests.Load() != before {
		t.Fatal("a revoked key reached the upstream")
	}
	g.assertBalance("acme", 120, 0)

	// The gateway page: the account is at the top, once the rollup ran.
	runRollup(t)
	b.navigate("gateway page", chromedp.Navigate(g.URL+"/console/gateway"))
	if got := b.text("#top tbody tr:first-child"); !strings.Contains(got, "acme") || !strings.Contains(got, "5") {
		t.Fatalf("top accounts: %s", got)
	}
	// Store-wide, as of the rollup's run: the total is the API's series
	// total of every account (acme's 5; globex used nothing).
	if got := b.text("#asof"); !strings.Contains(got, "all accounts of the store") || !strings.Contains(got, "as of") {
		t.Errorf("gateway page's as-of line: %q", got)
	}
	if got := eval[string](b, `document.getElementById("usage-chart").dataset.total`); got != series.Total.Credits.String() {
		t.Errorf("gateway total on screen %s, API %s", got, series.Total.Credits)
	}
	b.shot("gateway")
}
