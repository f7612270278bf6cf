package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// A gateway killed (SIGKILL) while the upstream holds a request, between
// reserve and settle: the reservation holds the credits until its TTL,
// then they are available again, uncharged, on every gateway.
func TestGatewayKilledBetweenReserveAndSettle(t *testing.T) {
	rs := redistest.New(t)
	up := newUpstream(t)
	cfg := config{Redis: rs.URL(), Upstream: up.addr, ReservationTTL: "2s"}
	victim, other := startGateway(t, cfg), startGateway(t, cfg)
	key := victim.account("victim", 10)
	s := openStore(t, rs.URL())
	ctx := context.Background()

	tk := up.ticket("held")
	done := make(chan result, 1)
	go func() { done <- send(ctx, up, victim.URL, key, "victim", "hold", "held", 4, false) }()
	select {
	case <-tk.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never got the request")
	}
	reservedAt := time.Now()
	if a, err := s.Account(ctx, "victim"); err != nil || a.Reserved != credits(4) || a.Available != credits(6) {
		t.Fatalf("while held: %+v %v", a, err)
	}
	victim.kill()
	if r := <-done; r.Status != 0 {
		t.Errorf("the client of the killed gateway got %d", r.Status)
	}

	// Still held on the surviving gateway's side until the TTL.
	if r := send(ctx, up, other.URL, key, "victim", "ok", "too-big", 7, false); r.Status != 402 || r.Code != meter.ECodeInsufficientCredits {
		t.Errorf("7 pages while 4 are held: %d %s", r.Status, r.Code)
	}
	for {
		a, err := s.Account(ctx, "victim")
		if err != nil {
			t.Fatal(err)
		}
		if a.Reserved == 0 {
			since := time.Since(reservedAt)
			if since < 1500*time.Millisecond {
				t.Errorf("released after %v, before its TTL", since)
			}
			t.Logf("released %v after the reserve (TTL 2s)", since.Round(time.Millisecond))
			break
		}
		if time.Since(reservedAt) > 5*time.Second {
			t.Fatalf("still reserved %v after the reserve: %+v", time.Since(reservedAt), a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := send(ctx, up, other.URL, key, "victim", "ok", "all", 10, false); r.Status != 200 || r.Cost != "10" {
		t.Errorf("spending all 10 credits after the release: %d %s cost %q", r.Status, r.Code, r.Cost)
	}
	a, es := ledger(t, s, "victim")
	if a.Balance != 0 || len(es) != 2 || requestOf(es[1]) != "all" {
		t.Errorf("after: balance %s, ledger %+v", a.Balance, es)
	}
}

// traffic is clients sending "ok" requests of 1 to 3 pages in a loop,
// spread over gateways and accounts, until stopped.
type traffic struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []result
}

func runTraffic(up *upstream, gws []*gateway, keys, ids []string, clients int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for c := 0; c < clients; c++ {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				a, gw := (c+n)%len(ids), gws[(c+n/2)%len(gws)]
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r := send(ctx, up, gw.URL, keys[a], ids[a], "ok", fmt.Sprintf("t%d_%d", c, n), 1+n%3, false)
				cancel()
				tr.mu.Lock()
				tr.results = append(tr.results, r)
				tr.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return tr
}

func (tr *traffic) Stop() []result {
	close(tr.stop)
	tr.wg.Wait()
	return tr.results
}

// checkCharges checks the accounts' ledgers against what the clients saw:
// every usage entry is one 200 response of the account, charged its price
// once; every 200 that said it cost its price has its entry. It returns
// how many 200s said cost 0 (the gateway could not confirm the commit)
// but were charged, and how many were not.
func checkCharges(t *testing.T, s meter.Store, ids []string, initial int, results []result) (chargedUnconfirmed, free int) {
	t.Helper()
	byID := map[string]result{}
	for _, r := range results {
		byID[r.ID] = r
	}
	charged := map[string]bool{}
	for _, id := range ids {
		a, es := ledger(t, s, id)
		if es[0].Amount != credits(initial) {
			t.Errorf("%s: first entry %+v", id, es[0])
		}
		for _, e := range es[1:] {
			r, ok := byID[requestOf(e)]
			switch {
			case e.Type != meter.EntryUsage || !ok || r.Account != id:
				t.Errorf("%s: entry %+v matches no request of the account", id, e)
			case charged[r.ID]:
				t.Errorf("%s: request %s charged twice", id, r.ID)
			case e.Amount != -credits(r.Pages):
				t.Errorf("%s: request %s of %d pages charged %s", id, r.ID, r.Pages, -e.Amount)
			case r.Status != 200:
				t.Errorf("%s: request %s answered %d %s, charged", id, r.ID, r.Status, r.Code)
			case r.Cost == "0":
				chargedUnconfirmed++
			}
			charged[r.ID] = true
		}
		if a.Reserved != 0 {
			t.Errorf("%s: %s still reserved", id, a.Reserved)
		}
	}
	for _, r := range results {
		switch {
		case r.Status != 200:
		case r.Cost == strconv.Itoa(r.Pages) && !charged[r.ID]:
			t.Errorf("request %s: 200, cost %s, and no ledger entry: a lost debit", r.ID, r.Cost)
		case r.Cost == "0" && !charged[r.ID]:
			free++
		case r.Cost != "0" && r.Cost != strconv.Itoa(r.Pages):
			t.Errorf("request %s of %d pages: X-Request-Cost %q", r.ID, r.Pages, r.Cost)
		}
	}
	return chargedUnconfirmed, free
}

// faultSetup starts two gateways on rs with a short store timeout and a
// few rich accounts.
func faultSetup(t *testing.T, rs *redistest.Server) (*upstream, []*gateway, []string, []string) {
	up := newUpstream(t)
	cfg := config{Redis: rs.URL(), Upstream: up.addr, ReservationTTL: "2s", StoreTimeout: "300ms"}
	gws := []*gateway{startGateway(t, cfg), startGateway(t, cfg)}
	ids, keys := make([]string, 4), make([]string, 4)
	for i := range ids {
		ids[i] = fmt.Sprintf("rich_%d", i)
		keys[i] = gws[i%2].account(ids[i], 100000)
	}
	return up, gws, ids, keys
}

// outage checks the requests that started in [from, to) and were
// answered: all 503 metering_unavailable, answered within bound.
func outage(t *testing.T, results []result, from, to time.Time, bound time.Duration) (n int, slowest time.Duration) {
	t.Helper()
	for _, r := range results {
		if r.Start.Before(from) || !r.Start.Before(to) || r.Start.Add(r.Elapsed).After(to) {
			continue
		}
		n++
		if r.Status != 503 || r.Code != meter.ECodeMeteringUnavailable {
			t.Errorf("request %s during the outage: %d %q %v", r.ID, r.Status, r.Code, r.Err)
		}
		slowest = max(slowest, r.Elapsed)
		if r.Elapsed > bound {
			t.Errorf("request %s during the outage took %v", r.ID, r.Elapsed)
		}
	}
	if n == 0 {
		t.Error("no request was answered during the outage")
	}
	return n, slowest
}

// recovered checks that every request started after from was a 200, and
// returns how long after since the first 200 started.
func recovered(t *testing.T, results []result, since, from time.Time) time.Duration {
	t.Helper()
	first, n := time.Duration(-1), 0
	for _, r := range results {
		if r.Status == 200 && r.Start.After(since) && (first < 0 || r.Start.Sub(since) < first) {
			first = r.Start.Sub(since)
		}
		if r.Start.After(from) {
			n++
			if r.Status != 200 {
				t.Errorf("request %s after recovery: %d %s %v", r.ID, r.Status, r.Code, r.Err)
			}
		}
	}
	if n == 0 {
		t.Error("no request after recovery")
	}
	return first
}

// Redis with AOF (appendfsync always) crashes (SIGKILL) under traffic and
// comes back: nothing committed is lost, requests during the outage get
// 503 metering_unavailable and are not charged, and the gateways recover
// by themselves.
func TestRedisCrashAndRestartWithAOF(t *testing.T) {
	rs := redistest.New(t, "--appendonly", "yes", "--appendfsync", "always")
	up, gws, ids, keys := faultSetup(t, rs)

	tr := runTraffic(up, gws, keys, ids, 16)
	time.Sleep(700 * time.Millisecond)
	rs.Crash()
	crashed := time.Now()
	time.Sleep(1200 * time.Millisecond)
	restarting := time.Now()
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	time.Sleep(2500 * time.Millisecond)
	results := tr.Stop()

	n, slowest := outage(t, results, crashed.Add(100*time.Millisecond), restarting, 2*time.Second)
	back := recovered(t, results, restarted, restarted.Add(1500*time.Millisecond))
	s := openStore(t, rs.URL())
	waitSettled(t, s, ids, 5*time.Second)
	unconfirmed, free := checkCharges(t, s, ids, 100000, results)
	t.Logf("%d requests, %d answered 503 during the outage (slowest %v); first 200 started %v after the restart; "+
		"200s that said cost 0: %d charged (commit landed, reply lost), %d not charged",
		len(results), n, slowest.Round(time.Millisecond), back.Round(time.Millisecond), unconfirmed, free)
}

// Redis stalls (SIGSTOP: connections open, no answers) under traffic, then
// resumes: requests during the stall get 503 metering_unavailable within
// the store timeout, then 200s again; the money stays exact and the
// gateways hold a bounded number of connections.
func TestRedisStallsMidTraffic(t *testing.T) {
	rs := redistest.New(t)
	up, gws, ids, keys := faultSetup(t, rs)

	tr := runTraffic(up, gws, keys, ids, 16)
	time.Sleep(500 * time.Millisecond)
	if err := rs.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	time.Sleep(1500 * time.Millisecond)
	resumed := time.Now()
	if err := rs.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2000 * time.Millisecond)
	results := tr.Stop()

	// store_timeout is 300ms; the key is cached, so one store call fails.
	n, slowest := outage(t, results, paused.Add(50*time.Millisecond), resumed, time.Second)
	back := recovered(t, results, resumed, resumed.Add(1000*time.Millisecond))
	s := openStore(t, rs.URL())
	waitSettled(t, s, ids, 5*time.Second)
	unconfirmed, free := checkCharges(t, s, ids, 100000, results)

	admin := rs.Client()
	defer admin.Close()
	info, err := admin.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	conns := 0
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			conns, _ = strconv.Atoi(v)
		}
	}
	// Each gateway's pool holds at most 10 per CPU; plus this test's two.
	if limit := 2*10*runtimeCPUs() + 2; conns > limit {
		t.Errorf("%d connections to Redis after the stall, more than %d", conns, limit)
	}
	t.Logf("%d requests, %d answered 503 during the stall (slowest %v); first 200 started %v after the resume; "+
		"200s that said cost 0: %d charged, %d not; %d Redis connections after",
		len(results), n, slowest.Round(time.Millisecond), back.Round(time.Millisecond), unconfirmed, free, conns)
}

