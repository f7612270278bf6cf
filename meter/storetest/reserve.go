package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Every case starts from a new account holding 10 credits.
func testReserveCommitVoid(t *testing.T, s meter.Store) {
	purchase := entry{"purchase", c(10), c(10), false}
	tests := []struct {
		name              string
		run               func(t *testing.T, s meter.Store, id string)
		balance, reserved meter.Credits
		ledger            []entry
	}{
		{"reserve holds the amount", func(t *testing.T, s meter.Store, id string) {
			r := mustReserve(t, s, id, "r1", c(4))
			if r.ID != "r1" || r.AccountID != id || r.Amount != c(4) || r.Replayed || r.Balance != c(10) || r.Available != c(6) {
				t.Errorf("reservation %+v", r)
			}
		}, c(10), c(4), []entry{purchase}},

		{"commit the full amount", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			st := mustCommit(t, s, id, "r1", c(4))
			if st.Charged != c(4) || st.Balance != c(6) || st.Available != c(6) || st.EntryID == "" || st.Late {
				t.Errorf("settlement %+v", st)
			}
			es := oldestFirst(t, s, id)
			if u := es[1]; u.ID != st.EntryID || u.Route != "/convert" || u.Description != "test" || u.RequestID != "req-r1" ||
				u.ReservationID != "r1" || u.Quota != 0 || u.Overage != 0 || u.Late || u.AccountID != id {
				t.Errorf("usage entry %+v", u)
			}
		}, c(6), 0, []entry{purchase, usage(4, 6)}},

		{"partial commit releases the rest", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			mustReserve(t, s, id, "r2", c(1))
			st := mustCommit(t, s, id, "r1", c(2.5))
			if st.Charged != c(2.5) || st.Balance != c(7.5) || st.Available != c(6.5) {
				t.Errorf("settlement %+v", st)
			}
		}, c(7.5), c(1), []entry{purchase, usage(2.5, 7.5)}},

		{"commit more than reserved is capped at the reservation", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(3))
			if st := mustCommit(t, s, id, "r1", c(7)); st.Charged != c(3) {
				t.Errorf("charged %s, want 3", st.Charged)
			}
		}, c(7), 0, []entry{purchase, usage(3, 7)}},

		{"commit twice returns the first settlement and charges nothing more", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			first := mustCommit(t, s, id, "r1", c(4))
			mustReserve(t, s, id, "r2", c(1))
			mustCommit(t, s, id, "r2", c(1))
			if again := mustCommit(t, s, id, "r1", c(4)); again != first {
				t.Errorf("second commit %+v; want first %+v", again, first)
			}
		}, c(5), 0, []entry{purchase, usage(4, 6), usage(1, 5)}},

		{"commit of 0 settles without a ledger entry", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(4))
			if st := mustCommit(t, s, id, "r1", 0); st.Charged != 0 || st.EntryID != "" || st.Available != c(10) {
				t.Errorf("settlement %+v", st)
			}
		}, c(10), 0, []entry{purchase}},

		{"a reservation of 0 is allowed", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", 0)
			mustCommit(t, s, id, "r1", c(1))
		}, c(10), 0, []entry{purchase}},

		{"a large amount stays exact", func(t *testing.T, s meter.Store, id string) {
			big := MaxCredits - c(10) - 1
			if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: big, Type: meter.EntryPurchase}); err != nil {
				t.Fatal(err)
			}
			mustReserve(t, s, id, "r1", big)
			mustCommit(t, s, id, "r1", big-1)
		}, c(10) + 1, 0, []entry{purchase, {"purchase", MaxCredits - c(10) - 1, MaxCredits - 1, false},
			{"usage", -(MaxCredits - c(10) - 2), c(10) + 1, false}}},

		{"void releases and charges nothing; voiding again is a no-op", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			for i := 0; i < 2; i++ {
				st, err := s.Void(ctx, id, "r1")
				if err != nil || st.Charged != 0 || st.Balance != c(10) || st.Available != c(10) || st.EntryID != "" {
					t.Errorf("void %d: %+v, %v", i, st, err)
				}
			}
		}, c(10), 0, []entry{purchase}},

		{"void after commit is refused", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			mustCommit(t, s, id, "r1", c(2))
			_, err := s.Void(ctx, id, "r1")
			wantCode(t, err, meter.ECodeReservationSettled)
		}, c(8), 0, []entry{purchase, usage(2, 8)}},

		{"commit after void is refused", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(5))
			if _, err := s.Void(ctx, id, "r1"); err != nil {
				t.Fatal(err)
			}
			_, err := commit(s, id, "r1", c(2))
			wantCode(t, err, meter.ECodeReservationSettled)
		}, c(10), 0, []entry{purchase}},

		{"unknown reservation", func(t *testing.T, s meter.Store, id string) {
			for _, rid := range []string{"nope", ""} {
				_, err := commit(s, id, rid, c(1))
				wantCode(t, err, meter.ECodeReservationNotFound)
				_, err = s.Void(ctx, id, rid)
				wantCode(t, err, meter.ECodeReservationNotFound)
			}
		}, c(10), 0, []entry{purchase}},

		{"reservations are per account", func(t *testing.T, s meter.Store, id string) {
			other := newAccount(t, s, c(10))
			mustReserve(t, s, other, "r1", c(1))
			_, err := commit(s, id, "r1", c(1))
			wantCode(t, err, meter.ECodeReservationNotFound)
			mustReserve(t, s, id, "r1", c(2)) // the same id on another account
		}, c(10), c(2), []entry{purchase}},

		{"insufficient credits says what was required and available", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(6))
			_, err := reserve(s, id, "r2", c(5), time.Minute, "")
			e := wantCode(t, err, meter.ECodeInsufficientCredits)
			if e.Details["required"] != c(5) || e.Details["available"] != c(4) {
				t.Errorf("details %v; want required 5, available 4", e.Details)
			}
		}, c(10), c(6), []entry{purchase}},

		{"a reservation id cannot be reused", func(t *testing.T, s meter.Store, id string) {
			mustReserve(t, s, id, "r1", c(1))
			mustCommit(t, s, id, "r1", c(1))
			_, err := reserve(s, id, "r1", c(1), time.Minute, "")
			wantCode(t, err, meter.ECodeInvalid)
			mustReserve(t, s, id, "r2", c(1))
			_, err = reserve(s, id, "r2", c(1), time.Minute, "")
			wantCode(t, err, meter.ECodeInvalid)
		}, c(9), c(1), []entry{purchase, usage(1, 9)}},

		{"invalid requests", func(t *testing.T, s meter.Store, id string) {
			for _, r := range []meter.ReserveRequest{
				{AccountID: id, ID: "r1", Amount: -1, TTL: time.Minute},
				{AccountID: id, ID: "r1", Amount: MaxCredits + 1, TTL: time.Minute},
				{AccountID: id, ID: "", Amount: 1, TTL: time.Minute},
				{AccountID: id, ID: string(make([]byte, 129)), Amount: 1, TTL: time.Minute},
				{AccountID: id, ID: "r1", Amount: 1, TTL: 0},
				{AccountID: id, ID: meter.JobHoldPrefix + "r1", Amount: 1, TTL: time.Minute}, // a job's hold
				{AccountID: "bad id", ID: "r1", Amount: 1, TTL: time.Minute},
				{AccountID: id, ID: "r1", Amount: 1, TTL: time.Minute, Period: meter.Period{Start: month(1).Start, End: month(0).Start}},
			} {
				_, err := s.Reserve(ctx, r)
				wantCode(t, err, meter.ECodeInvalid)
			}
			_, err := commit(s, id, "r1", -1)
			wantCode(t, err, meter.ECodeInvalid)
			_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Pages: -1})
			wantCode(t, err, meter.ECodeInvalid)
		}, c(10), 0, []entry{purchase}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newAccount(t, s, c(10))
			tt.run(t, s, id)
			expect(t, s, id, tt.balance, tt.reserved, tt.ledger...)
		})
	}
}

