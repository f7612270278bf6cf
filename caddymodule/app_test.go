package caddymodule

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
)

const minimalSite = `
http://{SITE} {
	route {
		meter {
			per_page 1
		}
		respond "done"
	}
}
`

func TestStoreConfigErrors(t *testing.T) {
	tests := []struct {
		name, redis, want string
	}{
		{"not a redis URL", "http://127.0.0.1:6379", "expected a redis:// or rediss:// URL"},
		{"malformed URL", "redis://127.0.0.1:notaport", "meter: opening store"},
		{"nothing listening", "redis://" + freeAddr(t), "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caddyMu.Lock()
			defer caddyMu.Unlock()
			start := time.Now()
			err := loadCaddyfile(t, globalBlock+minimalSite, freeAddr(t), freeAddr(t), tt.redis)
			if err == nil {
				caddy.Stop()
				t.Fatal("config loaded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("took %s to fail", time.Since(start))
			}
		})
	}
}

// Without Redis, the embedded store keeps accounts in Caddy's data
// directory (XDG_DATA_HOME here) and they survive a restart.
func TestEmbeddedStoreByDefault(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	noMeterOption := "{\n\tadmin {ADMIN}\n\tpersist_config off\n}\n" + minimalSite
	g := startGatewayRedis(t, noMeterOption, "")
	key := g.newAccount("e2e_embedded", 10, meter.ModeLive)
	resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(3))
	assertMoney(t, resp, "3", "7")
	// The request forgot its settled hold's answer (meter.Forgetter): the
	// store keeps none for a repeat that will not come.
	if bs, ok := meter.StoreAs[*boltstore.Store](activeStoreApp(t).Store()); !ok || bs.Kept() != 0 {
		t.Fatalf("embedded store %v keeps answers: want none", ok)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_DATA_HOME"), "caddy", "creditgate", "meter.db")); err != nil {
		t.Fatalf("no database in Caddy's data directory: %v", err)
	}
	// A stop and a fresh start reopen the same database.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	site := strings.TrimPrefix(g.URL, "http://")
	if err := loadCaddyfile(t, noMeterOption, g.admin, site, ""); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	resp, _ = g.post("/", key, "application/pdf", pdftest.Pages(1))
	assertMoney(t, resp, "1", "6")
	g.assertBalance("e2e_embedded", 6, 0)
}

func TestEmbeddedStoreDataDirErrors(t *testing.T) {
	caddyMu.Lock()
	defer caddyMu.Unlock()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := "{\n\tadmin {ADMIN}\n\tpersist_config off\n\tmeter {\n\t\tdata_dir " + file + "\n\t}\n}\n" + minimalSite
	err := loadCaddyfile(t, src, freeAddr(t), freeAddr(t), "")
	if err == nil {
		caddy.Stop()
		t.Fatal("a data_dir that is a file was accepted")
	}
	if !strings.Contains(err.Error(), "data directory "+file) {
		t.Fatalf("error %q does not name the directory", err)
	}
}

// Redis going away mid-traffic fails closed with 503 and charges nothing;
// when it comes back, metering resumes without a restart.
func TestRedisOutageFailsClosed(t *testing.T) {
	rs := redistest.New(t, "--appendonly", "yes")
	g := startGatewayRedis(t, globalBlock+minimalSite, rs.URL())
	key := g.newAccount("e2e_outage", 10, meter.ModeLive)
	if resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 200 {
		t.Fatalf("before the outage: %d", resp.StatusCode)
	}
	rs.Kill()
	resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(1))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d %s", resp.StatusCode, raw)
	}
	if code, _ := errorCode(t, raw); code != meter.ECodeMeteringUnavailable {
		t.Fatalf("code %q", code)
	}
	if resp.Header.Get("Retry-After") == "" || strings.Contains(string(raw), "refused") {
		t.Fatalf("503 without Retry-After or leaking the cause: %s", raw)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	resp, _ = g.post("/", key, "application/pdf", pdftest.Pages(2))
	if resp.StatusCode != 200 {
		t.Fatalf("after the outage: %d", resp.StatusCode)
	}
	g.assertBalance("e2e_outage", 7, 0)
}

