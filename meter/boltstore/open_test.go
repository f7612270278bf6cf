package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
	bolt "go.etcd.io/bbolt"
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

// Reopening the file after Close keeps every balance, ledger entry, key,
// setting, usage counter and idempotency key exactly; a request's hold,
// kept in memory only, is gone (memholds.go).
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
	before := takeSnapshot(t, s, a, b)
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "held", Amount: c(4), TTL: time.Hour, Period: month(0), IdempotencyKey: "k2"}))
	if acct, _ := s.Account(ctx, a); acct.Reserved != c(4) {
		t.Fatalf("reserved %s before closing", acct.Reserved)
	}
	s = reopen(t, s, path)
	if after := takeSnapshot(t, s, a, b); !reflect.DeepEqual(after, before) {
		t.Fatalf("after reopening:\n%+v\nbefore the hold:\n%+v", after, before)
	}
	// What the reopened store knows still acts: the key, the idempotency
	// keys, the ledger ids. The hold does not: its key is free.
	if k, err := s.LookupKey(ctx, key.Hash); err != nil || k.AccountID != a {
		t.Errorf("LookupKey: %+v, %v", k, err)
	}
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r2", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k1"}); err != nil || !r.Replayed || r.ID != "r1" {
		t.Errorf("replay after reopening: %+v, %v", r, err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "held", Amount: c(4)}); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit of the hold lost at the restart: %v", err)
	}
	if e, err := s.Grant(ctx, meter.Grant{AccountID: b, Amount: c(9), Type: meter.EntryPurchase, IdempotencyKey: "pi_1"}); err != nil ||
		e.ID != before.Ledgers[1][0].ID {
		t.Errorf("grant replay after reopening: %+v, %v", e, err)
	}
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r3", Amount: c(4), TTL: time.Hour, IdempotencyKey: "k2"}); err != nil || r.Replayed {
		t.Fatalf("the lost hold's key after reopening: %+v, %v", r, err)
	}
	st, err = s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r3", Amount: c(4)})
	if err != nil || st.Charged != c(4) {
		t.Fatalf("commit of a new hold: %+v, %v", st, err)
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

// downgrade rewrites every account, hold, ledger entry and usage counter
// record of the file as the JSON the store wrote before its binary
// records (encoding/json of the same structs): the file an older gateway
// left behind.
func downgrade(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	asJSON := func(b *bolt.Bucket, decode func([]byte) (any, error)) {
		t.Helper()
		var ks, vs [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a sub-bucket
			}
			x, err := decode(v)
			if err != nil {
				return err
			}
			raw, err := json.Marshal(x)
			ks, vs = append(ks, bytes.Clone(k)), append(vs, raw)
			return err
		})
		for i := range ks {
			if err == nil {
				err = b.Put(ks[i], vs[i])
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bAccounts).ForEach(func(id, _ []byte) error {
			b := tx.Bucket(bAccounts).Bucket(id)
			a, err := decodeAccount(b.Get(kAccount))
			if err != nil {
				return err
			}
			raw, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := b.Put(kAccount, raw); err != nil {
				return err
			}
			asJSON(b.Bucket(bRes), func(v []byte) (any, error) { x := new(reservation); return x, decodeReservation(v, x) })
			asJSON(b.Bucket(bLedger), func(v []byte) (any, error) { x := new(entry); return x, decodeEntry(v, x) })
			cs := func(v []byte) (any, error) { x := new(counters); return x, decodeCounters(v, x) }
			asJSON(b.Bucket(bUsage), cs)
			if sb := b.Bucket(bSeries); sb != nil {
				asJSON(sb, cs)
			}
			n++
			return nil
		})
	})
	if err != nil || n == 0 {
		t.Fatalf("downgrade: %d accounts, %v", n, err)
	}
}

