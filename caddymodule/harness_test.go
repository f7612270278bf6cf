package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/creditgate/creditgate/internal/freeport"
	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// One redis-server for the package. Each test has a database of its own
// (testRedisURL), so its accounts are new however often it runs
// (go test -count).
var testRedis *redistest.Server

var (
	dbMu  sync.Mutex
	dbs   = map[*testing.T]int{}
	dbSeq int
)

// testRedisURL is the URL of t's own database of the test server.
func testRedisURL(t *testing.T) string {
	dbMu.Lock()
	defer dbMu.Unlock()
	db, ok := dbs[t]
	if !ok {
		dbSeq++
		db = dbSeq
		dbs[t] = db
	}
	return fmt.Sprintf("redis://%s/%d", testRedis.Addr, db)
}

func TestMain(m *testing.M) {
	var err error
	testRedis, err = redistest.Start("--databases", "100000")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testRedis.Stop()
	os.Exit(code)
}

// caddyMu serializes tests that run Caddy: there is one Caddy per process.
var caddyMu sync.Mutex

// gateway is a Caddy running in this process with a test Caddyfile.
type gateway struct {
	t     *testing.T
	URL   string // the metered site
	admin string // the admin endpoint
}

func freeAddr(t testing.TB) string {
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadCaddyfile adapts and loads a Caddyfile; {ADMIN}, {SITE} and {REDIS}
// are replaced first.
func loadCaddyfile(t *testing.T, src string, admin, site, redisURL string) error {
	src = strings.NewReplacer("{ADMIN}", admin, "{SITE}", site, "{REDIS}", redisURL).Replace(src)
	if r := os.Getenv("CREDITGATE_TEST_LEASE"); r != "" && redisURL != "" && !strings.Contains(src, "redis_lease") {
		// The suite with leases on (meter/lease), from r requests a second.
		src = strings.Replace(src, "\t\tredis "+redisURL+"\n", "\t\tredis "+redisURL+"\n\t\tredis_lease "+r+"\n", 1)
	}
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	cfg, warnings, err := adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w)
	}
	return caddy.Load(cfg, true)
}

// startGateway runs the Caddyfile template, whose site block is written
// as `http://{SITE}`, until the test ends.
func startGateway(t *testing.T, src string) *gateway {
	return startGatewayRedis(t, src, testRedisURL(t))
}

func startGatewayRedis(t *testing.T, src, redisURL string) *gateway {
	t.Helper()
	caddyMu.Lock()
	g := &gateway{t: t, admin: freeAddr(t)}
	site := freeAddr(t)
	g.URL = "http://" + site
	if err := loadCaddyfile(t, src, g.admin, site, redisURL); err != nil {
		caddyMu.Unlock()
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		caddyMu.Unlock()
	})
	return g
}

// globalBlock is the global options every test config starts with.
const globalBlock = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	meter {
		redis {REDIS}
	}
}
`

// adminDo calls the meter admin API and decodes the JSON answer.
func (g *gateway) adminDo(method, path string, body any, out any) int {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+g.admin+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			g.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// newAccount creates an account with credits and a key of the given mode.
func (g *gateway) newAccount(id string, credits int64, mode meter.Mode) string {
	g.t.Helper()
	if code := g.adminDo("POST", "/meter/accounts", map[string]any{"id": id, "credits": credits}, nil); code != 201 {
		g.t.Fatalf("create account %s: HTTP %d", id, code)
	}
	var k struct{ Key string }
	if code := g.adminDo("POST", "/meter/accounts/"+id+"/keys", map[string]any{"mode": mode}, &k); code != 201 || k.Key == "" {
		g.t.Fatalf("create key: HTTP %d", code)
	}
	return k.Key
}

func (g *gateway) account(id string) meter.Account {
	g.t.Helper()
	var a meter.Account
	if code := g.adminDo("GET", "/meter/accounts/"+id, nil, &a); code != 200 {
		g.t.Fatalf("get account %s: HTTP %d", id, code)
	}
	return a
}

func (g *gateway) ledger(id string) []meter.LedgerEntry {
	g.t.Helper()
	var out struct{ Data []meter.LedgerEntry }
	if code := g.adminDo("GET", "/meter/accounts/"+id+"/transactions?limit=1000", nil, &out); code != 200 {
		g.t.Fatalf("transactions %s: HTTP %d", id, code)
	}
	return out.Data
}

// assertBalance checks balance, reserved and that the ledger sums to the
// balance.
func (g *gateway) assertBalance(id string, balance, reserved float64) {
	g.t.Helper()
	a := g.account(id)
	if a.Balance != credits(balance) || a.Reserved != credits(reserved) {
		g.t.Fatalf("account %s: balance %s reserved %s, want %g and %g", id, a.Balance, a.Reserved, balance, reserved)
	}
	var sum meter.Credits
	for _, e := range g.ledger(id) {
		sum += e.Amount
	}
	if sum != a.Balance {
		g.t.Fatalf("account %s: ledger sums to %s, balance is %s", id, sum, a.Balance)
	}
}

// credits converts a number of credits written in a test to Credits.
func credits(n float64) meter.Credits { return meter.Credits(math.Round(n * meter.Scale)) }

// waitReservedZero waits until nothing is reserved (a settle in flight
// after a client abort), failing after a few seconds.
func (g *gateway) waitReservedZero(id string) {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if g.account(id).Reserved == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("account %s still has credits reserved", id)
}

// post sends body to path with the key and returns the response, its body
// and the decoded JSON error, if any.
func (g *gateway) post(path, key, contentType string, body []byte, hdr ...string) (*http.Response, []byte) {
	g.t.Helper()
	return g.do("POST", path, key, contentType, body, hdr...)
}

// getRaw sends a GET with the key and returns the response and its body.
func (g *gateway) getRaw(path, key string) (*http.Response, []byte) {
	g.t.Helper()
	return g.do("GET", path, key, "", nil)
}

// do sends a request to the site with the key (if any) and headers given
// as name, value pairs.
func (g *gateway) do(method, path, key, contentType string, body []byte, hdr ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, g.URL+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// errorCode decodes {"error":{"code":...}}.
func errorCode(t *testing.T, raw []byte) (string, map[string]any) {
	t.Helper()
	var e struct{ Error map[string]any }
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == nil {
		t.Fatalf("not a JSON error: %q", raw)
	}
	code, _ := e.Error["code"].(string)
	if msg, _ := e.Error["message"].(string); msg == "" {
		t.Fatalf("error without a message: %q", raw)
	}
	return code, e.Error
}
