package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// dump is every key and value in the database, nested buckets included.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			out[prefix+string(k)] = string(v)
			return nil
		})
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A write that fails at its commit (as a full disk or an I/O error
// would) returns an internal error and leaves nothing of itself, in the
// file or in the holds in memory: every method that writes, at the point
// where it has written the most.
func TestFailedWriteLeavesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	id := "acct"
	if _, err := s.CreateAccount(ctx, id, c(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: c(2), OverageCap: c(5)}); err != nil {
		t.Fatal(err)
	}
	_, key := meter.NewKey(id, meter.ModeLive)
	if err := s.AddKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	reserve := func(rid string, ttl time.Duration) {
		t.Helper()
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(6), TTL: ttl,
			Period: month(0), IdempotencyKey: "k-" + rid}); err != nil {
			t.Fatal(err)
		}
	}
	reserve("held", time.Hour)
	reserve("done", time.Hour)
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "done", Amount: c(6), Route: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	reserve("expired", time.Millisecond)
	time.Sleep(5 * time.Millisecond)

	writes := map[string]func() error{
		"CreateAccount":  func() error { _, err := s.CreateAccount(ctx, "other", c(1)); return err },
		"UpdateSettings": func() error { _, err := s.UpdateSettings(ctx, id, meter.Settings{PageLimit: 3}); return err },
		"AddKey": func() error {
			_, k := meter.NewKey(id, meter.ModeTest)
			return s.AddKey(ctx, k)
		},
		"RevokeKey": func() error { _, err := s.RevokeKey(ctx, id, meter.KeyID(key.Hash)); return err },
		"Grant": func() error {
			_, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(1), Type: meter.EntryPurchase, IdempotencyKey: "g"})
			return err
		},
		"Reserve": func() error {
			_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "new", Amount: c(1), TTL: time.Hour,
				Period: month(1), IdempotencyKey: "k-new"})
			return err
		},
		"Commit": func() error {
			_, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "held", Amount: c(6), Route: "/b", Pages: 2})
			return err
		},
		"late Commit": func() error {
			_, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "expired", Amount: c(1)})
			return err
		},
		"Void":       func() error { _, err := s.Void(ctx, id, "held"); return err },
		"Refund":     func() error { _, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: st.EntryID}); return err },
		"TrimLedger": func() error { _, err := s.TrimLedger(ctx, id, time.Now().Add(time.Hour)); return err },
		// Reading an account with a due hold writes its expiry.
		"Account": func() error { _, err := s.Account(ctx, id); return err },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			before, holds := dump(t, s), memHolds(s, id)
			s.beforeCommit = func(*bolt.Tx) error { return errors.New("no space left on device") }
			err := write()
			s.beforeCommit = nil
			var me *meter.Error
			if !errors.As(err, &me) || me.Code != meter.ECodeMeteringUnavailable {
				t.Fatalf("error %v; want metering_unavailable", err)
			}
			if after := dump(t, s); !reflect.DeepEqual(after, before) {
				t.Errorf("the failed write left changes:\n%s", diff(before, after))
			}
			if after := memHolds(s, id); !reflect.DeepEqual(after, holds) {
				t.Errorf("the failed write changed the holds in memory:\n%v\nbefore:\n%v", after, holds)
			}
		})
	}
	// The store works on after the failures.
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "held", Amount: c(6)}); err != nil {
		t.Fatal(err)
	}
}

func diff(a, b map[string]string) string {
	out := ""
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out += fmt.Sprintf("- %q: %q\n", k, v)
		}
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			out += fmt.Sprintf("+ %q: %q\n", k, v)
		}
	}
	return out
}

// Closing the database under running writers: every call either took
// effect whole or failed with an internal error, and the reopened file
// holds exactly the ones that succeeded.
func TestCloseUnderWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meter.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := "acct"
	// More credits than the writers can spend before Close: with holds in
	// memory, 8 writers spent 1000 in less than the 100 ms.
	const credits = 1_000_000
	if _, err := s.CreateAccount(ctx, id, c(credits)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	committed := map[string]bool{} // reservation ids whose commit succeeded
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				rid := fmt.Sprintf("w%d-%d", w, i)
				_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(1), TTL: time.Hour})
				if err == nil {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(1)})
					if err == nil {
						mu.Lock()
						committed[rid] = true
						mu.Unlock()
					}
				}
				if err != nil {
					if meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
						t.Errorf("%s: %v; want metering_unavailable", rid, err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Account(ctx, id); meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		t.Errorf("Account after Close: %v", err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var sum meter.Credits
	charged := map[string]bool{}
	for before := ""; ; {
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			sum += e.Amount
			if e.Type == meter.EntryUsage {
				charged[e.ReservationID] = true
			}
		}
		if len(es) < 1000 {
			break
		}
		before = es[len(es)-1].ID
	}
	if len(committed) == 0 || len(committed) >= credits {
		t.Fatalf("%d commits before Close", len(committed))
	}
	if sum != a.Balance || a.Balance != c(credits)-c(float64(len(committed))) || !reflect.DeepEqual(charged, committed) {
		t.Errorf("balance %s, ledger sum %s, %d charged; want %d charged", a.Balance, sum, len(charged), len(committed))
	}
	// A hold whose Reserve succeeded but whose Commit was cut off was in
	// memory only: the reopened store holds nothing.
	if a.Reserved != 0 || a.Available != a.Balance {
		t.Errorf("reserved %s, available %s", a.Reserved, a.Available)
	}
}
