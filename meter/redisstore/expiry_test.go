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

// sweepBound is SWEEP_LIMIT * SWEEP_BATCHES of lib.lua: the most timers
// one call sweeps.
const sweepBound = 200 * 5

// backdateHolds makes n holds of 1 credit on id all due at once (none is
// swept while the others are made, however slow the machine).
func backdateHolds(t testing.TB, s *Store, id string, n int) {
	t.Helper()
	cl := srv.Client()
	defer cl.Close()
	for i := 0; i < n; i++ {
		mustReserve(t, s, id, newRID(), c(1))
	}
	holds := s.accountKeys(id)[1]
	rids, err := cl.ZRange(ctx, holds, 0, -1).Result()
	if err != nil || len(rids) != n {
		t.Fatalf("%d holds, %v", len(rids), err)
	}
	p := cl.Pipeline()
	for _, rid := range rids {
		p.ZAddXX(ctx, holds, redis.Z{Score: 1, Member: rid})
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Timers set behind the scripts' back must lower the account's
	// next-due marker too (or wait for up to SWEEP_AHEAD).
	cl.HDel(ctx, s.accountKeys(id)[0], "due")
}

// Holds that expired together are all released by the next call that
// reads the pools, up to sweepBound of them; a call never sweeps more, and
// the next one goes on.
func TestSweepIsBounded(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10000))
	backdateHolds(t, s, id, 450)
	if a, _ := s.Account(ctx, id); a.Reserved != 0 {
		t.Errorf("450 expired holds: reserved %s after one read, want 0", a.Reserved)
	}
	id = newAccount(t, s, c(10000))
	backdateHolds(t, s, id, sweepBound+250)
	for _, want := range []meter.Credits{c(250), 0} {
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

// BenchmarkSweepWorstCase times the longest sweep one call makes:
// sweepBound holds expired together, released by one read of the account
// (the script's time, plus one round trip).
func BenchmarkSweepWorstCase(b *testing.B) {
	s := newStore(b, Options{})
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := newAccount(b, s, c(10000))
		backdateHolds(b, s, id, sweepBound)
		b.StartTimer()
		if a, err := s.Account(ctx, id); err != nil || a.Reserved != 0 {
			b.Fatalf("%+v, %v", a, err)
		}
	}
}
