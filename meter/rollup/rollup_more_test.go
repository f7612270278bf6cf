package rollup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/rollup"
)

// TestRollupOnCluster: on a Redis Cluster of three masters, the accounts
// spread over every node, the rollup (cross-slot pipelines for the
// accounts, one-slot transactions for its own keys) sorts and sums as on
// one server.
func TestRollupOnCluster(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	c := cl.Client()
	t.Cleanup(func() { c.Close() })
	s := redisstore.New(c, redisstore.Options{})
	var ids []string
	for i := range 30 {
		id := fmt.Sprintf("c-%02d", i)
		if _, err := s.CreateAccount(ctx, id, cr((i*13)%17+5)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids[:10] {
		spend(t, s, id, []string{"convert", "ocr"}[i%2], cr(i%4+1), i%3+1)
	}
	r := rollup.New(rollup.Options{Store: s, Batch: 7})
	if ran, err := r.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("RunOnce: %v %v", ran, err)
	}
	checkOrders(t, s, ids)
	checkTotals(t, s, ids)
	var tally rollup.Tally
	tally.Add("quota_exceeded")
	if err := tally.Flush(ctx, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimOnce(ctx, "console:x", time.Minute); err != nil || !ok {
		t.Fatalf("ClaimOnce on the cluster: %v %v", ok, err)
	}
}

// TestFlushOnlyLoop: a gateway without a console adds its refusals and
// builds nothing; one with a console does both.
func TestFlushOnlyLoop(t *testing.T) {
	stores(t, func(t *testing.T, s store) {
		if _, err := s.CreateAccount(ctx, "f", cr(1)); err != nil {
			t.Fatal(err)
		}
		for _, flushOnly := range []bool{true, false} {
			var tally rollup.Tally
			tally.Add("invalid_api_key")
			c, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			r := rollup.New(rollup.Options{Store: s, Tally: &tally, FlushOnly: flushOnly, Interval: time.Hour})
			go func() { r.Loop(c); close(done) }()
			day := meter.Bucket(time.Now(), meter.GranularityDay)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				got, err := s.Refusals(ctx, day, day.AddDate(0, 0, 1))
				if err != nil {
					t.Fatal(err)
				}
				_, _, asOf, _ := s.SortedAccounts(ctx, meter.SortBalance, "", 10)
				if want := map[bool]int64{true: 1, false: 2}[flushOnly]; got["invalid_api_key"] == want && asOf.IsZero() == flushOnly {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("flush only %v: refusals %v, index as of %v", flushOnly, got, asOf)
				}
			}
			cancel()
			<-done
		}
	})
}

// TestRollupBoltAtScale times a rollup run on the embedded store with
// ROLLUP_BOLT_SCALE accounts (opt-in: seeding takes a while):
//
//	ROLLUP_BOLT_SCALE=20000 go test -run TestRollupBoltAtScale -v ./meter/rollup/
func TestRollupBoltAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ROLLUP_BOLT_SCALE"))
	if n <= 0 {
		t.Skip("set ROLLUP_BOLT_SCALE to a number of accounts")
	}
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "meter.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	start := time.Now()
	for i := range n {
		if _, err := s.CreateAccount(ctx, fmt.Sprintf("b-%06d", i), cr(i%1000)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d accounts in %v", n, time.Since(start).Round(time.Millisecond))
	for i := 0; i < n; i += n / 100 {
		spend(t, s, fmt.Sprintf("b-%06d", i+1), "convert", cr(1), 1)
	}
	r := rollup.New(rollup.Options{Store: s})
	for run := range 2 {
		start = time.Now()
		if ran, err := r.RunOnce(ctx); err != nil || !ran {
			t.Fatal(ran, err)
		}
		t.Logf("run %d: %v", run+1, time.Since(start).Round(time.Millisecond))
	}
	start = time.Now()
	ids, next, _, err := s.SortedAccounts(ctx, meter.SortBalance, "", 50)
	if err != nil || len(ids) != 50 || next == "" {
		t.Fatalf("a page: %d ids, next %q, %v", len(ids), next, err)
	}
	t.Logf("a sorted page of 50: %v", time.Since(start))
}

// TestBoltClaimsExpire: on the embedded store, across a rollup run (which
// deletes expired claims), an expired outcome is claimable again and an
// unexpired one still answers.
func TestBoltClaimsExpire(t *testing.T) {
	now := time.Now()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "meter.db"), boltstore.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.SetOnce(ctx, "old", "key_1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOnce(ctx, "new", "key_2", time.Hour); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if ran, err := rollup.New(rollup.Options{Store: s, Now: func() time.Time { return now }}).RunOnce(ctx); err != nil || !ran {
		t.Fatal(ran, err)
	}
	if v, ok, _ := s.ClaimOnce(ctx, "new", time.Minute); ok || v != "key_2" {
		t.Errorf("unexpired outcome: %q %v", v, ok)
	}
	if v, ok, _ := s.ClaimOnce(ctx, "old", time.Minute); !ok || v != "" {
		t.Errorf("expired outcome: %q %v", v, ok)
	}
}
