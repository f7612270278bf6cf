package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

const shortTTL = 50 * time.Millisecond

// pastTTL waits until a shortTTL reservation has expired on the server.
func pastTTL() { time.Sleep(shortTTL + 30*time.Millisecond) }

// Every case starts from a new account holding 10 credits.
func TestExpiryAndIdempotency(t *testing.T) {
	purchase := entry{"purchase", c(10), c(10), false}
	tests := []struct {
		name              string
		run               func(t *testing.T, s *Store, id string)
		balance, reserved meter.Credits
		ledger            []entry
	}{
		{"an expired reservation is released", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
		}, c(10), 0, []entry{purchase}},

		{"a late commit charges from the available balance and is marked late", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			st := mustCommit(t, s, id, "r1", c(3))
			if st.Charged != c(3) || !st.Late || st.Balance != c(7) {
				t.Errorf("settlement %+v", st)
			}
			if again := mustCommit(t, s, id, "r1", c(3)); again != st {
				t.Errorf("second commit %+v; want %+v", again, st)
			}
		}, c(7), 0, []entry{purchase, {"usage", -c(3), c(7), true}}},

		{"a late commit takes no more than is available", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			mustReserve(t, s, id, "r2", c(8))
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != c(2) || !st.Late || st.Available != 0 {
				t.Errorf("settlement %+v", st)
			}
		}, c(8), c(8), []entry{purchase, {"usage", -c(2), c(8), true}}},

		{"a late commit takes no more than was reserved", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			if st := mustCommit(t, s, id, "r1", c(9)); st.Charged != c(4) {
				t.Errorf("charged %s, want 4", st.Charged)
			}
		}, c(6), 0, []entry{purchase, {"usage", -c(4), c(6), true}}},

		{"a late commit with nothing available charges nothing", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			mustReserve(t, s, id, "r2", c(10))
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != 0 || !st.Late || st.EntryID != "" {
				t.Errorf("settlement %+v", st)
			}
		}, c(10), c(10), []entry{purchase}},

		{"voiding an expired reservation is a no-op", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			if st, err := s.Void(ctx, id, "r1"); err != nil || st.Available != c(10) {
				t.Errorf("void: %+v, %v", st, err)
			}
		}, c(10), 0, []entry{purchase}},

		{"a retry after commit replays and charges nothing", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(5), time.Minute, "k")
			mustCommit(t, s, id, "r1", c(3))
			r, err := reserve(t, s, id, "r2", c(5), time.Minute, "k")
			if err != nil || !r.Replayed || r.ID != "r1" || r.Amount != c(3) || r.Available != c(7) {
				t.Errorf("replay: %+v, %v", r, err)
			}
			_, err = commit(s, id, "r2", c(3)) // the replay reserved nothing
			wantCode(t, err, meter.ECodeReservationNotFound)
		}, c(7), 0, []entry{purchase, {"usage", -c(3), c(7), false}}},

		{"a retry while the first is held is a conflict", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(5), time.Minute, "k")
			_, err := reserve(t, s, id, "r2", c(5), time.Minute, "k")
			wantCode(t, err, meter.ECodeIdempotencyConflict)
		}, c(10), c(5), []entry{purchase}},

		{"a retry after void is a new request", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(5), time.Minute, "k")
			s.Void(ctx, id, "r1")
			if r, err := reserve(t, s, id, "r2", c(5), time.Minute, "k"); err != nil || r.Replayed || r.ID != "r2" {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(10), c(5), []entry{purchase}},

		{"a retry after expiry is a new request", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(5), shortTTL, "k")
			pastTTL()
			if r, err := reserve(t, s, id, "r2", c(5), time.Minute, "k"); err != nil || r.Replayed || r.ID != "r2" {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(10), c(5), []entry{purchase}},

		{"a late commit makes later retries replay it", func(t *testing.T, s *Store, id string) {
			reserve(t, s, id, "r1", c(5), shortTTL, "k")
			pastTTL()
			mustCommit(t, s, id, "r1", c(2))
			if r, err := reserve(t, s, id, "r2", c(5), time.Minute, "k"); err != nil || !r.Replayed || r.ID != "r1" {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(8), 0, []entry{purchase, {"usage", -c(2), c(8), true}}},

		{"idempotency keys are per account", func(t *testing.T, s *Store, id string) {
			other := newAccount(t, s, c(10))
			reserve(t, s, other, "r1", c(5), time.Minute, "k")
			if _, err := reserve(t, s, id, "r1", c(5), time.Minute, "k"); err != nil {
				t.Error(err)
			}
		}, c(10), c(5), []entry{purchase}},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // they mostly sleep
			id := newAccount(t, s, c(10))
			tt.run(t, s, id)
			expect(t, s, id, tt.balance, tt.reserved, tt.ledger...)
		})
	}
}

func TestRetainPurgesSettledRecords(t *testing.T) {
	s := newStore(t, Options{Retain: 100 * time.Millisecond})
	id := newAccount(t, s, c(10))
	reserve(t, s, id, "r1", c(5), time.Minute, "k")
	mustCommit(t, s, id, "r1", c(1))
	time.Sleep(150 * time.Millisecond)

	// The first script after the deadline purges the record and the mapping.
	r, err := reserve(t, s, id, "r2", c(5), time.Minute, "k")
	if err != nil || r.Replayed {
		t.Errorf("after Retain, the key is free again: %+v, %v", r, err)
	}
	_, err = commit(s, id, "r1", c(1))
	wantCode(t, err, meter.ECodeReservationNotFound)
	cl := srv.Client()
	defer cl.Close()
	n, err := cl.HLen(ctx, s.accountKeys(id)[2]).Result()
	if err != nil || n != 1 {
		t.Errorf("reservation records: %d, %v; want only r2", n, err)
	}
	expect(t, s, id, c(9), c(5), entry{"purchase", c(10), c(10), false}, entry{"usage", -c(1), c(9), false})
}

func TestSweepIsBounded(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(1000))
	for i := 0; i < 450; i++ {
		mustReserve(t, s, id, newRID(), c(1))
	}
	// Backdate all the holds at once, so that none is swept while the
	// others are made, however slow the machine.
	cl := srv.Client()
	defer cl.Close()
	holds := s.accountKeys(id)[1]
	rids, err := cl.ZRange(ctx, holds, 0, -1).Result()
	if err != nil || len(rids) != 450 {
		t.Fatalf("%d holds, %v", len(rids), err)
	}
	for _, rid := range rids {
		cl.ZAddXX(ctx, holds, redis.Z{Score: 1, Member: rid})
	}
	// Each script expires at most SWEEP_LIMIT holds; three reads clear 450.
	for _, want := range []meter.Credits{c(250), c(50), 0} {
		if a, _ := s.Account(ctx, id); a.Reserved != want {
			t.Errorf("reserved %s, want %s", a.Reserved, want)
		}
	}
}
