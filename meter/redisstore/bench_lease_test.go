package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// BenchmarkSettleLeaseCall is SettleLease as a gateway calls it: one FCALL
// per group of n requests carved from one lease, through go-redis, with
// the arguments and the reply of a real group. cpu_us/req is redis-server's
// CPU per request (the script, the FCALL's arguments and reply, the
// socket), what BenchmarkScriptParts leaves out. "ping" is the floor of
// any call: redis-server's CPU for a PING round trip.
func BenchmarkSettleLeaseCall(b *testing.B) {
	b.Run("ping", func(b *testing.B) {
		s := newStore(b, Options{})
		cpu0 := serverCPU(b, s)
		for i := 0; i < b.N; i++ {
			if err := s.c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric((serverCPU(b, s)-cpu0)/float64(b.N), "cpu_us/req")
	})
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := newStore(b, Options{})
			id := newAccount(b, s, c(1e12))
			lease := "lease.bench"
			if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: lease, Amount: c(1e11),
				TTL: time.Hour}); err != nil {
				b.Fatal(err)
			}
			reqs := make([]meter.CommitRequest, n)
			carved := make([]meter.Credits, n)
			for j := range carved {
				carved[j] = c(1)
			}
			cpu0 := serverCPU(b, s)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range reqs {
					rid := fmt.Sprintf("r%d_%d", i, j)
					reqs[j] = meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(1),
						Description: "POST /v1/convert", Route: "convert", RequestID: "req-" + rid, Pages: 1}
				}
				if _, err := s.SettleLease(ctx, id, lease, reqs, carved, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((serverCPU(b, s)-cpu0)/float64(b.N*n), "cpu_us/req")
		})
	}
}
