package caddymodule

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// TestConsoleAtScale measures the console's pages on a seeded Redis store:
// CONSOLE_SCALE_ACCOUNTS accounts (default 100,000) and one account with
// CONSOLE_SCALE_LEDGER ledger entries (default 1,000,000). It seeds for
// minutes, so it runs only when CONSOLE_SCALE is set:
//
//	CONSOLE_SCALE=1 go test -run TestConsoleAtScale -v -timeout 30m ./caddymodule/
//
// It asserts that every page answers 200 and logs the median time of each;
// README "Console" has the numbers of one run.
func TestConsoleAtScale(t *testing.T) {
	if os.Getenv("CONSOLE_SCALE") == "" {
		t.Skip("set CONSOLE_SCALE=1 to seed a large store and time the console's pages")
	}
	accounts, entries := envInt("CONSOLE_SCALE_ACCOUNTS", 100000), envInt("CONSOLE_SCALE_LEDGER", 1000000)
	g, _ := startConsole(t, globalBlock)
	s := activeStore(t)
	ctx := context.Background()
	start := time.Now()
	parallel(accounts, func(i int) error {
		_, err := s.CreateAccount(ctx, fmt.Sprintf("acct-%06d", i), meter.Credits(i%1000)*meter.Scale)
		return err
	})
	t.Logf("seeded %d accounts in %v", accounts, time.Since(start).Round(time.Millisecond))
	if _, err := s.CreateAccount(ctx, "big", 0); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	parallel(entries, func(i int) error {
		_, err := s.Grant(ctx, meter.Grant{AccountID: "big", Amount: meter.Scale, Type: meter.EntryPurchase})
		return err
	})
	t.Logf("seeded %d ledger entries in %v", entries, time.Since(start).Round(time.Millisecond))
	deep, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: "big", Limit: 1, To: time.Now().Add(-time.Since(start) / 2)})
	if err != nil || len(deep) == 0 {
		t.Fatalf("a middle entry: %v", err)
	}
	// Some usage, so that the rollup's series reads and the usage index
	// have something to sort.
	parallel(1000, func(i int) error {
		id := fmt.Sprintf("acct-%06d", i*(accounts/1000))
		rid := fmt.Sprintf("scale-%d", i)
		a, err := s.Account(ctx, id)
		if err != nil {
			return err
		}
		p, _ := a.Settings.PeriodAt(time.Now(), a.CreatedAt)
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: meter.Scale, TTL: time.Minute, Period: p}); err != nil {
			return nil // an account seeded with 0 credits
		}
		_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: meter.Scale, Route: "convert", Pages: 1})
		return err
	})
	for run := range 2 { // the first run reads the series since each account's creation, the second since the first
		start = time.Now()
		cpu := redisCPU(t)
		runRollup(t)
		t.Logf("rollup run %d over %d accounts: %v, Redis CPU %.2fs", run+1, accounts+1,
			time.Since(start).Round(time.Millisecond), redisCPU(t)-cpu)
	}
	// Sorted pages stay pages: page_size rows and a cursor to the next.
	_, first := g.consoleDo("GET", "/console/?sort=balance", nil, "operator")
	if n := len(rowAccount.FindAllStringSubmatch(first, -1)); n != 50 || nextLink.FindStringSubmatch(first) == nil {
		t.Fatalf("sorted page: %d rows", n)
	}
	pages := []struct{ name, path string }{
		{"accounts, first page", "/console/"},
		{"accounts, page in the middle", fmt.Sprintf("/console/?cursor=acct-%06d", accounts/2)},
		{"accounts, sorted by balance (rollup)", "/console/?sort=balance"},
		{"accounts, sorted by usage (rollup)", "/console/?sort=usage"},
		{"accounts, sorted by activity (rollup)", "/console/?sort=activity"},
		{"accounts, search", "/console/?q=acct-0999"},
		{"account with 1M entries, newest", "/console/accounts/big"},
		{"account with 1M entries, in the middle", "/console/accounts/big?cursor=" + deep[0].ID},
		{"account, ledger filtered by a type it has", "/console/accounts/big?type=purchase"},
		{"account, ledger filtered by a type it lacks", "/console/accounts/big?type=refund"},
		{"gateway (rollup totals)", "/console/gateway"},
		{"gateway, 365 days (rollup totals)", "/console/gateway?days=365"},
	}
	for _, p := range pages {
		var times []time.Duration
		for range 5 {
			t0 := time.Now()
			resp, body := g.consoleDo("GET", p.path, nil, "operator")
			times = append(times, time.Since(t0))
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d\n%s", p.name, resp.StatusCode, body)
			}
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		t.Logf("%-45s median %v", p.name, times[2].Round(100*time.Microsecond))
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// parallel runs f(0..n-1) on 16 goroutines and panics on the first error.
func parallel(n int, f func(i int) error) {
	var wg sync.WaitGroup
	next := make(chan int, 1024)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					panic(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// redisCPU is the test server's CPU time so far (INFO cpu), in seconds.
func redisCPU(t *testing.T) float64 {
	c := testRedis.Client()
	defer c.Close()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}
