package boltstore

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// memHolds is a copy of an account's holds in memory.
func memHolds(s *Store, id string) map[string]memHold {
	st := &s.mem.stripes[stripeOf(id)]
	st.gate.Lock()
	defer st.gate.Unlock()
	out := map[string]memHold{}
	if m := st.accts[id]; m != nil {
		for rid, h := range m.holds {
			out[rid] = *h
		}
	}
	return out
}

// fileAccount is an account's record as the file has it.
func fileAccount(t *testing.T, s *Store, id string) *account {
	t.Helper()
	a, err := decodeAccount(s.rawAccount(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A Reserve writes nothing to the file: no transaction, no record; its
// Commit is the pair's one durable write.
func TestReserveWritesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r0", Amount: c(1), TTL: time.Hour, Period: month(0)}); err != nil {
		t.Fatal(err) // the first Reserve of a period writes the period
	}
	before, commits := dump(t, s), s.Commits()
	r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(4), TTL: time.Hour, Period: month(0), IdempotencyKey: "k"})
	if err != nil || r.Available != c(5) {
		t.Fatalf("reserve: %+v, %v", r, err)
	}
	if s.Commits() != commits || !reflect.DeepEqual(dump(t, s), before) {
		t.Fatalf("the Reserve wrote: %d commits\n%s", s.Commits()-commits, diff(before, dump(t, s)))
	}
	if a, _ := s.Account(ctx, "a"); a.Reserved != c(5) || a.Available != c(5) {
		t.Errorf("account with the holds: %+v", a)
	}
	if f := fileAccount(t, s, "a"); f.Reserved != 0 {
		t.Errorf("the file's record counts %d reserved", f.Reserved)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(3)}); err != nil {
		t.Fatal(err)
	}
	if s.Commits() != commits+1 {
		t.Errorf("%d commits for a Commit", s.Commits()-commits)
	}
	if f := fileAccount(t, s, "a"); f.Reserved != 0 || f.Balance != int64(c(7)) {
		t.Errorf("the file's record after the commit: balance %d reserved %d", f.Balance, f.Reserved)
	}
	if h := memHolds(s, "a"); len(h) != 1 {
		t.Errorf("holds in memory %v; want r0 only", h)
	}
}

// After a restart, a Close and reopen or a crash (the file as the last
// commit left it, the process's memory lost), the holds of requests are
// gone and the account reserves exactly what its job holds: reserved,
// available, quota, overage and grant parts. Their reservations are
// unknown; their keys are free; the job goes on.
func TestRestartReleasesHoldsInMemory(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "Close", true: "crash"}[crash], func(t *testing.T) {
			testRestart(t, crash)
		})
	}
}

