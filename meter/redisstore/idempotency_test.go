package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// A stored response lives in a key of its own that Redis expires at the
// purge of its record, so it needs no sweep to go; the record and the
// mapping go with the next script after it.
func TestRetainExpiresStoredResponses(t *testing.T) {
	s := newStore(t, Options{Retain: 200 * time.Millisecond})
	id := newAccount(t, s, c(10))
	fp := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "r1", Amount: c(1), TTL: time.Minute,
		IdempotencyKey: "k", Fingerprint: fp}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Amount: c(1),
		Response: []byte("stored")}); err != nil {
		t.Fatal(err)
	}
	cl := srv.Client()
	defer cl.Close()
	key := s.responseKey(id, "r1")
	if ttl, err := cl.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("response key TTL %v, %v; want at most Retain", ttl, err)
	}
	time.Sleep(250 * time.Millisecond)
	if n, err := cl.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("response key still there after Retain: %d, %v", n, err)
	}
	// The key is free again: another request under it is a new one.
	r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "r2", Amount: c(1), TTL: time.Minute,
		IdempotencyKey: "k", Fingerprint: "other"})
	if err != nil || r.Replayed {
		t.Fatalf("after Retain: %+v, %v", r, err)
	}
}
