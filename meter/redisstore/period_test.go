package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func TestPeriodRollover(t *testing.T) {
	s := newStore(t, Options{})
	id := quotaAccount(t, s, 0, c(10), c(5))
	p1, p2 := month(0), month(1)
	mustReserveIn(t, s, id, "held", c(4), p1) // 4 quota, committed in p2
	mustReserveIn(t, s, id, "r1", c(11), p1)  // 6 quota + 5 overage
	mustCommit(t, s, id, "r1", c(11))
	_, err := reserveIn(s, id, "r2", c(1), month(-1), time.Minute) // an older id is p1
	wantCode(t, err, meter.ECodeOverageLimitReached)

	// A new period: fresh quota and overage used. But the 5 owed from p1
	// are still owed, and the balance goes no lower than -cap.
	r := mustReserveIn(t, s, id, "r3", c(10), p2)
	if !r.Quota.ResetsAt.Equal(p2.End) || r.Quota.Remaining != 0 || r.Overage != ovs(5, 0, 0, 0) {
		t.Errorf("reservation %+v", r)
	}
	_, err = reserveIn(s, id, "r4", c(1), p2, time.Minute)
	wantCode(t, err, meter.ECodeOverageLimitReached)
	// Paying the invoice makes the new period's overage usable.
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "r5", c(2), p2)

	// p1 again, from a gateway whose clock lags: read as p2, nothing resets.
	mustReserveIn(t, s, id, "r6", c(1), p1)
	expectPools(t, s, id, 0, c(3), meter.QuotaState{Limit: c(10), Reserved: c(10), ResetsAt: p2.End},
		ovs(5, 0, 3, 2), use{-c(5), c(6), c(5), -c(5)})

	// The hold made in p1 (4 of its quota) is charged from its parts, but
	// the quota it used is p1's: p2's used does not grow.
	st := mustCommit(t, s, id, "held", c(4))
	if st.Charged != c(4) || st.Quota.Used != 0 || st.Quota.Reserved != c(10) {
		t.Errorf("settlement %+v", st)
	}
	mustCommit(t, s, id, "r3", c(10))
	mustCommit(t, s, id, "r5", c(2))
	mustCommit(t, s, id, "r6", c(1))
	expectPools(t, s, id, -c(3), 0, qs(10, 10, 0, 0), ovs(5, 3, 0, 2),
		use{-c(5), c(6), c(5), -c(5)}, use{0, c(4), 0, 0}, use{0, c(10), 0, 0},
		use{-c(2), 0, c(2), -c(2)}, use{-c(1), 0, c(1), -c(3)})
}

// Every case starts from an account with quota 2, balance 3, overage cap 5
// in month(0).
func TestPartsAcrossPools(t *testing.T) {
	p := month(0)
	tests := []struct {
		name              string
		run               func(t *testing.T, s *Store, id string)
		balance, reserved meter.Credits
		quota             meter.QuotaState
		overage           meter.OverageState
		uses              []use
	}{
		{"partial commit takes quota, then balance, and releases the rest", func(t *testing.T, s *Store, id string) {
			mustReserveIn(t, s, id, "r1", c(5), p) // 2 quota + 3 balance
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != c(4) || st.Balance != c(1) || st.Available != c(1) {
				t.Errorf("settlement %+v", st)
			}
		}, c(1), 0, qs(2, 2, 0, 0), ovs(5, 0, 0, 5), []use{{-c(2), c(2), 0, c(1)}}},

		{"partial commit reaches the overage last", func(t *testing.T, s *Store, id string) {
			mustReserveIn(t, s, id, "r1", c(7), p) // 2 + 3 + 2
			mustCommit(t, s, id, "r1", c(6))
		}, -c(1), 0, qs(2, 2, 0, 0), ovs(5, 1, 0, 4), []use{{-c(4), c(2), c(1), -c(1)}}},

		{"commit within the quota writes an entry that moves no balance", func(t *testing.T, s *Store, id string) {
			mustReserveIn(t, s, id, "r1", c(7), p)
			mustCommit(t, s, id, "r1", c(1))
		}, c(3), 0, qs(2, 1, 0, 1), ovs(5, 0, 0, 5), []use{{0, c(1), 0, c(3)}}},

		{"void releases every part", func(t *testing.T, s *Store, id string) {
			r := mustReserveIn(t, s, id, "r1", c(7), p)
			if r.Quota.Reserved != c(2) || r.Overage.Reserved != c(2) || r.Available != -c(2) {
				t.Errorf("reservation %+v", r)
			}
			st, err := s.Void(ctx, id, "r1")
			if err != nil || st.Available != c(3) || st.Quota.Remaining != c(2) || st.Overage.Remaining != c(5) {
				t.Errorf("void %+v, %v", st, err)
			}
		}, c(3), 0, qs(2, 0, 0, 2), ovs(5, 0, 0, 5), nil},

		{"expiry releases every part", func(t *testing.T, s *Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(7), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
		}, c(3), 0, qs(2, 0, 0, 2), ovs(5, 0, 0, 5), nil},

		{"a late commit takes quota, then balance, then overage, as they are now", func(t *testing.T, s *Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(4), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
			mustReserveIn(t, s, id, "r2", c(1), p) // takes 1 of the quota
			st := mustCommit(t, s, id, "r1", c(6))
			if st.Charged != c(4) || !st.Late {
				t.Errorf("settlement %+v", st)
			}
		}, 0, 0, meter.QuotaState{Limit: c(2), Used: c(1), Reserved: c(1)}, ovs(5, 0, 0, 5), []use{{-c(3), c(1), 0, 0}}},

		{"a late commit reaches into the overage", func(t *testing.T, s *Store, id string) {
			if _, err := reserveIn(s, id, "r1", c(7), p, shortTTL); err != nil {
				t.Fatal(err)
			}
			pastTTL()
			mustCommit(t, s, id, "r1", c(7))
		}, -c(2), 0, qs(2, 2, 0, 0), ovs(5, 2, 0, 3), []use{{-c(5), c(2), c(2), -c(2)}}},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // some sleep
			id := quotaAccount(t, s, c(3), c(2), c(5))
			tt.run(t, s, id)
			expectPools(t, s, id, tt.balance, tt.reserved, tt.quota, tt.overage, tt.uses...)
		})
	}
}