func testRestart(t *testing.T, crash bool) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "meter.db")
	s, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, p := "acme", month(0)
	must(s.CreateAccount(ctx, a, c(100)))
	must(s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(10), OverageCap: c(20)}))
	ga, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: a, Amount: c(6), Priority: 1})
	must(ga, err)
	gb, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: a, Amount: c(4)})
	must(gb, err)
	reserve := func(id, key string, amount float64) {
		t.Helper()
		must(s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: id, Amount: c(amount), TTL: time.Hour, Period: p,
			IdempotencyKey: key, Fingerprint: "fp"}))
	}
	// r0: quota 10, grant A 2. The job: grant A 4, grant B 4, balance 22.
	// r1: balance 50. r2: balance 28, overage 17. r3: overage 1,
	// committed (a write with holds in memory).
	reserve("r0", "k0", 12)
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Route: "/jobs", Rates: map[string]meter.Credits{"p": c(1)},
		Estimate: c(30), TTL: time.Hour, Period: p}))
	reserve("r1", "k1", 50)
	reserve("r2", "", 45)
	reserve("r3", "k3", 1)
	must(s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r3", Amount: c(1), Route: "/x"}))
	// The job's report charges 2 from its hold's grant A part: it holds
	// grant A 2, grant B 4, balance 22.
	ok(t)(report(s, a, "j", map[string]int{"p": 2}, ""))
	live, err := s.Account(ctx, a)
	must(live, err)
	if live.Reserved != c(2+28+50+28+17) || live.Quota.Reserved != c(10) || live.Overage.Reserved != c(17) {
		t.Fatalf("live: reserved %s, quota %+v, overage %+v", live.Reserved, live.Quota, live.Overage)
	}

	if crash {
		// The file as the last commit left it (every commit is synced),
		// opened by a new process: this one's memory is lost.
		raw, err := os.ReadFile(path)
		must(raw, err)
		path = filepath.Join(t.TempDir(), "crashed.db")
		must(nil, os.WriteFile(path, raw, 0o600))
	} else {
		must(nil, s.Close())
	}
	s2, err := Open(path, Options{Now: clk.Now})
	must(s2, err)
	t.Cleanup(func() { s2.Close() })

	got, err := s2.Account(ctx, a)
	must(got, err)
	held := map[string]meter.Credits{}
	for _, g := range got.Grants {
		held[g.ID] = g.Held
	}
	j, err := s2.Job(ctx, a, "j")
	must(j, err)
	switch {
	case got.Balance != live.Balance || got.Reserved != c(28) || got.Available != got.Balance-c(28) || j.Reserved != c(28):
		t.Errorf("after the restart: balance %s (was %s), reserved %s, available %s, job %s; want 28 reserved",
			got.Balance, live.Balance, got.Reserved, got.Available, j.Reserved)
	case got.Quota.Reserved != 0 || got.Quota.Used != live.Quota.Used || got.Quota.Remaining != c(10):
		t.Errorf("quota after the restart: %+v (was %+v)", got.Quota, live.Quota)
	case got.Overage.Reserved != 0 || got.Overage.Used != c(1) || got.Overage.Remaining != c(19):
		t.Errorf("overage after the restart: %+v (was %+v)", got.Overage, live.Overage)
	case !reflect.DeepEqual(held, map[string]meter.Credits{ga.ID: c(2), gb.ID: c(4)}):
		t.Errorf("grants held after the restart: %v", held)
	}
	if f := fileAccount(t, s2, a); f.Reserved != int64(c(28)) || f.QRes != 0 || f.ORes != 0 {
		t.Errorf("the file's record: %+v", f.Account)
	}

	// The lost holds are unknown; the committed one replays; the keys of
	// the lost ones are free.
	_, err = s2.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r1", Amount: c(1)})
	if meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("commit of a lost hold: %v", err)
	}
	_, err = s2.Void(ctx, a, "r2")
	if meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Errorf("void of a lost hold: %v", err)
	}
	if st, err := s2.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "r3", Amount: c(1)}); err != nil || st.Charged != c(1) {
		t.Errorf("commit replay: %+v, %v", st, err)
	}
	r, err := s2.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r4", Amount: c(3), TTL: time.Hour, Period: p,
		IdempotencyKey: "k1", Fingerprint: "other"})
	if err != nil || r.Replayed || r.Amount != c(3) {
		t.Errorf("the lost hold's key: %+v, %v", r, err)
	}
	// r4 took the quota r0 held.
	res := ok(t)(report(s2, a, "j", map[string]int{"p": 5}, meter.JobCompleted))
	if res.Charged != c(3) || res.Job.Status != meter.JobCompleted {
		t.Errorf("the job after the restart: %+v", res)
	}
	got, err = s2.Account(ctx, a)
	must(got, err)
	if got.Reserved != 0 || got.Quota.Reserved != c(3) || got.Balance != live.Balance-c(3) {
		t.Errorf("after the job: %+v", got)
	}
}

