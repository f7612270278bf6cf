package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// One request's store work: a reserve script and a commit script.
func benchReserveCommit(b *testing.B, accounts int) {
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
	defer cl.Close()
	s := New(cl, Options{Prefix: fmt.Sprintf("bench%d", seq.Add(1))})
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench_%d", i)
		if _, err := s.CreateAccount(ctx, ids[i], MaxCredits/2); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(16) // requests in flight, as behind a busy gateway
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id, rid := ids[int(i)%accounts], fmt.Sprintf("r%d", i)
			_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(5), TTL: time.Minute})
			if err == nil {
				_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(3), Route: "/convert"})
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// Many accounts: what one Redis serves when requests spread out.
func BenchmarkReserveCommit(b *testing.B) { benchReserveCommit(b, 1000) }

// One account takes every request: the per-slot worst case.
func BenchmarkReserveCommitHotAccount(b *testing.B) { benchReserveCommit(b, 1) }
