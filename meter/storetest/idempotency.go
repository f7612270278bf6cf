package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Fingerprints of two different requests, as the gateway spells them.
const (
	fpA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	fpB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// The idempotency contract (IETF "The Idempotency-Key HTTP Header Field",
// Stripe): a key is bound to the fingerprint of its first request, and a
// charged request is replayed with the response stored in its commit.
// Every case starts from a new account holding 10 credits.
func testIdempotencyFingerprint(t *testing.T, s meter.Store) {
	purchase := entry{"purchase", c(10), c(10), false}
	resp := []byte("HTTP/1.1 200 OK\r\n\r\n{\"pages\":1}\x00|#binary")
	tests := []struct {
		name              string
		run               func(t *testing.T, s meter.Store, id string)
		balance, reserved meter.Credits
		ledger            []entry
	}{
		{"another request with a held key is refused, whatever it costs", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(1), time.Minute, "k", fpA)
			_, err := reserveFP(s, id, "r2", c(9), time.Minute, "k", fpB)
			wantCode(t, err, meter.ECodeIdempotencyKeyReused)
			_, err = commit(s, id, "r2", c(9)) // the refusal reserved nothing
			wantCode(t, err, meter.ECodeReservationNotFound)
			// The same request again is still in flight.
			_, err = reserveFP(s, id, "r3", c(1), time.Minute, "k", fpA)
			wantCode(t, err, meter.ECodeIdempotencyConflict)
		}, c(10), c(1), []entry{purchase}},

		{"another request with a charged key is refused, never replayed", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(1), time.Minute, "k", fpA)
			mustCommitResponse(t, s, id, "r1", c(1), resp)
			for _, amount := range []meter.Credits{0, c(1), c(9)} {
				_, err := reserveFP(s, id, "r2", amount, time.Minute, "k", fpB)
				wantCode(t, err, meter.ECodeIdempotencyKeyReused)
			}
		}, c(9), 0, []entry{purchase, usage(1, 9)}},

		{"the same request replays the stored response", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(2), time.Minute, "k", fpA)
			mustCommitResponse(t, s, id, "r1", c(2), resp)
			for i := 0; i < 2; i++ {
				r, err := reserveFP(s, id, "r2", c(2), time.Minute, "k", fpA)
				if err != nil || !r.Replayed || r.ID != "r1" || r.Amount != c(2) || r.Available != c(8) {
					t.Fatalf("replay: %+v, %v", r, err)
				}
				if !bytes.Equal(r.Response, resp) {
					t.Fatalf("replayed response %q, want %q", r.Response, resp)
				}
			}
		}, c(8), 0, []entry{purchase, usage(2, 8)}},

		{"a replay needs no credits: it charges nothing", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(4), time.Minute, "k", fpA)
			mustCommitResponse(t, s, id, "r1", c(4), resp)
			mustReserve(t, s, id, "r2", c(6)) // everything else is held
			r, err := reserveFP(s, id, "r3", c(4), time.Minute, "k", fpA)
			if err != nil || !r.Replayed || r.Amount != c(4) || r.Available != 0 || !bytes.Equal(r.Response, resp) {
				t.Fatalf("replay: %+v, %v", r, err)
			}
		}, c(6), c(6), []entry{purchase, usage(4, 6)}},

		{"a commit without a response replays none", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(2), time.Minute, "k", fpA)
			mustCommit(t, s, id, "r1", c(2))
			r, err := reserveFP(s, id, "r2", c(2), time.Minute, "k", fpA)
			if err != nil || !r.Replayed || r.Response != nil {
				t.Fatalf("replay: %+v, %v", r, err)
			}
		}, c(8), 0, []entry{purchase, usage(2, 8)}},

		{"a response given without a key is not kept", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(2), time.Minute, "", fpA)
			mustCommitResponse(t, s, id, "r1", c(2), resp)
			// The same fingerprint under a key is a new request.
			if r, err := reserveFP(s, id, "r2", c(1), time.Minute, "k", fpA); err != nil || r.Replayed {
				t.Fatalf("reserve: %+v, %v", r, err)
			}
		}, c(8), c(1), []entry{purchase, usage(2, 8)}},

		{"a voided request frees its key for any request", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(1), time.Minute, "k", fpA)
			if _, err := s.Void(ctx, id, "r1"); err != nil {
				t.Fatal(err)
			}
			r := mustReserveFP(t, s, id, "r2", c(3), time.Minute, "k", fpB)
			mustCommitResponse(t, s, id, "r2", c(3), resp)
			if r.Replayed {
				t.Fatalf("reserve after void: %+v", r)
			}
			_, err := reserveFP(s, id, "r3", c(1), time.Minute, "k", fpA)
			wantCode(t, err, meter.ECodeIdempotencyKeyReused)
		}, c(7), 0, []entry{purchase, usage(3, 7)}},

		{"an expired request frees its key for any request", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(1), shortTTL, "k", fpA)
			pastTTL()
			if r := mustReserveFP(t, s, id, "r2", c(3), time.Minute, "k", fpB); r.Replayed {
				t.Fatalf("reserve after expiry: %+v", r)
			}
		}, c(10), c(3), []entry{purchase}},

		{"a late commit keeps its response and fingerprint", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(2), shortTTL, "k", fpA)
			pastTTL()
			mustCommitResponse(t, s, id, "r1", c(2), resp)
			_, err := reserveFP(s, id, "r2", c(2), time.Minute, "k", fpB)
			wantCode(t, err, meter.ECodeIdempotencyKeyReused)
			r, err := reserveFP(s, id, "r3", c(2), time.Minute, "k", fpA)
			if err != nil || !r.Replayed || r.ID != "r1" || !bytes.Equal(r.Response, resp) {
				t.Fatalf("replay: %+v, %v", r, err)
			}
		}, c(8), 0, []entry{purchase, {"usage", -c(2), c(8), true}}},

		{"a late commit leaves the key and its response to the retry that holds it", func(t *testing.T, s meter.Store, id string) {
			mustReserveFP(t, s, id, "r1", c(2), shortTTL, "k", fpA)
			pastTTL()
			mustReserveFP(t, s, id, "r2", c(1), time.Minute, "k", fpB)
			mustCommitResponse(t, s, id, "r1", c(2), []byte("late"))
			mustCommitResponse(t, s, id, "r2", c(1), resp)
			r, err := reserveFP(s, id, "r3", c(1), time.Minute, "k", fpB)
			if err != nil || !r.Replayed || r.ID != "r2" || !bytes.Equal(r.Response, resp) {
				t.Fatalf("replay: %+v, %v", r, err)
			}
		}, c(7), 0, []entry{purchase, {"usage", -c(2), c(8), true}, usage(1, 7)}},

		{"fingerprints and responses are bounded", func(t *testing.T, s meter.Store, id string) {
			_, err := reserveFP(s, id, "r1", c(1), time.Minute, "k", "a|b")
			wantCode(t, err, meter.ECodeInvalid)
			_, err = reserveFP(s, id, "r1", c(1), time.Minute, "k", string(bytes.Repeat([]byte("a"), meter.MaxFingerprintLen+1)))
			wantCode(t, err, meter.ECodeInvalid)
			mustReserveFP(t, s, id, "r1", c(1), time.Minute, "k", fpA)
			_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Amount: c(1),
				Response: make([]byte, meter.MaxResponseLen+1)})
			wantCode(t, err, meter.ECodeInvalid)
		}, c(10), c(1), []entry{purchase}},
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

func reserveFP(s meter.Store, id, rid string, amount meter.Credits, ttl time.Duration, idem, fp string) (meter.Reservation, error) {
	return s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: ttl,
		IdempotencyKey: idem, Fingerprint: fp})
}

func mustReserveFP(t testing.TB, s meter.Store, id, rid string, amount meter.Credits, ttl time.Duration, idem, fp string) meter.Reservation {
	t.Helper()
	r, err := reserveFP(s, id, rid, amount, ttl, idem, fp)
	if err != nil {
		t.Fatalf("Reserve(%s, %s): %v", rid, amount, err)
	}
	return r
}

func mustCommitResponse(t testing.TB, s meter.Store, id, rid string, amount meter.Credits, resp []byte) meter.Settlement {
	t.Helper()
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount,
		Description: "test", Route: "/convert", RequestID: "req-" + rid, Response: resp})
	if err != nil {
		t.Fatalf("Commit(%s, %s): %v", rid, amount, err)
	}
	return st
}
