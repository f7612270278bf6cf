package boltstore

import (
	"fmt"
	"sync/atomic"
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
		par := cfg.par
		b.Run(fmt.Sprintf("parallel=%v/nosync=%v", par, cfg.nosync), func(b *testing.B) {
			b.SetParallelism(16)
			s := openTemp(b, Options{})
			s.db.NoSync = cfg.nosync
			if _, err := s.CreateAccount(ctx, "a", MaxCredits); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			op := func() {
				rid := fmt.Sprint("r", n.Add(1))
				if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: rid, Amount: 1, TTL: time.Minute}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: rid, Amount: 1, Route: "/x"}); err != nil {
					b.Fatal(err)
				}
			}
			if par {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op()
					}
				})
				return
			}
			for i := 0; i < b.N; i++ {
				op()
			}
		})
	}
}
