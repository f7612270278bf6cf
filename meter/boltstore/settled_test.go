package boltstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// records lists the file's reservation records and timers of account id.
func records(t *testing.T, s *Store, id string) []string {
	t.Helper()
	var out []string
	for k := range dump(t, s) {
		if strings.HasPrefix(k, "accounts/"+id+"/res/") || strings.HasPrefix(k, "accounts/"+id+"/timers/") {
			out = append(out, k)
		}
	}
	return out
}

// A plain request's settled hold leaves no record in the file: its ledger
// entry is the record of its charge, and a void writes nothing. A
// repeated Commit or Void is answered from memory as the file's record
// answered it, for 10 to 20 s of the store's clock or until the caller
// forgets it; after that it is reservation_not_found and charges nothing.
func TestSettledPlainHoldKeepsNoRecord(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	reserve := func(rid string, amt meter.Credits) {
		t.Helper()
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: rid, Amount: amt, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(rid string, amt meter.Credits) (meter.Settlement, error) {
		return s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: rid, Amount: amt, Route: "/r"})
	}
	reserve("r1", c(4))
	first, err := commit("r1", c(3))
	if err != nil || first.Charged != c(3) || first.Balance != c(7) || first.EntryID == "" {
		t.Fatalf("commit: %+v, %v", first, err)
	}
	reserve("r2", c(2))
	commits := s.Commits()
	if st, err := s.Void(ctx, "a", "r2"); err != nil || st.Available != c(7) {
		t.Fatalf("void: %+v, %v", st, err)
	}
	if s.Commits() != commits {
		t.Error("the void of a plain hold wrote to the file")
	}
	if recs := records(t, s, "a"); len(recs) != 0 {
		t.Fatalf("settled plain holds left records in the file: %v", recs)
	}
	es, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: "a", Limit: 1})
	if len(es) != 1 || es[0].ReservationID != "r1" || es[0].ID != first.EntryID {
		t.Fatalf("the ledger's newest entry %+v; want r1's", es)
	}

	// Asked again: as the first answer, and refusals as for a record.
	clk.Add(9 * time.Second)
	if st, err := commit("r1", c(3)); err != nil || st.Charged != first.Charged || st.Balance != first.Balance ||
		st.Available != first.Available || st.EntryID != first.EntryID {
		t.Errorf("repeated commit: %+v, %v; want %+v", st, err, first)
	}
	if _, err := s.Void(ctx, "a", "r1"); meter.ErrorCode(err) != meter.ECodeReservationSettled {
		t.Errorf("void of a committed hold: %v", err)
	}
	if _, err := commit("r2", c(2)); meter.ErrorCode(err) != meter.ECodeReservationSettled {
		t.Errorf("commit of a voided hold: %v", err)
	}
	if st, err := s.Void(ctx, "a", "r2"); err != nil || st.Balance != c(7) {
		t.Errorf("repeated void: %+v, %v", st, err)
	}
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(1), TTL: time.Hour})
	if meter.ErrorCode(err) != meter.ECodeInvalid {
		t.Errorf("reserve with a settled id: %v", err)
	}

	// Forgotten: the store's answer for an unknown reservation.
	s.Forget("a", "r1")
	if _, err := commit("r1", c(3)); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit after Forget: %v", err)
	}
	// Kept for 10 to 20 s of the store's clock.
	reserve("r3", c(1))
	if _, err := commit("r3", c(1)); err != nil {
		t.Fatal(err)
	}
	clk.Add(9900 * time.Millisecond)
	if _, err := commit("r3", c(1)); err != nil {
		t.Errorf("commit 9.9 s after: %v", err)
	}
	clk.Add(10100 * time.Millisecond)
	if _, err := commit("r3", c(1)); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit 20 s after: %v", err)
	}
	if _, err := s.Void(ctx, "a", "r2"); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("void 29 s after: %v", err)
	}
	if n := s.Kept(); n != 0 {
		t.Errorf("%d answers kept", n)
	}
	storetest.Expect(t, s, "a", c(6), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)}, storetest.Entry{Type: "usage", Amount: -c(3), After: c(7)}, storetest.Entry{Type: "usage", Amount: -c(1), After: c(6)})
}

// A hold with an Idempotency-Key, and an expired one, still get their
// records: a retry replays the first for Retain, and a late commit
// charges the second.
func TestKeyedAndExpiredHoldsKeepRecords(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []meter.ReserveRequest{
		{AccountID: "a", ID: "keyed", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k"},
		{AccountID: "a", ID: "short", Amount: c(1), TTL: time.Second},
	} {
		if _, err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "keyed", Amount: c(1)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := s.Account(ctx, "a"); err != nil { // writes the expiry
		t.Fatal(err)
	}
	d := dump(t, s)
	for _, k := range []string{"accounts/a/res/keyed", "accounts/a/res/short"} {
		if _, ok := d[k]; !ok {
			t.Errorf("no record %s", k)
		}
	}
	if st, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "short", Amount: c(1)}); err != nil ||
		!st.Late || st.Charged != c(1) {
		t.Errorf("late commit a minute after: %+v, %v", st, err)
	}
	storetest.Expect(t, s, "a", c(8), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)}, storetest.Entry{Type: "usage", Amount: -c(1), After: c(9)}, storetest.Entry{Type: "usage", Amount: -c(1), After: c(8), Late: true})
}

// A Commit whose transaction fails keeps no answer: the hold is still
// held, and a Void of it then releases it, charging nothing.
func TestFailedCommitKeepsNoAnswer(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(4), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s.beforeCommit = func(*bolt.Tx) error { return errors.New("no space left on device") }
	_, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(4)})
	s.beforeCommit = nil
	if meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		t.Fatalf("commit on a full disk: %v", err)
	}
	if a, _ := s.Account(ctx, "a"); a.Reserved != c(4) || s.Kept() != 0 {
		t.Fatalf("after the failed commit: reserved %s, %d answers kept; want 4 and none", a.Reserved, s.Kept())
	}
	if _, err := s.Void(ctx, "a", "r1"); err != nil {
		t.Fatal(err)
	}
	storetest.Expect(t, s, "a", c(10), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)})
}

// After a restart a settled plain hold is unknown: a repeated Commit is
// reservation_not_found and charges nothing again.
func TestRestartForgetsSettledAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(4), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	cr := meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(4)}
	if _, err := s.Commit(ctx, cr); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	if _, err := s.Commit(ctx, cr); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit after the restart: %v", err)
	}
	storetest.Expect(t, s, "a", c(6), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)}, storetest.Entry{Type: "usage", Amount: -c(4), After: c(6)})
}

// reopen closes s and opens its file again, closed when the test ends.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
