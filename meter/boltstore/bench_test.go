package boltstore

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// BenchmarkReserveCommit is one metered request's store work: a reserve
// and a commit, two fsynced transactions. Writes are serialized; with
// concurrent callers (parallel: 16 goroutines per CPU) they share
// transactions and fsyncs (batch.go).
//
// nosync=true leaves fsync out: what is left is the store's CPU work (the
// money model, records, bbolt), which fsync hides otherwise.
func BenchmarkReserveCommit(b *testing.B) {
	for _, cfg := range []struct{ par, nosync bool }{{false, false}, {true, false}, {false, true}} {
		b.Run(fmt.Sprintf("parallel=%v/nosync=%v", cfg.par, cfg.nosync), func(b *testing.B) {
			benchPairs(b, 1, 0, cfg.par, cfg.nosync)
		})
	}
}

// BenchmarkPairs is BenchmarkReserveCommit's parallel run without fsync
// (the CPU a pair costs, group commit included) over 1000 accounts and
// one, with and without 5 credit grants on each account; cpu/pair is the
// process's CPU (all goroutines), the number to profile.
func BenchmarkPairs(b *testing.B) {
	for _, accounts := range []int{1000, 1} {
		for _, grants := range []int{0, 5} {
			b.Run(fmt.Sprintf("accounts=%d/grants=%d", accounts, grants), func(b *testing.B) {
				benchPairs(b, accounts, grants, true, true)
			})
		}
	}
}

func benchPairs(b *testing.B, accounts, grants int, par, nosync bool) {
	b.SetParallelism(16)
	s := openTemp(b, Options{})
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprint("a", i)
		if _, err := s.CreateAccount(ctx, ids[i], meter.MaxCredits/2); err != nil {
			b.Fatal(err)
		}
		for range grants {
			if _, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: ids[i], Amount: 1e12,
				Description: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	s.db.NoSync = nosync
	var n atomic.Int64
	op := func() {
		i := n.Add(1)
		id, rid := ids[int(i)%accounts], fmt.Sprint("r", i)
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: 5000, TTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: 3000,
			Route: "/convert", RequestID: rid}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0, c0, w0 := processCPU(), s.Commits(), writes(s)
	if par {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			op()
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu_us/pair")
	commits := float64(max(s.Commits()-c0, 1))
	b.ReportMetric(float64(b.N)/commits, "pairs/commit")
	b.ReportMetric(float64(writes(s)-w0)/commits, "writes/commit")
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writes is the pages the store's write transactions have written.
func writes(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}
