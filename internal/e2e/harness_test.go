package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/redisstore"
)

// binary is the creditgate executable, built once for the package.
var binary string

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	dir, err := os.MkdirTemp("", "creditgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "creditgate")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/creditgate/creditgate/cmd/creditgate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// config is what differs between the gateways of the tests.
type config struct {
	Redis          string
	Upstream       string
	ReservationTTL string // default 5m
	StoreTimeout   string // default 2s
}

const caddyfile = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	storage file_system {DIR}/storage
	meter {
		redis {REDIS}
		store_timeout {STORE_TIMEOUT}
	}
	log {
		output stderr
		level WARN
	}
}

http://{SITE} {
	meter {
		per_page 1
		route convert
		reservation_ttl {TTL}
	}
	reverse_proxy {UPSTREAM}
}
`

// gateway is one creditgate process.
type gateway struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string // the metered site
	Admin  string // the admin endpoint, http://host:port
	log    string // its stderr
	exited chan struct{}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGateway runs creditgate with cfg and waits until its admin endpoint
// and its site answer. It is killed when the test ends; its log is shown
// if the test failed.
func startGateway(t *testing.T, cfg config) *gateway {
	t.Helper()
	g := launch(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-g.exited:
			t.Fatalf("creditgate exited at start:\n%s", g.logTail())
		default:
		}
		resp, err := http.Get(g.Admin + "/config/")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://")); err == nil {
				c.Close()
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("creditgate did not start within 30s:\n%s", g.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts creditgate with cfg without waiting for it.
func launch(t *testing.T, cfg config) *gateway {
	t.Helper()
	if cfg.ReservationTTL == "" {
		cfg.ReservationTTL = "5m"
	}
	if cfg.StoreTimeout == "" {
		cfg.StoreTimeout = "2s"
	}
	dir := t.TempDir()
	admin, site := freeAddr(t), freeAddr(t)
	src := strings.NewReplacer("{ADMIN}", admin, "{SITE}", site, "{DIR}", dir, "{REDIS}", cfg.Redis,
		"{UPSTREAM}", cfg.Upstream, "{TTL}", cfg.ReservationTTL, "{STORE_TIMEOUT}", cfg.StoreTimeout).Replace(caddyfile)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, URL: "http://" + site, Admin: "http://" + admin, log: filepath.Join(dir, "gateway.log"), exited: make(chan struct{})}
	logf, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(binary, "run", "--config", filepath.Join(dir, "Caddyfile"))
	g.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); logf.Close(); close(g.exited) }()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			t.Logf("gateway %s log:\n%s", g.URL, g.logTail())
		}
	})
	return g
}

// kill ends the process with SIGKILL: no deferred work, no settle.
func (g *gateway) kill() {
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.exited
}

func (g *gateway) logTail() string {
	b, _ := os.ReadFile(g.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// adminDo calls the admin API and decodes a 2xx answer into out.
func (g *gateway) adminDo(method, path string, body, out any) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.Admin+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		g.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// account creates an account with credits and a live key, through the
// admin API, and returns the key.
func (g *gateway) account(id string, credits int) string {
	g.t.Helper()
	g.adminDo("POST", "/meter/accounts", map[string]any{"id": id, "credits": credits}, nil)
	var k struct{ Key string }
	g.adminDo("POST", "/meter/accounts/"+id+"/keys", map[string]any{"mode": "live"}, &k)
	if k.Key == "" {
		g.t.Fatal("no key created")
	}
	return k.Key
}

// upstream is the API behind the gateways. The last path segment is the
// client's request id; the one before it the mode:
//
//	ok      answers 200
//	random  answers 200 (70%), 500 (15%), or holds the request (15%)
//	hold    holds the request
//
// A held request is announced on its ticket's held channel, then waits
// for its release (200), or for the gateway to give up on it.
type upstream struct {
	URL     string
	addr    string
	tickets sync.Map // request id -> *ticket
}

type ticket struct {
	held    chan struct{}
	release chan struct{}
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	u.URL = "http://" + u.addr
	srv := &http.Server{Handler: u}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 {
		http.Error(w, "bad path", 400)
		return
	}
	mode, id := parts[len(parts)-2], parts[len(parts)-1]
	if mode == "random" {
		switch n := rand.IntN(100); {
		case n < 70:
			mode = "ok"
		case n < 85:
			http.Error(w, `{"error":"upstream failed"}`, 500)
			return
		default:
			mode = "hold"
		}
	}
	if mode == "hold" {
		v, _ := u.tickets.Load(id)
		tk, _ := v.(*ticket)
		if tk == nil {
			http.Error(w, "no ticket", 400)
			return
		}
		close(tk.held)
		select {
		case <-tk.release:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"id":%q}`, id)
}

