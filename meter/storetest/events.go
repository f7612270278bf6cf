package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// ClaimEvents is global: a claim also leases the events of other cases'
// accounts. The cases here look only at their own account's events, and
// run one after the other.

// claimOf claims as owner and returns the events of account acct.
func claimOf(t *testing.T, s meter.Store, owner string, lease time.Duration, acct string) []meter.Event {
	t.Helper()
	evs, err := s.ClaimEvents(ctx, owner, lease, 100000)
	if err != nil {
		t.Fatalf("ClaimEvents: %v", err)
	}
	var mine []meter.Event
	for _, e := range evs {
		if e.AccountID == acct {
			mine = append(mine, e)
		}
	}
	return mine
}

// drain claims, checks the types of acct's events, oldest first, and
// acknowledges them.
func drain(t *testing.T, s meter.Store, acct string, types ...string) []meter.Event {
	t.Helper()
	evs := claimOf(t, s, "drain", time.Minute, acct)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type)
		if err := s.AckEvent(ctx, acct, e.ID); err != nil {
			t.Fatalf("AckEvent: %v", err)
		}
	}
	if len(got) != len(types) {
		t.Fatalf("events %v; want %v", got, types)
	}
	for i := range got {
		if got[i] != types[i] {
			t.Fatalf("events %v; want %v", got, types)
		}
	}
	return evs
}

func lowBalanceAccount(t *testing.T, s meter.Store, balance, threshold meter.Credits) string {
	t.Helper()
	id := newAccount(t, s, balance)
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{LowBalanceThreshold: threshold}); err != nil {
		t.Fatal(err)
	}
	return id
}

// debit reserves and commits amount, without a period.
func debit(t *testing.T, s meter.Store, id string, amount meter.Credits) {
	t.Helper()
	rid := newRID()
	mustReserve(t, s, id, rid, amount)
	mustCommit(t, s, id, rid, amount)
}

// Which events a movement raises (low balance once per crossing, re-armed
// by a purchase; none for a refusal; quota and overage) is Scripts/Events'
// (events_scripts.go) and meter/ledger TestEvents'; here, what the store
// records of an event and the outbox's claims, leases, acks and retries.
func testEvents(t *testing.T, s meter.Store) {
	t.Run("a low-balance crossing records one event", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		debit(t, s, id, c(3)) // 7: above
		drain(t, s, id)
		debit(t, s, id, c(3)) // 4: crosses
		debit(t, s, id, c(1)) // 3: still below, no second event
		evs := drain(t, s, id, meter.EventLowBalance)
		e := evs[0]
		if e.Balance != c(4) || e.Threshold != c(5) || e.Attempts != 0 || e.ID == "" ||
			time.Since(e.CreatedAt).Abs() > time.Minute {
			t.Errorf("event %+v", e)
		}
		if !meter.LedgerEntryID.MatchString(e.ID) {
			t.Errorf("event id %q", e.ID)
		}
	})
	t.Run("a lease keeps other owners out until it ends", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		debit(t, s, id, c(6))
		lease := 300 * time.Millisecond
		if evs := claimOf(t, s, "a", lease, id); len(evs) != 1 {
			t.Fatalf("first claim: %v", evs)
		}
		if evs := claimOf(t, s, "b", lease, id); len(evs) != 0 {
			t.Fatalf("claimed under a's lease: %v", evs)
		}
		time.Sleep(lease + 50*time.Millisecond)
		evs := claimOf(t, s, "b", lease, id)
		if len(evs) != 1 || evs[0].Attempts != 0 {
			t.Fatalf("claim after the lease: %+v", evs)
		}
		if err := s.AckEvent(ctx, id, evs[0].ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ack removes", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		debit(t, s, id, c(6))
		evs := claimOf(t, s, "a", time.Millisecond, id)
		if len(evs) != 1 {
			t.Fatalf("claim: %v", evs)
		}
		if err := s.AckEvent(ctx, id, evs[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AckEvent(ctx, id, evs[0].ID); err != nil {
			t.Errorf("second ack: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
		if evs := claimOf(t, s, "a", time.Millisecond, id); len(evs) != 0 {
			t.Errorf("claimed after ack: %v", evs)
		}
		err := s.RetryEvent(ctx, id, evs[0].ID, 0)
		wantCode(t, err, meter.ECodeNotFound)
	})
	t.Run("retry delays and counts", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		debit(t, s, id, c(6))
		evs := claimOf(t, s, "a", time.Minute, id)
		if len(evs) != 1 {
			t.Fatalf("claim: %v", evs)
		}
		delay := 300 * time.Millisecond
		if err := s.RetryEvent(ctx, id, evs[0].ID, delay); err != nil {
			t.Fatal(err)
		}
		if got := claimOf(t, s, "b", time.Minute, id); len(got) != 0 {
			t.Fatalf("claimed before the retry time: %v", got)
		}
		time.Sleep(delay + 50*time.Millisecond)
		got := claimOf(t, s, "b", time.Minute, id)
		if len(got) != 1 || got[0].ID != evs[0].ID || got[0].Attempts != 1 {
			t.Fatalf("claim after the retry time: %+v", got)
		}
		if err := s.AckEvent(ctx, id, got[0].ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("reindex finds pending outboxes", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		debit(t, s, id, c(6))
		n, err := s.ReindexEvents(ctx)
		if err != nil || n < 1 {
			t.Fatalf("ReindexEvents: %d, %v", n, err)
		}
		drain(t, s, id, meter.EventLowBalance)
	})
}