// A gateway whose Redis refuses connections, or accepts them and never
// answers, stops at start with a clear error, within seconds.
func TestRedisUnreachableAtStart(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	refused := freeAddr(t)
	for _, tt := range []struct {
		name, addr, want string
	}{
		{"refused", refused, "connection refused"},
		{"silent", silent.Addr().String(), "context deadline exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			g := launch(t, config{Redis: "redis://" + tt.addr + "/0", Upstream: "127.0.0.1:1"})
			select {
			case <-g.exited:
			case <-time.After(20 * time.Second):
				t.Fatal("creditgate still running after 20s")
			}
			d := time.Since(start)
			if g.cmd.ProcessState.ExitCode() == 0 {
				t.Error("creditgate exited with status 0")
			}
			b, _ := os.ReadFile(g.log)
			for _, w := range []string{"meter: opening store", "redis at " + tt.addr, tt.want} {
				if !strings.Contains(string(b), w) {
					t.Errorf("the log does not say %q:\n%s", w, b)
				}
			}
			t.Logf("exited after %v", d.Round(time.Millisecond))
		})
	}
}

// A settle that arrives after its reservation expired is charged from what
// the account has available then, up to the price, marked late, once.
func TestLateSettle(t *testing.T) {
	rs := redistest.New(t)
	up := newUpstream(t)
	g := startGateway(t, config{Redis: rs.URL(), Upstream: up.addr, ReservationTTL: "1s"})
	key := g.account("late", 5)
	s := openStore(t, rs.URL())
	ctx := context.Background()

	tk := up.ticket("slow")
	done := make(chan result, 1)
	go func() { done <- send(ctx, up, g.URL, key, "late", "hold", "slow", 4, false) }()
	<-tk.held
	time.Sleep(1300 * time.Millisecond) // past the 1s TTL
	if a, err := s.Account(ctx, "late"); err != nil || a.Reserved != 0 {
		t.Fatalf("the expired reservation still holds: %+v %v", a, err)
	}
	if r := send(ctx, up, g.URL, key, "late", "ok", "fast", 3, false); r.Status != 200 || r.Cost != "3" {
		t.Fatalf("fast request: %d %s cost %q", r.Status, r.Code, r.Cost)
	}
	close(tk.release)
	r := <-done
	if r.Status != 200 || r.Cost != "2" {
		t.Errorf("late request: %d %s cost %q; want 200 cost 2 (what was left)", r.Status, r.Code, r.Cost)
	}
	a, es := ledger(t, s, "late")
	if a.Balance != 0 || len(es) != 3 {
		t.Fatalf("balance %s, ledger %+v", a.Balance, es)
	}
	if e := es[1]; requestOf(e) != "fast" || e.Amount != -credits(3) || e.Late {
		t.Errorf("fast entry %+v", e)
	}
	if e := es[2]; requestOf(e) != "slow" || e.Amount != -credits(2) || !e.Late {
		t.Errorf("late entry %+v", e)
	}
}
