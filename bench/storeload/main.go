// Command storeload measures the store's hot path: N concurrent workers
// each doing Reserve+Commit pairs, as the gateway does once per request,
// through redisstore.Store against a real Redis for a fixed duration.
// It prints pairs/s, pair latency percentiles, and what Redis itself
// reports: usec_per_call of the scripts (EVALSHA or FCALL: the
// evalsha_us column) and the CPU the server used.
//
//	storeload -addr 127.0.0.1:6379 -workers 128 -accounts 1000 -duration 10s
//
// Every run uses a fresh key prefix, so runs never see each other's keys.
// With -bolt, the same pairs go to the embedded store (a bbolt file at
// that path, fsync on every commit as in production) instead of Redis.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/lease"
	"github.com/creditgate/creditgate/meter/redisstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis address")
	workers := flag.Int("workers", 128, "concurrent requests (goroutines)")
	accounts := flag.Int("accounts", 1000, "accounts the requests spread over")
	dur := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time first")
	pool := flag.Int("pool", 0, "go-redis PoolSize (0: its default, 10 per GOMAXPROCS)")
	label := flag.String("label", "", "first column of the result row")
	pipeline := flag.Bool("pipeline", false, "redisstore Options.Pipeline (full-duplex autopipelining)")
	batch := flag.Int("batch", 0, "redisstore Options.MaxBatch (0: its default; 1: every call alone)")
	header := flag.Bool("header", false, "print the column header and exit")
	bolt := flag.String("bolt", "", "measure the embedded store in this (new) file instead of Redis")
	useLease := flag.Bool("lease", false, "through meter/lease (requests carved from leases, settled in groups)")
	flag.IntVar(&leaseMinRate, "lease-min-rate", 0, "lease.Options.MinRate (0: its default)")
	flag.Parse()
	if *header {
		fmt.Println(header_)
		return
	}
	if *bolt != "" {
		if err := runBolt(*bolt, *workers, *accounts, *warmup, *dur, *label); err != nil {
			fmt.Fprintln(os.Stderr, "storeload:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*addr, *workers, *accounts, *pool, *warmup, *dur, *label, *pipeline, *batch, *useLease); err != nil {
		fmt.Fprintln(os.Stderr, "storeload:", err)
		os.Exit(1)
	}
}

var leaseMinRate int

const header_ = "label                    accounts workers   pairs/s  p50_ms  p99_ms  evalsha_us  redis_cpu  errors  cpu_us/pair"

func run(addr string, workers, accounts, pool int, warmup, dur time.Duration, label string, pipeline bool, batch int,
	useLease bool) error {
	ctx := context.Background()
	cl := redis.NewClient(&redis.Options{Addr: addr, PoolSize: pool})
	defer cl.Close()
	if err := cl.Ping(ctx).Err(); err != nil {
		return err
	}
	rs := redisstore.New(cl, redisstore.Options{Prefix: fmt.Sprintf("load%d", time.Now().UnixNano()),
		Pipeline: pipeline, MaxBatch: batch})
	var s meter.Store = rs
	if useLease {
		s = lease.New(rs, lease.Options{MinRate: leaseMinRate})
	}
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct_%d", i)
		if _, err := s.CreateAccount(ctx, ids[i], redisstore.MaxCredits/2); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
	}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		pairs     atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for i := 0; !stop.Load(); i++ {
				// Worker w always starts on a different account than its
				// neighbours, so 1000 accounts are all in play at once.
				id := ids[(w+i*workers)%accounts]
				rid := "w" + strconv.Itoa(w) + "_" + strconv.Itoa(i)
				t0 := time.Now()
				_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: 5000, TTL: time.Minute})
				if err == nil {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: 3000,
						Route: "/convert", RequestID: rid})
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat = append(lat, time.Since(t0))
				pairs.Add(1)
			}
			lats[w] = lat
		}(w)
	}

	time.Sleep(warmup)
	before, err := serverStats(ctx, cl)
	if err != nil {
		return err
	}
	start := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	after, err := serverStats(ctx, cl)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	calls := after.calls - before.calls
	usPer := 0.0
	if calls > 0 {
		usPer = (after.usec - before.usec) / calls
	}
	cpu := (after.cpu - before.cpu) / elapsed.Seconds() * 100
	if label == "" {
		label = "-"
	}
	perPair := 0.0
	if n := pairs.Load(); n > 0 {
		perPair = (after.cpu - before.cpu) / float64(n) * 1e6
	}
	fmt.Printf("%-24s %8d %7d %9.0f %7.2f %7.2f %11.1f %9.0f%% %7d %12.1f\n", label, accounts, workers,
		float64(pairs.Load())/elapsed.Seconds(), pct(0.50), pct(0.99), usPer, cpu, errs.Load(), perPair)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "storeload: first error:", e)
	}
	return nil
}

// stats are the server's cumulative script calls (EVALSHA and FCALL) and time, and its CPU
// seconds (user+sys, main thread and others).
type stats struct{ calls, usec, cpu float64 }

func serverStats(ctx context.Context, cl *redis.Client) (stats, error) {
	var st stats
	txt, err := cl.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(txt, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "cmdstat_evalsha:"), strings.HasPrefix(line, "cmdstat_fcall:"):
			_, fields, _ := strings.Cut(line, ":")
			for _, kv := range strings.Split(fields, ",") {
				k, v, _ := strings.Cut(kv, "=")
				f, _ := strconv.ParseFloat(v, 64)
				switch k {
				case "calls":
					st.calls += f
				case "usec":
					st.usec += f
				}
			}
		case strings.HasPrefix(line, "used_cpu_sys:"), strings.HasPrefix(line, "used_cpu_user:"):
			_, v, _ := strings.Cut(line, ":")
			f, _ := strconv.ParseFloat(v, 64)
			st.cpu += f
		}
	}
	return st, nil
}