// A config reload reuses the open store: the pool holds one store per
// address, referenced once after the old config is cleaned up.
func TestReloadSharesStore(t *testing.T) {
	g := startGateway(t, globalBlock+minimalSite)
	key := g.newAccount("e2e_reload", 10, meter.ModeLive)
	before := activeStore(t)
	site := strings.TrimPrefix(g.URL, "http://")
	if err := loadCaddyfile(t, globalBlock+strings.ReplaceAll(minimalSite, "per_page 1", "per_page 2"), g.admin, site, testRedisURL(t)); err != nil {
		t.Fatal(err)
	}
	if after := activeStore(t); after != before {
		t.Fatal("reload opened a new store")
	}
	if refs, ok := stores.References(activeStoreApp(t).poolKey); !ok || refs != 1 {
		t.Fatalf("store pool references = %d, %v; want 1", refs, ok)
	}
	// Keep-alive connections to the old server are closed by the reload,
	// which finishes in the background: let it, and use new connections.
	time.Sleep(300 * time.Millisecond)
	http.DefaultClient.CloseIdleConnections()
	resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(1))
	assertMoney(t, resp, "2", "8")
}

func activeStore(t *testing.T) meter.Store {
	t.Helper()
	return activeStoreApp(t).Store()
}

func activeStoreApp(t *testing.T) *App {
	t.Helper()
	app, err := caddy.ActiveContext().App("meter")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*App)
}

// Page counting is admitted by memory: when the budget is taken, a request
// waits a moment, then gets 503 server_busy and is not charged.
func TestCountMemoryBudget(t *testing.T) {
	src := strings.Replace(globalBlock, "redis {REDIS}", "redis {REDIS}\n\t\tcount_memory 64MB", 1) + minimalSite
	g := startGateway(t, src)
	key := g.newAccount("e2e_budget", 10, meter.ModeLive)
	app := activeStoreApp(t)
	if app.budget.Capacity() != 64_000_000 {
		t.Fatalf("capacity %d", app.budget.Capacity())
	}
	release, err := app.budget.Hold(context.Background(), app.budget.Capacity())
	if err != nil {
		t.Fatal(err)
	}
	resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(2))
	if code, _ := errorCode(t, raw); resp.StatusCode != 503 || code != meter.ECodeServerBusy || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the budget taken: %d %s", resp.StatusCode, raw)
	}
	release()
	resp, _ = g.post("/", key, "application/pdf", pdftest.Pages(2))
	assertMoney(t, resp, "2", "8")
	g.assertBalance("e2e_budget", 8, 0)
}

// With ledger_retention, old ledger entries are trimmed in the background;
// balances are untouched.
func TestLedgerRetention(t *testing.T) {
	src := strings.Replace(globalBlock, "redis {REDIS}", "redis {REDIS}\n\t\tledger_retention 1s\n\t\tretention_interval 100ms", 1) + minimalSite
	g := startGateway(t, src)
	key := g.newAccount("e2e_retention", 10, meter.ModeLive)
	resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(1))
	assertMoney(t, resp, "1", "9")
	if n := len(g.ledger("e2e_retention")); n != 2 {
		t.Fatalf("%d ledger entries before the retention passed, want 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(g.ledger("e2e_retention")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("entries older than ledger_retention were not trimmed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := g.account("e2e_retention"); a.Balance != credits(9) {
		t.Fatalf("balance after trimming: %s", a.Balance)
	}
}

// The gateway meters on a Redis Cluster of three masters given by
// redis_cluster, accounts spread over the nodes.
func TestRedisClusterOption(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	global := strings.Replace(globalBlock, "redis {REDIS}", "redis_cluster "+strings.Join(cl.Addrs(), " "), 1)
	g := startGatewayRedis(t, global+minimalSite, "")
	for i := 0; i < 6; i++ {
		id := "e2e_cluster_" + strconv.Itoa(i)
		key := g.newAccount(id, 5, meter.ModeLive)
		resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(i%3+1))
		assertMoney(t, resp, strconv.Itoa(i%3+1), strconv.Itoa(5-(i%3+1)))
		g.assertBalance(id, float64(5-(i%3+1)), 0)
	}
}

// redis_pipeline: concurrent requests' scripts share writes, and money
// stays exact: 40 one-page requests at once against 25 credits.
func TestRedisPipelineOption(t *testing.T) {
	id := uniqueID("pipe")
	g := startGateway(t, strings.Replace(globalBlock, "redis {REDIS}", "redis {REDIS}\n\t\tredis_pipeline", 1)+minimalSite)
	key := g.newAccount(id, 25, meter.ModeLive)
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(1))
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 25 || n[402] != 15 {
		t.Fatalf("status counts %v, want 25 x 200 and 15 x 402", n)
	}
	g.assertBalance(id, 0, 0)
}
