package redisstore

import (
	"strings"
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
	// The fingerprint is kept next to the key's mapping, not in the
	// record, whose format gateways of older versions read too.
	idemKey, resKey := s.accountKeys(id)[3], s.accountKeys(id)[2]
	if got, err := cl.HGet(ctx, idemKey, "f:r1").Result(); err != nil || got != fp {
		t.Fatalf("fingerprint %q, %v", got, err)
	}
	if rec, err := cl.HGet(ctx, resKey, "r1").Result(); err != nil || !strings.HasPrefix(rec, "c|") {
		t.Fatalf("record %q, %v", rec, err)
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
	if n, err := cl.HExists(ctx, idemKey, "f:r1").Result(); err != nil || n {
		t.Fatalf("the purged record's fingerprint is still there: %v, %v", n, err)
	}
}
