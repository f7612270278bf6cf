package boltstore

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

var ctx = context.Background()

func c(n float64) meter.Credits { return meter.Credits(n * meter.Scale) }

func TestOpenUnwritableDirectory(t *testing.T) {
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "data", "meter.db")
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "cannot create data directory") || !strings.Contains(msg, file) {
			t.Errorf("error %q does not say which directory", msg)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		s, err := Open(filepath.Join(dir, "meter.db"), Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "permission denied") || !strings.Contains(msg, "writable") {
			t.Errorf("error %q", msg)
		}
	})
	t.Run("a directory no one may create files in, root included", func(t *testing.T) {
		s, err := Open("/proc/creditgate-meter.db", Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "cannot open /proc/creditgate-meter.db") {
			t.Errorf("error %q", msg)
		}
	})
	t.Run("no path", func(t *testing.T) {
		if _, err := Open("", Options{}); err == nil {
			t.Error("Open succeeded")
		}
	})
}

// A second opener (another gateway process, or a second Store in this
// one: bbolt's flock is per open file) gets an error after LockTimeout
// instead of hanging.
func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meter.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	start := time.Now()
	second, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a locked file succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if msg := err.Error(); !strings.Contains(msg, "locked by another process") || !strings.Contains(msg, path) {
		t.Errorf("error %q", msg)
	}
	// Once the first is closed, the file opens.
	first.Close()
	third, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	third.Close()
}

// snapshot is everything a client can read of some accounts.
type snapshot struct {
	Accounts []meter.Account
	Ledgers  [][]meter.LedgerEntry
	Keys     [][]meter.Key
	Usage    [][]meter.RouteUsage
	IDs      []string
}

func takeSnapshot(t *testing.T, s meter.Store, ids ...string) snapshot {
	t.Helper()
	var sn snapshot
	for _, id := range ids {
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatalf("Account(%s): %v", id, err)
		}
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		ks, err := s.ListKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.Usage(ctx, id, month(0))
		if err != nil {
			t.Fatal(err)
		}
		sn.Accounts, sn.Ledgers = append(sn.Accounts, a), append(sn.Ledgers, es)
		sn.Keys, sn.Usage = append(sn.Keys, ks), append(sn.Usage, u)
	}
	var err error
	if sn.IDs, err = s.ListAccounts(ctx, "", 1000); err != nil {
		t.Fatal(err)
	}
	return sn
}

func month(n int) meter.Period {
	start := time.Date(2030, time.January+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return meter.Period{Start: start, End: start.AddDate(0, 1, 0)}
}

// Reopening the file after Close keeps every balance, hold, ledger entry,
// key, setting, usage counter and idempotency key exactly.
func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meter.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := "acme", "globex"
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccount(ctx, a, c(100)))
	must(s.CreateAccount(ctx, b, 0))
	must(s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(5), OverageCap: c(10), QuotaUnit: "scans", PageLimit: 9}))
	_, key := meter.NewKey(a, meter.ModeLive)
	must(nil, s.AddKey(ctx, key))
	must(s.Grant(ctx, meter.Grant{AccountID: b, Amount: c(3.5), Type: meter.EntryPurchase, IdempotencyKey: "pi_1"}))
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r1", Amount: c(8), TTL: time.Hour, Period: month(0), IdempotencyKey: "k1"}))
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r1", Amount: c(7.5), Route: "/scan", Pages: 3})
	must(st, err)
	must(s.Refund(ctx, meter.Refund{AccountID: a, EntryID: st.EntryID, Amount: c(1)}))
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "held", Amount: c(4), TTL: time.Hour, Period: month(0), IdempotencyKey: "k2"}))
	before := takeSnapshot(t, s, a, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if after := takeSnapshot(t, s, a, b); !reflect.DeepEqual(after, before) {
		t.Fatalf("after reopening:\n%+v\nbefore:\n%+v", after, before)
	}
	// What the reopened store knows still acts: the key, the hold, the
	// idempotency keys, the ledger ids.
	if k, err := s.LookupKey(ctx, key.Hash); err != nil || k.AccountID != a {
		t.Errorf("LookupKey: %+v, %v", k, err)
	}
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r2", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k1"}); err != nil || !r.Replayed || r.ID != "r1" {
		t.Errorf("replay after reopening: %+v, %v", r, err)
	}
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r3", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k2"})
	if meter.ErrorCode(err) != meter.ECodeIdempotencyConflict {
		t.Errorf("the held key after reopening: %v", err)
	}
	if e, err := s.Grant(ctx, meter.Grant{AccountID: b, Amount: c(9), Type: meter.EntryPurchase, IdempotencyKey: "pi_1"}); err != nil ||
		e.ID != before.Ledgers[1][0].ID {
		t.Errorf("grant replay after reopening: %+v, %v", e, err)
	}
	st, err = s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "held", Amount: c(4)})
	if err != nil || st.Charged != c(4) {
		t.Fatalf("commit of the hold: %+v, %v", st, err)
	}
	if es, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: a, Limit: 1}); len(es) != 1 || es[0].ID != st.EntryID ||
		!idAfter(es[0].ID, before.Ledgers[0][0].ID) {
		t.Errorf("new entry %+v after %s", es, before.Ledgers[0][0].ID)
	}
}

func idAfter(a, b string) bool {
	x, _ := parseLedgerID(a)
	y, _ := parseLedgerID(b)
	return x.ms > y.ms || x.ms == y.ms && x.seq > y.seq
}