// persistHolds writes the holds in memory to the file as the store did
// before it kept them in memory (a held record, its expiry timer, its
// key's mapping, the account's reserved fields counting it), and empties
// the memory: the file an older gateway left with holds in it.
func persistHolds(t *testing.T, s *Store) {
	t.Helper()
	put := func(b *bolt.Bucket, k string, v []byte) {
		if err := b.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range s.mem.stripes {
			for id, m := range s.mem.stripes[i].accts {
				b := tx.Bucket(bAccounts).Bucket([]byte(id))
				a, err := decodeAccount(b.Get(kAccount))
				if err != nil {
					return err
				}
				m.overlay(&a.Account, 1)
				put(b, string(kAccount), a.encode())
				for rid, h := range m.holds {
					r := &reservation{State: held, Hold: h.Hold, Exp: h.Exp, Due: h.Exp, Idem: h.Idem, FP: h.FP}
					put(b.Bucket(bRes), rid, r.encode())
					put(b.Bucket(bTimers), string(timerKey(h.Exp, "r:"+rid)), nil)
					if h.Idem != "" {
						put(b.Bucket(bIdem), "r:"+h.Idem, []byte(rid))
					}
				}
			}
			s.mem.stripes[i].accts = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file written before the binary records (every record JSON), and
// before holds were kept in memory, opens with every balance, hold,
// ledger entry, grant, key, setting and usage counter as it was, and the
// store goes on from it: the held reservation (a record in the file)
// commits, the idempotency keys replay, the ledger still sums to the
// balance, and what it writes now is binary.
func TestUpgradeFromJSONRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meter.db")
	now := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
	s, err := Open(path, Options{Now: func() time.Time { return now }})
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
	must(s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(5), OverageCap: c(10), QuotaUnit: "scans",
		PageLimit: 9, LowBalanceThreshold: c(50)}))
	_, key := meter.NewKey(a, meter.ModeLive)
	must(nil, s.AddKey(ctx, key))
	must(s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: a, Amount: c(6), Priority: 2,
		ExpiresAt: now.Add(48 * time.Hour), Description: "promo"}))
	must(s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: a, Amount: c(20), Description: "gift"}))
	must(s.Grant(ctx, meter.Grant{AccountID: b, Amount: c(3.5), Type: meter.EntryPurchase, IdempotencyKey: "pi_1"}))
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r1", Amount: c(30), TTL: time.Hour, Period: month(0), IdempotencyKey: "k1"}))
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r1", Amount: c(27.5), Route: "/scan", Pages: 3})
	must(st, err)
	must(s.Refund(ctx, meter.Refund{AccountID: a, EntryID: st.EntryID, Amount: c(1)}))
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "held", Amount: c(8), TTL: time.Hour, Period: month(0), IdempotencyKey: "k2"}))
	must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "void", Amount: c(1), TTL: time.Hour, Period: month(0)}))
	must(s.Void(ctx, a, "void"))
	before := takeSnapshot(t, s, a, b)
	series := func(s *Store) []meter.UsagePoint {
		t.Helper()
		p, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: a, Granularity: meter.GranularityHour,
			From: now.Add(-time.Hour), To: now.Add(time.Hour)})
		must(p, err)
		return p
	}
	seriesBefore := series(s)
	persistHolds(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downgrade(t, path)

	s, err = Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if raw := s.rawAccount(t, a); raw[0] != '{' {
		t.Fatalf("the downgraded record is not JSON: %q", raw)
	}
	if after := takeSnapshot(t, s, a, b); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the upgrade:\n%+v\nbefore:\n%+v", after, before)
	}
	if got := series(s); !reflect.DeepEqual(got, seriesBefore) {
		t.Errorf("series %+v, want %+v", got, seriesBefore)
	}
	if k, err := s.LookupKey(ctx, key.Hash); err != nil || k.AccountID != a {
		t.Errorf("LookupKey: %+v, %v", k, err)
	}
	if r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r2", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k1"}); err != nil || !r.Replayed || r.ID != "r1" {
		t.Errorf("replay after the upgrade: %+v, %v", r, err)
	}
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r3", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k2"})
	if meter.ErrorCode(err) != meter.ECodeIdempotencyConflict {
		t.Errorf("the held key after the upgrade: %v", err)
	}
	// The hold made before the upgrade commits from its parts: 5 of the
	// quota was spent by r1, so 8 came from the grants (the promo's 6
	// less r1's use) and the balance.
	held := before.Accounts[0]
	st, err = s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "held", Amount: c(8), Route: "/scan"})
	if err != nil || st.Charged != c(8) {
		t.Fatalf("commit of the hold: %+v, %v", st, err)
	}
	acct, err := s.Account(ctx, a)
	must(acct, err)
	if acct.Reserved != 0 || acct.Balance != held.Balance-c(8) {
		t.Errorf("after the commit: balance %v reserved %v; before %v", acct.Balance, acct.Reserved, held.Balance)
	}
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: a, Limit: 1000})
	must(es, err)
	var sum meter.Credits
	for _, e := range es {
		sum += e.Amount
	}
	if sum != acct.Balance || es[0].ID != st.EntryID || !idAfter(es[0].ID, before.Ledgers[0][0].ID) {
		t.Errorf("ledger sums to %v, balance %v; newest %s (commit %s)", sum, acct.Balance, es[0].ID, st.EntryID)
	}
	if raw := s.rawAccount(t, a); raw[0] != recBinary {
		t.Errorf("the record saved after the upgrade is not binary: %q", raw)
	}
}

// rawAccount is an account's stored record, as bytes.
func (s *Store) rawAccount(t *testing.T, id string) []byte {
	t.Helper()
	var raw []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bAccounts).Bucket([]byte(id)).Get(kAccount))
		return nil
	}); err != nil || len(raw) == 0 {
		t.Fatalf("record of %s: %q, %v", id, raw, err)
	}
	return raw
}