// Every method refuses an account that does not exist with
// account_not_found (methods that check no account say so elsewhere).
func testUnknownAccount(t *testing.T, s meter.Store) {
	nobody := newID("nobody")
	checks := map[string]func() error{
		"Account":        func() error { _, err := s.Account(ctx, nobody); return err },
		"UpdateSettings": func() error { _, err := s.UpdateSettings(ctx, nobody, meter.Settings{}); return err },
		"Reserve":        func() error { _, err := reserve(s, nobody, "r1", c(1), time.Minute, ""); return err },
		"Commit":         func() error { _, err := commit(s, nobody, "r1", c(1)); return err },
		"Void":           func() error { _, err := s.Void(ctx, nobody, "r1"); return err },
		"Grant": func() error {
			_, err := s.Grant(ctx, meter.Grant{AccountID: nobody, Amount: 1, Type: meter.EntryPurchase})
			return err
		},
		"Ledger":     func() error { _, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: nobody}); return err },
		"ListKeys":   func() error { _, err := s.ListKeys(ctx, nobody); return err },
		"RevokeKey":  func() error { _, err := s.RevokeKey(ctx, nobody, "key_0000000000000000"); return err },
		"Usage":      func() error { _, err := s.Usage(ctx, nobody, month(0)); return err },
		"TrimLedger": func() error { _, err := s.TrimLedger(ctx, nobody, time.Now()); return err },
		"AddKey": func() error {
			return s.AddKey(ctx, meter.Key{Hash: meter.HashKey(nobody), AccountID: nobody, Mode: meter.ModeLive})
		},
		"Refund": func() error { _, err := s.Refund(ctx, meter.Refund{AccountID: nobody, EntryID: "1-0"}); return err },
	}
	for name, f := range checks {
		t.Run(name, func(t *testing.T) { wantCode(t, f(), meter.ECodeAccountNotFound) })
	}
}
