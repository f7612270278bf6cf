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
	// Timers set behind the scripts' back must lower the account's
	// next-due marker too (or wait for up to SWEEP_AHEAD).
	cl.HDel(ctx, s.accountKeys(id)[0], "due")
	// Each script expires at most SWEEP_LIMIT holds; three reads clear 450.
	for _, want := range []meter.Credits{c(250), c(50), 0} {
		if a, _ := s.Account(ctx, id); a.Reserved != want {
			t.Errorf("reserved %s, want %s", a.Reserved, want)
		}
	}
}

// A timer set without lowering the next-due marker (by a gateway of an
// older version, during an upgrade) is still seen within SWEEP_AHEAD (1s).
func TestTimerBehindMarker(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	mustReserve(t, s, id, "r1", c(1))
	cl := srv.Client()
	defer cl.Close()
	if err := cl.ZAddXX(ctx, s.accountKeys(id)[1], redis.Z{Score: 1, Member: "r:r1"}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if a, _ := s.Account(ctx, id); a.Reserved != 0 {
		t.Errorf("a second later: reserved %s, want 0", a.Reserved)
	}
}

// The first call on an account sweeps it and leaves a next-due marker,
// which reserve saves with its own fields; calls before it skip the sweep.
func TestNextDueMarkerSaved(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	cl := srv.Client()
	defer cl.Close()
	k := s.accountKeys(id)[0]
	if due, err := cl.HGet(ctx, k, "due").Result(); err != redis.Nil {
		t.Fatalf("new account: due %q, %v", due, err)
	}
	before := time.Now().UnixMilli()
	mustReserve(t, s, id, "r1", c(1))
	due, err := cl.HGet(ctx, k, "due").Int64()
	if err != nil || due < before || due > time.Now().UnixMilli()+1000 {
		t.Fatalf("after reserve: due %d, %v (before %d)", due, err, before)
	}
	mustCommit(t, s, id, "r1", c(1))
	if again, _ := cl.HGet(ctx, k, "due").Int64(); again != due && time.Now().UnixMilli() < due {
		t.Errorf("commit within the second moved the marker: %d -> %d", due, again)
	}
}
