package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
)

// runBolt measures Reserve+Commit pairs on the embedded store, durable
// (bbolt fsyncs each group commit), with the same workload as run. It
// prints the same columns; those only Redis has are 0, and cpu_us/pair
// is this process's CPU (the store runs in it).
func runBolt(path string, workers, accounts int, warmup, dur time.Duration, label string) error {
	ctx := context.Background()
	_ = os.Remove(path)
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = s.Close(); _ = os.Remove(path) }()
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct_%d", i)
		if _, err := s.CreateAccount(ctx, ids[i], boltstore.MaxCredits/2); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
	}
	var (
		measuring, stop atomic.Bool
		pairs, errs     atomic.Int64
		firstErr        atomic.Value
		wg              sync.WaitGroup
		lats            = make([][]time.Duration, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			for i := 0; !stop.Load(); i++ {
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
	cpu0 := processCPU()
	start := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1 := processCPU()
	stop.Store(true)
	wg.Wait()
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
	perPair := 0.0
	if n := pairs.Load(); n > 0 {
		perPair = (cpu1 - cpu0).Seconds() / float64(n) * 1e6
	}
	fmt.Printf("%-24s %8d %7d %9.0f %7.2f %7.2f %11.1f %9.0f%% %7d %12.1f\n", label, accounts, workers,
		float64(pairs.Load())/elapsed.Seconds(), pct(0.50), pct(0.99), 0.0, 0.0, errs.Load(), perPair)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "storeload: first error:", e)
	}
	return nil
}
