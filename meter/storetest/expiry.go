package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Every case starts from a new account holding 10 credits. The cases
// sleep past shortTTL, so they run in parallel.
func testExpiryAndIdempotency(t *testing.T, s meter.Store) {
	purchase := entry{"purchase", c(10), c(10), false}
	late := func(amount, after float64) entry { return entry{"usage", -c(amount), c(after), true} }
	tests := []struct {
		name              string
		run               func(t *testing.T, s meter.Store, id string)
		balance, reserved meter.Credits
		ledger            []entry
	}{
		{"an expired reservation is released", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			if a, _ := s.Account(ctx, id); a.Reserved != c(4) {
				t.Errorf("reserved %s before the TTL, want 4", a.Reserved)
			}
			pastTTL()
		}, c(10), 0, []entry{purchase}},

		{"a late commit charges from the available balance and is marked late", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			st := mustCommit(t, s, id, "r1", c(3))
			if st.Charged != c(3) || !st.Late || st.Balance != c(7) || st.Available != c(7) || st.EntryID == "" {
				t.Errorf("settlement %+v", st)
			}
			if again := mustCommit(t, s, id, "r1", c(3)); again != st {
				t.Errorf("second commit %+v; want %+v", again, st)
			}
			if es := oldestFirst(t, s, id); !es[1].Late || es[1].ReservationID != "r1" {
				t.Errorf("entry %+v", es[1])
			}
		}, c(7), 0, []entry{purchase, late(3, 7)}},

		{"a late commit takes no more than is available", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			mustReserve(t, s, id, "r2", c(8))
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != c(2) || !st.Late || st.Available != 0 {
				t.Errorf("settlement %+v", st)
			}
		}, c(8), c(8), []entry{purchase, late(2, 8)}},

		{"a late commit takes no more than was reserved", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			if st := mustCommit(t, s, id, "r1", c(9)); st.Charged != c(4) {
				t.Errorf("charged %s, want 4", st.Charged)
			}
		}, c(6), 0, []entry{purchase, late(4, 6)}},

		{"a late commit with nothing available charges nothing", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			mustReserve(t, s, id, "r2", c(10))
			if st := mustCommit(t, s, id, "r1", c(4)); st.Charged != 0 || !st.Late || st.EntryID != "" {
				t.Errorf("settlement %+v", st)
			}
		}, c(10), c(10), []entry{purchase}},

		{"voiding an expired reservation is a no-op", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(4), shortTTL, "")
			pastTTL()
			if st, err := s.Void(ctx, id, "r1"); err != nil || st.Available != c(10) {
				t.Errorf("void: %+v, %v", st, err)
			}
			if _, err := s.Void(ctx, id, "r1"); err != nil {
				t.Errorf("void again: %v", err)
			}
		}, c(10), 0, []entry{purchase}},

		{"expiry is seen by the first call after it, whichever", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(9), shortTTL, "")
			pastTTL()
			mustReserve(t, s, id, "r2", c(10)) // needs the expired 9
		}, c(10), c(10), []entry{purchase}},

		{"a retry after commit replays and charges nothing", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), time.Minute, "k")
			mustCommit(t, s, id, "r1", c(3))
			r, err := reserve(s, id, "r2", c(5), time.Minute, "k")
			if err != nil || !r.Replayed || r.ID != "r1" || r.Amount != c(3) || r.Balance != c(7) || r.Available != c(7) {
				t.Errorf("replay: %+v, %v", r, err)
			}
			_, err = commit(s, id, "r2", c(3)) // the replay reserved nothing
			wantCode(t, err, meter.ECodeReservationNotFound)
		}, c(7), 0, []entry{purchase, usage(3, 7)}},

		{"a retry while the first is held is a conflict", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), time.Minute, "k")
			_, err := reserve(s, id, "r2", c(5), time.Minute, "k")
			wantCode(t, err, meter.ECodeIdempotencyConflict)
			_, err = commit(s, id, "r2", c(1)) // the conflict reserved nothing
			wantCode(t, err, meter.ECodeReservationNotFound)
		}, c(10), c(5), []entry{purchase}},

		{"a retry after void is a new request", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), time.Minute, "k")
			if _, err := s.Void(ctx, id, "r1"); err != nil {
				t.Fatal(err)
			}
			if r, err := reserve(s, id, "r2", c(5), time.Minute, "k"); err != nil || r.Replayed || r.ID != "r2" || r.Amount != c(5) {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(10), c(5), []entry{purchase}},

		{"a retry after expiry is a new request", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), shortTTL, "k")
			pastTTL()
			if r, err := reserve(s, id, "r2", c(5), time.Minute, "k"); err != nil || r.Replayed || r.ID != "r2" {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(10), c(5), []entry{purchase}},

		{"a late commit makes later retries replay it", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), shortTTL, "k")
			pastTTL()
			mustCommit(t, s, id, "r1", c(2))
			if r, err := reserve(s, id, "r2", c(5), time.Minute, "k"); err != nil || !r.Replayed || r.ID != "r1" || r.Amount != c(2) {
				t.Errorf("retry: %+v, %v", r, err)
			}
		}, c(8), 0, []entry{purchase, late(2, 8)}},

		{"a late commit leaves the key to a retry that holds it", func(t *testing.T, s meter.Store, id string) {
			mustReserveTTL(t, s, id, "r1", c(5), shortTTL, "k")
			pastTTL()
			mustReserveTTL(t, s, id, "r2", c(3), time.Minute, "k")
			mustCommit(t, s, id, "r1", c(2))
			_, err := reserve(s, id, "r3", c(1), time.Minute, "k")
			wantCode(t, err, meter.ECodeIdempotencyConflict)
		}, c(8), c(3), []entry{purchase, late(2, 8)}},

		{"idempotency keys are per account", func(t *testing.T, s meter.Store, id string) {
			other := newAccount(t, s, c(10))
			mustReserveTTL(t, s, other, "r1", c(5), time.Minute, "k")
			if _, err := reserve(s, id, "r1", c(5), time.Minute, "k"); err != nil {
				t.Error(err)
			}
		}, c(10), c(5), []entry{purchase}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := newAccount(t, s, c(10))
			tt.run(t, s, id)
			expect(t, s, id, tt.balance, tt.reserved, tt.ledger...)
		})
	}
}

func mustReserveTTL(t testing.TB, s meter.Store, id, rid string, amount meter.Credits, ttl time.Duration, idem string) {
	t.Helper()
	if _, err := reserve(s, id, rid, amount, ttl, idem); err != nil {
		t.Fatalf("Reserve(%s, %s): %v", rid, amount, err)
	}
}
