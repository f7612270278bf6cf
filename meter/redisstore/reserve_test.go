package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Every case starts from a new account holding 10 credits.
func TestReserveCommitVoid(t *testing.T) {
	purchase := entry{"purchase", c(10), c(10), false}
	usage := func(amount, after float64) entry { return entry{"usage", -c(amount), c(after), false} }
	tests := []struct {
		name              string
		run               func(t *testing.T, s *Store, id string)
		balance, reserved meter.Credits
		ledger            []entry
	}{
		{"reserve holds the amount", func(t *testing.T, s *Store, id string) {
			r := mustReserve(t, s, id, "r1", c(4))
			if r.ID != "r1" || r.Amount != c(4) || r.Replayed || r.Balance != c(10) || r.Available != c(6) {
				t.Errorf("reservation %+v", r)
			}
		}, c(10), c(4), []entry{purchase}},

		{"commit the full amount", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			st := mustCommit(t, s, id, "r1", c(4))
			if st.Charged != c(4) || st.Balance != c(6) || st.Available != c(6) || st.EntryID == "" || st.Late {
				t.Errorf("settlement %+v", st)
			}
		}, c(6), 0, []entry{purchase, usage(4, 6)}},

		{"partial commit releases the rest", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			mustReserve(t, s, id, "r2", c(1))
			st := mustCommit(t, s, id, "r1", c(2.5))
			if st.Charged != c(2.5) || st.Balance != c(7.5) || st.Available != c(6.5) {
				t.Errorf("settlement %+v", st)
			}
		}, c(7.5), c(1), []entry{purchase, usage(2.5, 7.5)}},

		{"commit more than reserved is capped at the reservation", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(3))
			if st := mustCommit(t, s, id, "r1", c(7)); st.Charged != c(3) {
				t.Errorf("charged %s, want 3", st.Charged)
			}
		}, c(7), 0, []entry{purchase, usage(3, 7)}},

		{"commit twice returns the first settlement and charges nothing more", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			first := mustCommit(t, s, id, "r1", c(4))
			mustReserve(t, s, id, "r2", c(1))
			mustCommit(t, s, id, "r2", c(1))
			if again := mustCommit(t, s, id, "r1", c(4)); again != first {
				t.Errorf("second commit %+v; want first %+v", again, first)
			}
		}, c(5), 0, []entry{purchase, usage(4, 6), usage(1, 5)}},

		{"commit of 0 settles without a ledger entry", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			if st := mustCommit(t, s, id, "r1", 0); st.Charged != 0 || st.EntryID != "" || st.Available != c(10) {
				t.Errorf("settlement %+v", st)
			}
		}, c(10), 0, []entry{purchase}},

		{"a reservation of 0 is allowed", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", 0)
			mustCommit(t, s, id, "r1", c(1))
		}, c(10), 0, []entry{purchase}},

		{"a large amount stays exact", func(t *testing.T, s *Store, id string) {
			big := MaxCredits - c(10) - 1
			if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: big, Type: meter.EntryPurchase}); err != nil {
				t.Fatal(err)
			}
			mustReserve(t, s, id, "r1", big)
			mustCommit(t, s, id, "r1", big-1)
		}, c(10) + 1, 0, []entry{purchase, {"purchase", MaxCredits - c(10) - 1, MaxCredits - 1, false}, {"usage", -(MaxCredits - c(10) - 2), c(10) + 1, false}}},

		{"void releases and charges nothing; voiding again is a no-op", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			for i := 0; i < 2; i++ {
				st, err := s.Void(ctx, id, "r1")
				if err != nil || st.Charged != 0 || st.Balance != c(10) || st.Available != c(10) {
					t.Errorf("void %d: %+v, %v", i, st, err)
				}
			}
		}, c(10), 0, []entry{purchase}},

		{"void after commit is refused", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			mustCommit(t, s, id, "r1", c(2))
			_, err := s.Void(ctx, id, "r1")
			wantCode(t, err, meter.ECodeReservationSettled)
		}, c(8), 0, []entry{purchase, usage(2, 8)}},

		{"commit after void is refused", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			s.Void(ctx, id, "r1")
			_, err := commit(s, id, "r1", c(2))
			wantCode(t, err, meter.ECodeReservationSettled)
		}, c(10), 0, []entry{purchase}},

		{"unknown reservation", func(t *testing.T, s *Store, id string) {
			_, err := commit(s, id, "nope", c(1))
			wantCode(t, err, meter.ECodeReservationNotFound)
			_, err = s.Void(ctx, id, "nope")
			wantCode(t, err, meter.ECodeReservationNotFound)
		}, c(10), 0, []entry{purchase}},

		{"insufficient credits says what was required and available", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(6))
			_, err := reserve(t, s, id, "r2", c(5), time.Minute, "")
			e := wantCode(t, err, meter.ECodeInsufficientCredits)
			if e.Details["required"] != c(5) || e.Details["available"] != c(4) {
				t.Errorf("details %v; want required 5, available 4", e.Details)
			}
		}, c(10), c(6), []entry{purchase}},

		{"a reservation id cannot be reused", func(t *testing.T, s *Store, id string) {
			mustReserve(t, s, id, "r1", c(1))
			mustCommit(t, s, id, "r1", c(1))
			_, err := reserve(t, s, id, "r1", c(1), time.Minute, "")
			wantCode(t, err, meter.ECodeInvalid)
		}, c(9), 0, []entry{purchase, usage(1, 9)}},

		{"invalid requests", func(t *testing.T, s *Store, id string) {
			for _, r := range []meter.ReserveRequest{
				{AccountID: id, ID: "r1", Amount: -1, TTL: time.Minute},
				{AccountID: id, ID: "r1", Amount: MaxCredits + 1, TTL: time.Minute},
				{AccountID: id, ID: "", Amount: 1, TTL: time.Minute},
				{AccountID: id, ID: "r1", Amount: 1, TTL: 0},
				{AccountID: "bad id", ID: "r1", Amount: 1, TTL: time.Minute},
			} {
				_, err := s.Reserve(ctx, r)
				wantCode(t, err, meter.ECodeInvalid)
			}
			_, err := commit(s, id, "r1", -1)
			wantCode(t, err, meter.ECodeInvalid)
		}, c(10), 0, []entry{purchase}},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newAccount(t, s, c(10))
			tt.run(t, s, id)
			expect(t, s, id, tt.balance, tt.reserved, tt.ledger...)
		})
	}
}

func TestUnknownAccount(t *testing.T) {
	s := newStore(t, Options{})
	_, err := s.Account(ctx, "nobody")
	wantCode(t, err, meter.ECodeAccountNotFound)
	_, err = reserve(t, s, "nobody", "r1", c(1), time.Minute, "")
	wantCode(t, err, meter.ECodeAccountNotFound)
	_, err = commit(s, "nobody", "r1", c(1))
	wantCode(t, err, meter.ECodeAccountNotFound)
	_, err = s.Void(ctx, "nobody", "r1")
	wantCode(t, err, meter.ECodeAccountNotFound)
	_, err = s.Grant(ctx, meter.Grant{AccountID: "nobody", Amount: 1, Type: meter.EntryPurchase})
	wantCode(t, err, meter.ECodeAccountNotFound)
	_, err = s.Ledger(ctx, meter.LedgerQuery{AccountID: "nobody"})
	wantCode(t, err, meter.ECodeAccountNotFound)
}
