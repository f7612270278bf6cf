package redisstore

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// burst runs n store calls from workers goroutines, each bounded by
// timeout(i), and returns how many failed with each code ("" for success).
func burst(s *Store, id string, n, workers int, timeout func(i int) time.Duration) map[string]int {
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cctx, cancel := context.WithTimeout(ctx, timeout(i))
				var err error
				switch i % 3 {
				case 0:
					_, err = s.Account(cctx, id)
				case 1:
					_, err = s.LookupKey(cctx, meter.HashKey("nope"))
				default:
					rid := newRID()
					if _, err = s.Reserve(cctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: 1, TTL: time.Minute}); err == nil {
						_, err = s.Void(cctx, id, rid)
					}
				}
				cancel()
				code := meter.ErrorCode(err)
				if err == nil || code == meter.ECodeInvalidAPIKey {
					code = ""
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return codes
}

// settledGoroutines waits until the goroutine count is at most limit, and
// returns the last count seen.
func settledGoroutines(limit int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

func connectedClients(t *testing.T, admin *redis.Client) int {
	t.Helper()
	info, err := admin.Info(ctx, "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("no connected_clients in %q", info)
	return 0
}

// A stalled server (SIGSTOP: connections open, no answers) and then a
// dead one: every call fails as metering_unavailable within its context's
// deadline, leaks no goroutine, and the store recovers when the server is
// back, holding no more connections than its pool.
func TestStalledAndDeadServerLeakNothing(t *testing.T) {
	own := redistest.New(t, "--appendonly", "yes")
	s, err := Open(ctx, own.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := newID("stall")
	if _, err := s.CreateAccount(ctx, id, c(1000)); err != nil {
		t.Fatal(err)
	}
	admin := own.Client()
	defer admin.Close()
	base := runtime.NumGoroutine()

	// Many calls cancelled at random points of their round trip drop
	// their connections; the pool must not grow past its size.
	codes := burst(s, id, 600, 60, func(i int) time.Duration { return time.Duration(1+i%10) * time.Millisecond })
	if codes[""] == 0 {
		t.Errorf("no call succeeded: %v", codes)
	}
	poolSize := s.c.(*redis.Client).Options().PoolSize
	if n := connectedClients(t, admin); n > poolSize+1 {
		t.Errorf("%d connections after a burst of cancelled calls; pool size is %d", n, poolSize)
	}

	if err := own.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	codes = burst(s, id, 120, 40, func(int) time.Duration { return 200 * time.Millisecond })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("120 calls of 200ms to a stalled server took %v", d)
	}
	if codes[meter.ECodeMeteringUnavailable] != 120 {
		t.Errorf("stalled server: %v; want 120 metering_unavailable", codes)
	}
	if err := own.Resume(); err != nil {
		t.Fatal(err)
	}
	if codes := burst(s, id, 30, 10, func(int) time.Duration { return 2 * time.Second }); codes[""] != 30 {
		t.Errorf("after resume: %v", codes)
	}

	own.Kill()
	start = time.Now()
	codes = burst(s, id, 120, 40, func(int) time.Duration { return 200 * time.Millisecond })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("120 calls of 200ms to a dead server took %v", d)
	}
	if codes[meter.ECodeMeteringUnavailable] != 120 {
		t.Errorf("dead server: %v; want 120 metering_unavailable", codes)
	}
	gstart := time.Now()
	n := settledGoroutines(base + 5)
	t.Logf("goroutines: %d before, %d after the failures (settled in %v)", base, n, time.Since(gstart).Round(time.Millisecond))
	if n > base+5 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the failures, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}

	if err := own.Restart(); err != nil {
		t.Fatal(err)
	}
	// After PoolSize failed dials in a row, go-redis answers from its last
	// dial error at once and probes the server in the background once a
	// second: recovery takes up to a second.
	start = time.Now()
	for {
		_, err := s.Account(ctx, id)
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not recovered %v after the restart: %v", time.Since(start), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("recovered %v after the restart", time.Since(start).Round(time.Millisecond))
	if codes := burst(s, id, 30, 10, func(int) time.Duration { return 2 * time.Second }); codes[""] != 30 {
		t.Errorf("after restart: %v", codes)
	}
	// Nothing was committed: reserves cut off by their deadline after the
	// server ran them are held until their TTL, never charged.
	if a, err := s.Account(ctx, id); err != nil || a.Balance != c(1000) {
		t.Errorf("after the faults: %+v %v", a, err)
	}
	if es := oldestFirst(t, s, id); len(es) != 1 {
		t.Errorf("ledger after the faults: %+v", es)
	}
	s.Close()
	for deadline := time.Now().Add(3 * time.Second); connectedClients(t, admin) > 1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := connectedClients(t, admin); n != 1 {
		t.Errorf("%d connections after Close, want only the admin's", n)
	}
}

// A server that accepts connections and never answers (or a black-holed
// route) makes Open fail within its bound with the address, not hang.
func TestOpenSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			cn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		for _, cn := range conns {
			cn.Close()
		}
		mu.Unlock()
	})
	for _, tt := range []struct {
		name   string
		target Target
	}{
		{"url", Target{URL: "redis://" + l.Addr().String() + "/0"}},
		{"cluster", Target{Cluster: []string{l.Addr().String()}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := OpenTarget(ctx, tt.target, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			d := time.Since(start)
			if d > pingTimeout+2*time.Second {
				t.Errorf("took %v", d)
			}
			if !strings.Contains(err.Error(), l.Addr().String()) {
				t.Errorf("error %q does not name the address", err)
			}
			t.Logf("after %v: %v", d.Round(time.Millisecond), err)
		})
	}
}