// ticket registers a request id whose upstream request may be held.
func (u *upstream) ticket(id string) *ticket {
	tk := &ticket{held: make(chan struct{}), release: make(chan struct{})}
	u.tickets.Store(id, tk)
	return tk
}

// result is what a client saw of one request.
type result struct {
	ID      string
	Account string
	Pages   int
	Status  int    // 0: no response (aborted, connection error)
	Code    string // the error code of a JSON error body
	Cost    string // X-Request-Cost
	Err     error
	Start   time.Time
	Elapsed time.Duration
	// Held: the upstream held the request and the client aborted it.
	Held bool
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}

// send POSTs a PDF of pages pages to gw's /v1/<mode>/<id> with key. When
// abortHeld, it aborts the request once the upstream announces that it
// holds it.
func send(ctx context.Context, u *upstream, gwURL, key, account, mode, id string, pages int, abortHeld bool) (res result) {
	res = result{ID: id, Account: account, Pages: pages}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if abortHeld {
		tk := u.ticket(id)
		defer u.tickets.Delete(id)
		defer func() {
			select {
			case <-tk.held:
				res.Held = true
			default:
			}
		}()
		go func() {
			select {
			case <-tk.held:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", gwURL+"/v1/"+mode+"/"+id, bytes.NewReader(pdfs[pages]))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	start := time.Now()
	res.Start = start
	resp, err := client.Do(req)
	if err != nil {
		res.Err, res.Elapsed = err, time.Since(start)
		return res
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.Elapsed = time.Since(start)
	res.Status, res.Cost = resp.StatusCode, resp.Header.Get("X-Request-Cost")
	if err != nil {
		// The headers came, the body did not: the status stands.
		res.Err = err
	}
	var e struct {
		Error struct{ Code string }
	}
	if json.Unmarshal(body, &e) == nil {
		res.Code = e.Error.Code
	}
	return res
}

// pdfs[n] is a PDF of n pages.
var pdfs = func() [][]byte {
	p := make([][]byte, 11)
	for i := 1; i < len(p); i++ {
		p[i] = pdftest.Pages(i)
	}
	return p
}()

// openStore opens the store the gateways use, to check it directly.
func openStore(t *testing.T, url string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), url, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ledger returns an account's whole ledger, oldest first, and checks the
// money invariants: balance_after is the running sum, never below zero,
// and the sum is the balance.
func ledger(t *testing.T, s meter.Store, id string) (meter.Account, []meter.LedgerEntry) {
	t.Helper()
	ctx := context.Background()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 1000 {
		t.Fatalf("ledger of %s too long to check", id)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	var sum meter.Credits
	for _, e := range es {
		sum += e.Amount
		if e.BalanceAfter != sum || e.BalanceAfter < 0 {
			t.Errorf("%s entry %s: balance_after %s, running sum %s", id, e.ID, e.BalanceAfter, sum)
		}
	}
	if sum != a.Balance || a.Balance < 0 {
		t.Errorf("%s: ledger sums to %s, balance %s", id, sum, a.Balance)
	}
	return a, es
}

// requestOf is the client's request id of a usage entry (its description
// is "POST /v1/<mode>/<id>").
func requestOf(e meter.LedgerEntry) string {
	return e.Description[strings.LastIndexByte(e.Description, '/')+1:]
}

// credits is n whole credits.
func credits(n int) meter.Credits { return meter.Credits(n) * meter.Scale }

// waitSettled waits until no account of ids holds a reservation.
func waitSettled(t *testing.T, s meter.Store, ids []string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, id := range ids {
		for {
			a, err := s.Account(context.Background(), id)
			if err == nil && a.Reserved == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still holds %v reserved after %v (%v)", id, a.Reserved, limit, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }
