package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// claimMine claims every due event and returns those of account id.
func claimMine(t *testing.T, s *Store, id string) []meter.Event {
	t.Helper()
	evs, err := s.ClaimEvents(ctx, "test", time.Minute, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var mine []meter.Event
	for _, e := range evs {
		if e.AccountID == id {
			mine = append(mine, e)
		}
	}
	return mine
}

// The outbox index is written after the script that records an event;
// when that write is lost, the event waits in the outbox until a reindex.
func TestLostIndexWriteIsRepairedByReindex(t *testing.T) {
	s := newStore(t, Options{})
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer cl.Close()
	id := newAccount(t, s, c(10))
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{LowBalanceThreshold: c(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Type: meter.EntryAdjustment, Amount: -c(6)}); err != nil {
		t.Fatal(err)
	}
	if err := cl.SRem(ctx, s.outboxIndexKey(), id).Err(); err != nil {
		t.Fatal(err)
	}
	if evs := claimMine(t, s, id); len(evs) != 0 {
		t.Fatalf("claimed without the index: %v", evs)
	}
	if n, err := s.ReindexEvents(ctx); err != nil || n < 1 {
		t.Fatalf("ReindexEvents: %d, %v", n, err)
	}
	evs := claimMine(t, s, id)
	if len(evs) != 1 || evs[0].Type != meter.EventLowBalance {
		t.Fatalf("after reindex: %+v", evs)
	}
	if err := s.AckEvent(ctx, id, evs[0].ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cl.SIsMember(ctx, s.outboxIndexKey(), id).Result(); ok {
		t.Error("an account without events is still indexed")
	}
}

// Accounts whose settings were written before webhooks have a threshold
// in their settings JSON only: the scripts read it from there once.
func TestThresholdOfOlderAccounts(t *testing.T) {
	s := newStore(t, Options{})
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer cl.Close()
	id := newAccount(t, s, c(10))
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{LowBalanceThreshold: c(5)}); err != nil {
		t.Fatal(err)
	}
	if err := cl.HDel(ctx, s.accountKeys(id)[0], "lb_threshold").Err(); err != nil {
		t.Fatal(err)
	}
	rid := newRID()
	mustReserve(t, s, id, rid, c(6))
	mustCommit(t, s, id, rid, c(6))
	evs := claimMine(t, s, id)
	if len(evs) != 1 || evs[0].Threshold != c(5) || evs[0].Balance != c(4) {
		t.Fatalf("events %+v", evs)
	}
}
