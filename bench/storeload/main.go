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
	"runtime/pprof"
	"strconv"
	"strings"
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
	cpuprofile := flag.String("cpuprofile", "", "with -bolt: write a CPU profile of the run to this file")
	grants := flag.Int("grants", 0, "with -bolt: credit grants on each account (0: none)")
	useLease := flag.Bool("lease", false, "through meter/lease (requests carved from leases, settled in groups)")
	flag.IntVar(&leaseMinRate, "lease-min-rate", 0, "lease.Options.MinRate (0: its default)")
	flag.Parse()
	if *header {
		fmt.Println(header_)
		return
	}
	if *bolt != "" {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "storeload:", err)
				os.Exit(1)
			}
			defer pprof.StopCPUProfile()
		}
		if err := runBolt(*bolt, *workers, *accounts, *grants, *warmup, *dur, *label); err != nil {
			fmt.Fprintln(os.Stderr, "storeload:", err)
			pprof.StopCPUProfile()
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
	ids, err := createAccounts(ctx, s, accounts)
	if err != nil {
		return err
	}
	var before, after stats
	r, err := pairsLoad(ctx, s, ids, workers, warmup, dur,
		func() (err error) { before, err = serverStats(ctx, cl); return err },
		func() (err error) { after, err = serverStats(ctx, cl); return err })
	if err != nil {
		return err
	}
	calls := after.calls - before.calls
	usPer := 0.0
	if calls > 0 {
		usPer = (after.usec - before.usec) / calls
	}
	cpu := (after.cpu - before.cpu) / r.elapsed.Seconds() * 100
	if label == "" {
		label = "-"
	}
	printRow(label, accounts, workers, r, usPer, cpu, r.perPair(after.cpu-before.cpu))
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
