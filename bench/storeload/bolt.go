package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
)

// runBolt measures Reserve+Commit pairs on the embedded store, durable
// (bbolt fsyncs each group commit), with the same workload as run. It
// prints the same columns; those only Redis has are 0, and cpu_us/pair
// is this process's CPU (the store runs in it); then commits/s, the
// group commits (each with its fsyncs) a second. With grants > 0 each
// account first gets that many credit grants (never expiring, large
// enough that the load spends only the first): the account record then
// carries them through every pair, as a customer's with grants does.
func runBolt(path string, workers, accounts, grants int, warmup, dur time.Duration, label string) error {
	ctx := context.Background()
	_ = os.Remove(path)
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = s.Close(); _ = os.Remove(path) }()
	ids, err := createAccounts(ctx, s, accounts)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for range grants {
			if _, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: id, Amount: 1e12,
				Description: "storeload"}); err != nil {
				return fmt.Errorf("grant: %w", err)
			}
		}
	}
	var cpu0, cpu1 time.Duration
	var c0, c1 int64
	r, err := pairsLoad(ctx, s, ids, workers, warmup, dur,
		func() error { cpu0, c0 = processCPU(), s.Commits(); return nil },
		func() error { cpu1, c1 = processCPU(), s.Commits(); return nil })
	if err != nil {
		return err
	}
	printRow(label, accounts, workers, r, 0, 0, r.perPair((cpu1 - cpu0).Seconds()))
	fmt.Printf("%-24s commits/s %.0f, pairs/commit %.1f\n", "", float64(c1-c0)/r.elapsed.Seconds(),
		float64(r.pairs)/float64(max(c1-c0, 1)))
	return nil
}
