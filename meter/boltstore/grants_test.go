package boltstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// A grant expires at its expires_at on the store's clock, to the
// millisecond: spendable 1 ms before, gone at the instant, with an
// expiration entry written by the read that finds it expired. A grant
// that expires exactly when the quota resets: the new period's quota is
// whole and the grant gives nothing.
func TestGrantExpiresAtTheClock(t *testing.T) {
	p0, p1 := storetest.Month(0), storetest.Month(1)
	clk := newClock()
	clk.t = p1.Start.Add(-10 * time.Millisecond)
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, "a", meter.Settings{MonthlyQuota: c(2)}); err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: "a", Amount: c(5), ExpiresAt: p1.Start})
	if err != nil {
		t.Fatal(err)
	}
	reserve := func(rid string, amount meter.Credits, p meter.Period) (meter.Reservation, error) {
		return s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: rid, Amount: amount, TTL: time.Hour, Period: p})
	}
	commit := func(rid string, amount meter.Credits) {
		if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: rid, Amount: amount}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reserve("r1", c(3), p0); err != nil { // quota 2, grant 1
		t.Fatal(err)
	}
	commit("r1", c(3))
	clk.Add(9 * time.Millisecond) // 1 ms before the expiry
	if a, _ := s.Account(ctx, "a"); a.Balance != c(5) || len(a.Grants) != 1 || a.Grants[0].Remaining != c(4) {
		t.Fatalf("1 ms before: %+v", a)
	}
	clk.Add(time.Millisecond) // the instant of both the expiry and the reset
	a, err := s.Account(ctx, "a")
	if err != nil || a.Balance != c(1) || len(a.Grants) != 0 {
		t.Fatalf("at the expiry: %+v %v", a, err)
	}
	if _, err := reserve("r2", c(3.5), p1); meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
		t.Fatalf("the expired grant was spent: %v", err) // quota 2 + paid 1
	}
	if _, err := reserve("r3", c(3), p1); err != nil {
		t.Fatal(err)
	}
	commit("r3", c(3))
	storetest.Expect(t, s, "a", 0, 0, storetest.Entry{Type: "purchase", Amount: c(1), After: c(1)},
		storetest.Entry{Type: "grant", Amount: c(5), After: c(6)}, storetest.Entry{Type: "usage", Amount: -c(1), After: c(5)},
		storetest.Entry{Type: "expiration", Amount: -c(4), After: c(1)}, storetest.Entry{Type: "usage", Amount: -c(1), After: c(0)})
	es := storetest.OldestFirst(t, s, "a")
	if es[3].GrantIDs != g.ID || es[3].Granted != c(4) {
		t.Fatalf("expiration entry %+v", es[3])
	}
	if es[4].Quota != c(2) || es[4].Granted != 0 {
		t.Fatalf("usage after the reset %+v", es[4])
	}
}

// BenchmarkReserveCommitGrants is BenchmarkReserveCommit (nosync) on an
// account with n credit grants: the cost of grants in the record (their
// JSON is decoded and encoded in both transactions) and in the model.
func BenchmarkReserveCommitGrants(b *testing.B) {
	for _, n := range []int{0, 2, 20} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			s := openTemp(b, Options{})
			s.db.NoSync = true
			if _, err := s.CreateAccount(ctx, "a", MaxCredits/2); err != nil {
				b.Fatal(err)
			}
			for i := range n {
				g := meter.CreditGrantRequest{AccountID: "a", Amount: MaxCredits / 1000, Priority: int64(i % 3),
					ExpiresAt: time.Now().Add(time.Hour + time.Duration(i)*time.Minute)}
				if _, err := s.CreateCreditGrant(ctx, g); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rid := fmt.Sprint("r", i)
				if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: rid, Amount: 1, TTL: time.Minute}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: rid, Amount: 1, Route: "/x"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
