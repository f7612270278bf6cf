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
)

// createAccounts makes the accounts the load spreads over, each with
// half the most a balance may hold.
func createAccounts(ctx context.Context, s meter.Store, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct_%d", i)
		if _, err := s.CreateAccount(ctx, ids[i], meter.MaxCredits/2); err != nil {
			return nil, fmt.Errorf("create account: %w", err)
		}
	}
	return ids, nil
}

// loadResult is what a measured window of pairsLoad saw.
type loadResult struct {
	pairs, errs int64
	elapsed     time.Duration
	lats        []time.Duration // sorted
}

// pairsLoad runs workers making Reserve+Commit pairs over ids for warmup,
// then measures dur: begin is called as the window opens and end as it
// closes (the store's counters: Redis's INFO, or this process's CPU),
// with the workers still running, so both see the same load.
func pairsLoad(ctx context.Context, s meter.Store, ids []string, workers int, warmup, dur time.Duration,
	begin, end func() error) (loadResult, error) {
	var (
		measuring, stop atomic.Bool
		pairs, errs     atomic.Int64
		firstErr        atomic.Value
		wg              sync.WaitGroup
		lats            = make([][]time.Duration, workers)
	)
	// As the gateway does: a settled request's kept answer is forgotten.
	forget, _ := meter.StoreAs[meter.Forgetter](s)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for i := 0; !stop.Load(); i++ {
				// Worker w always starts on a different account than its
				// neighbours, so all the accounts are in play at once.
				id := ids[(w+i*workers)%len(ids)]
				rid := "w" + strconv.Itoa(w) + "_" + strconv.Itoa(i)
				t0 := time.Now()
				_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: 5000, TTL: time.Minute})
				if err == nil {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: 3000,
						Route: "/convert", RequestID: rid})
				}
				if forget != nil {
					forget.Forget(id, rid)
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
	halt := func() { stop.Store(true); wg.Wait() }

	time.Sleep(warmup)
	if err := begin(); err != nil {
		halt()
		return loadResult{}, err
	}
	start := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	r := loadResult{elapsed: time.Since(start)}
	err := end()
	halt()
	if err != nil {
		return loadResult{}, err
	}
	r.pairs, r.errs = pairs.Load(), errs.Load()
	for _, l := range lats {
		r.lats = append(r.lats, l...)
	}
	slices.Sort(r.lats)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "storeload: first error:", e)
	}
	return r, nil
}

// pct is the p-th quantile of the window's pair latencies, in ms.
func (r loadResult) pct(p float64) float64 {
	if len(r.lats) == 0 {
		return 0
	}
	return float64(r.lats[int(p*float64(len(r.lats)-1))]) / 1e6
}

// perPair is cpu seconds per measured pair, in microseconds.
func (r loadResult) perPair(cpu float64) float64 {
	if r.pairs == 0 {
		return 0
	}
	return cpu / float64(r.pairs) * 1e6
}

// printRow prints a result row under header_.
func printRow(label string, accounts, workers int, r loadResult, usPer, cpuPct, perPair float64) {
	fmt.Printf("%-24s %8d %7d %9.0f %7.2f %7.2f %11.1f %9.0f%% %7d %12.1f\n", label, accounts, workers,
		float64(r.pairs)/r.elapsed.Seconds(), r.pct(0.50), r.pct(0.99), usPer, cpuPct, r.errs, perPair)
}