// A write whose commit fails changes nothing in memory either, and a
// batch rolled back for one failing operation keeps nothing of it:
// each operation's hold is in memory exactly when its call succeeded.
func TestBatchFailureUndoesHoldsInMemory(t *testing.T) {
	s := openTemp(t, Options{})
	if _, err := s.CreateAccount(ctx, "a", c(100)); err != nil {
		t.Fatal(err)
	}
	hold := func(i int, fail bool) func(o *op) error {
		return func(o *op) error {
			h, err := o.a.Reserve(int64(c(1)), 0)
			if err != nil {
				return err
			}
			o.hold(fmt.Sprint("r", i), &memHold{Hold: h, Exp: o.now + 3600_000})
			if fail {
				return internalErr(fmt.Errorf("injected"))
			}
			o.a.TotalPurchased++
			o.dirty = true
			return nil
		}
	}
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.updateBatched(ctx, "a", func(o *op) error {
			<-release
			return hold(0, false)(o)
		})
	}()
	waitBatch(t, s, func(b *batcher) bool { return b.running })
	const n = 12
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		go func() { errs <- s.updateBatched(ctx, "a", hold(i, i == 5)) }()
	}
	waitBatch(t, s, func(b *batcher) bool { return len(b.queue) == n })
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		<-errs
	}
	hs := memHolds(s, "a")
	if _, ok := hs["r5"]; ok || len(hs) != n {
		t.Errorf("holds in memory %v; want all but r5", hs)
	}
	a, err := s.Account(ctx, "a")
	if err != nil || a.Reserved != c(n) || a.TotalPurchased != c(100)+n {
		t.Errorf("account %+v, %v", a, err)
	}
	if f := fileAccount(t, s, "a"); f.Reserved != 0 {
		t.Errorf("the file counts %d reserved", f.Reserved)
	}
}

// Concurrent requests on a few accounts, with reads between: once all
// are settled nothing is reserved, in memory or in the file, and each
// ledger sums to its balance.
func TestConcurrentHoldsSettle(t *testing.T) {
	s := openTemp(t, Options{})
	accts := []string{"a", "b", "c"}
	for _, id := range accts {
		if _, err := s.CreateAccount(ctx, id, c(1000)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id, rid := accts[(w+i)%len(accts)], fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(2), TTL: time.Hour,
					Period: month(0), IdempotencyKey: rid}); err != nil {
					t.Error(err)
					return
				}
				if a, err := s.Account(ctx, id); err != nil || a.Reserved < c(2) {
					t.Errorf("account while %s is held: %+v, %v", rid, a, err)
				}
				var err error
				if i%3 == 0 {
					_, err = s.Void(ctx, id, rid)
				} else {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(1)})
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range accts {
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var sum meter.Credits
		for _, e := range oldest(t, s, id) {
			sum += e.Amount
		}
		if f := fileAccount(t, s, id); a.Reserved != 0 || f.Reserved != 0 || len(memHolds(s, id)) != 0 || sum != a.Balance {
			t.Errorf("%s: reserved %s (file %d), ledger sum %s, balance %s", id, a.Reserved, f.Reserved, sum, a.Balance)
		}
	}
}

func oldest(t *testing.T, s *Store, id string) []meter.LedgerEntry {
	t.Helper()
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// A Reserve in memory reads a due purge as done, without writing it: the
// id and the key of a record past Retain are free, and the next write
// purges the record before it settles the new hold of the same id.
func TestReserveReadsDuePurgesAsDone(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now, Retain: time.Hour})
	if _, err := s.CreateAccount(ctx, "a", c(10)); err != nil {
		t.Fatal(err)
	}
	req := meter.ReserveRequest{AccountID: "a", ID: "r1", Amount: c(2), TTL: time.Hour, IdempotencyKey: "k", Fingerprint: "f"}
	if _, err := s.Reserve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(2), Response: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase, IdempotencyKey: "g"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	commits := s.Commits()
	r, err := s.Reserve(ctx, req)
	if err != nil || r.Replayed || r.ID != "r1" || r.Amount != c(2) {
		t.Fatalf("the id and key past Retain: %+v, %v", r, err)
	}
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r2", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k", Fingerprint: "f"}); meter.ErrorCode(err) != meter.ECodeIdempotencyConflict {
		t.Errorf("the key held again: %v", err)
	}
	if s.Commits() != commits {
		t.Errorf("%d commits for Reserves with purges due", s.Commits()-commits)
	}
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "r1", Amount: c(1), Response: []byte("two")})
	if err != nil || st.Charged != c(1) || st.Balance != c(8) {
		t.Fatalf("commit of the new r1: %+v, %v", st, err)
	}
	r, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r3", Amount: c(1), TTL: time.Hour, IdempotencyKey: "k", Fingerprint: "f"})
	if err != nil || !r.Replayed || r.ID != "r1" || string(r.Response) != "two" {
		t.Errorf("replay of the new r1: %+v, %v", r, err)
	}
	d := dump(t, s)
	if _, ok := d["accounts/a/idem/g:g"]; ok {
		t.Error("the grant mapping was not purged by the write")
	}
}
