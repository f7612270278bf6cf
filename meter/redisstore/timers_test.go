package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// After Retain, every settled record, idempotency mapping and timer of an
// account is gone: nothing grows without bound under steady traffic.
func TestRetainLeavesNothingBehind(t *testing.T) {
	s := newStore(t, Options{Retain: 100 * time.Millisecond})
	id := newAccount(t, s, c(10))
	reserve(t, s, id, "r1", c(2), time.Minute, "k|with|bars")
	mustCommit(t, s, id, "r1", c(1))
	reserve(t, s, id, "r2", c(2), time.Minute, "")
	s.Void(ctx, id, "r2")
	reserve(t, s, id, "r3", c(2), shortTTL, "")
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(1), Type: meter.EntryPurchase, IdempotencyKey: "g"}); err != nil {
		t.Fatal(err)
	}
	// A lease's group settle and a group of late requests keep their
	// replies for a resent call (see lease_settle.lua).
	reserve(t, s, id, "lease", c(3), time.Minute, "")
	creq := func(rid string) []meter.CommitRequest {
		return []meter.CommitRequest{{AccountID: id, ReservationID: rid, Amount: c(1), Route: "/a"}}
	}
	if _, err := s.SettleLease(ctx, id, "lease", creq("l1"), []meter.Credits{c(1)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SettleLease(ctx, id, "", creq("l2"), []meter.Credits{c(1)}, []bool{true}); err != nil {
		t.Fatal(err)
	}
	s.Void(ctx, id, "lease")
	// A key with the record separator in it still replays.
	if r, err := reserve(t, s, id, "r4", c(2), time.Minute, "k|with|bars"); err != nil || !r.Replayed || r.ID != "r1" {
		t.Errorf("replay: %+v, %v", r, err)
	}
	time.Sleep(150 * time.Millisecond)
	s.Account(ctx, id) // r3 expires: its record is kept for Retain
	time.Sleep(150 * time.Millisecond)
	s.Account(ctx, id)

	cl := srv.Client()
	defer cl.Close()
	k := s.accountKeys(id)
	for _, key := range []string{k[1], k[2], k[3]} {
		if n, err := cl.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("%s still exists (%v)", key, err)
		}
	}
	expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false},
		entry{"usage", -c(1), c(9), false}, entry{"purchase", c(1), c(10), false},
		entry{"usage", -c(1), c(9), false}, entry{"usage", -c(1), c(8), true})
}
