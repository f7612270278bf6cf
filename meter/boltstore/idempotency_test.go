package boltstore

import (
	"bytes"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// A stored response is purged with its record, Retain after the commit on
// the store's clock, and the key is then free for any request. (A Reserve
// in memory reads the due purge as done; the next write does it.)
func TestRetainPurgesStoredResponses(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now, Retain: time.Hour})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	req := meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(1), TTL: time.Minute, IdempotencyKey: "k", Fingerprint: "fa"}
	if _, err := s.Reserve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(1), Response: []byte("stored")}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour - time.Millisecond)
	req.ID = "r2"
	if r, err := s.Reserve(ctx, req); err != nil || !r.Replayed || !bytes.Equal(r.Response, []byte("stored")) {
		t.Fatalf("replay just before Retain: %+v, %v", r, err)
	}
	clk.Add(time.Millisecond)
	req.ID, req.Fingerprint = "r3", "other"
	if r, err := s.Reserve(ctx, req); err != nil || r.Replayed {
		t.Fatalf("after Retain: %+v, %v", r, err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r3", Amount: c(1)}); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bAccounts).Bucket([]byte("a")).Bucket(bIdem).Get(responseKey("r1")); v != nil {
			t.Errorf("response of r1 still stored: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
