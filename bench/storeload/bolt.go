package main

import (
	"context"
	"os"
	"time"

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
	ids, err := createAccounts(ctx, s, accounts)
	if err != nil {
		return err
	}
	var cpu0, cpu1 time.Duration
	r, err := pairsLoad(ctx, s, ids, workers, warmup, dur,
		func() error { cpu0 = processCPU(); return nil },
		func() error { cpu1 = processCPU(); return nil })
	if err != nil {
		return err
	}
	printRow(label, accounts, workers, r, 0, 0, r.perPair((cpu1 - cpu0).Seconds()))
	return nil
}
