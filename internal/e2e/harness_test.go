package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/freeport"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/storetest"
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
	// Console mounts meter_console at /console (no auth, loopback only)
	// with a rollup every second.
	Console bool
}

const caddyfile = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	storage file_system {DIR}/storage
	meter {
		redis {REDIS}
		store_timeout {STORE_TIMEOUT}
		job_secret {env.CREDITGATE_JOB_SECRET}
	}
	log {
		output stderr
		level WARN
	}
}

http://{SITE} {
	# Long-running jobs (jobs_test.go): the upstream reports to any gateway.
	handle /jobs {
		meter {
			route jobs
			per_page {
				drawing  10 larger_than 11x17in
				document 1
			}
			job {
				ttl 1m
			}
		}
		reverse_proxy {UPSTREAM}
	}
	@resume path_regexp resume ^/jobs/([^/]+)/resume$
	handle @resume {
		meter_job resume {re.resume.1}
		reverse_proxy {UPSTREAM}
	}
	handle /progress {
		meter_job progress
	}
	# Stripe top-ups (stripe_test.go): events may reach any gateway.
	handle /stripe {
		meter_stripe {
			secret {env.CREDITGATE_STRIPE_SECRET}
			amount usd 1000 100
		}
	}
	{CONSOLE}
	handle {
		meter {
			per_page 1
			route convert
			reservation_ttl {TTL}
		}
		reverse_proxy {UPSTREAM}
	}
}
`

var consoleBlock = map[bool]string{false: "", true: `handle /console* {
		meter_console {
			insecure_no_auth
			rollup_interval 1s
		}
	}`}

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
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
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
		"{UPSTREAM}", cfg.Upstream, "{TTL}", cfg.ReservationTTL, "{STORE_TIMEOUT}", cfg.StoreTimeout,
		"{CONSOLE}", consoleBlock[cfg.Console]).Replace(caddyfile)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, URL: "http://" + site, Admin: "http://" + admin, log: filepath.Join(dir, "gateway.log"), exited: make(chan struct{})}
	logf, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(binary, "run", "--config", filepath.Join(dir, "Caddyfile"))
	// One job secret for every gateway of the package, as a deployment
	// shares one: a job's token is accepted by any of them.
	g.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"CREDITGATE_JOB_SECRET=e2e-job-secret-shared-by-all-gateways", "CREDITGATE_STRIPE_SECRET="+stripeSecret)
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
	es := storetest.OldestFirst(t, s, id)
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
