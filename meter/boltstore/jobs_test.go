package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// ok(t)(call()) is call's result, failing the test on its error.
func ok(t *testing.T) func(meter.JobResult, error) meter.JobResult {
	t.Helper()
	return func(res meter.JobResult, err error) meter.JobResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
}

func report(s meter.Store, acct, id string, done map[string]int, final string) (meter.JobResult, error) {
	return s.ReportJob(ctx, meter.JobReport{AccountID: acct, JobID: id, Done: done, Final: final,
		RequestID: "rq-" + id, Period: month(0)})
}

func use(amount, quota, overage, after float64) storetest.Use {
	return storetest.Use{Amount: -c(amount), Quota: c(quota), Overage: c(overage), After: c(after)}
}

// claimAll claims every pending event of the store (one store per test).
func claimAll(t *testing.T, s *Store) []meter.Event {
	t.Helper()
	evs, err := s.ClaimEvents(ctx, "t", time.Hour, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A job's charges take the hold's parts first (quota, then balance), then
// the pools; one usage entry per charging report, counted by route.
func TestJobChargesHoldThenPools(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(10)}); err != nil {
		t.Fatal(err)
	}
	res := ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j1", Route: "/jobs",
		Rates: map[string]meter.Credits{"document": c(2), "drawing": c(5)}, EstimatedPages: 5, Estimate: c(20),
		TTL: time.Hour, Period: month(0)}))
	if res.Job.Reserved != c(20) || res.Balance != c(100) || res.Available != c(90) || res.Job.Status != meter.JobRunning {
		t.Errorf("created: %+v", res)
	}
	storetest.ExpectPools(t, s, a, c(100), c(10), storetest.QS(10, 0, 10, 0), storetest.OVS(0, 0, 0, 0))

	res = ok(t)(report(s, a, "j1", map[string]int{"document": 3, "drawing": 2}, ""))
	if res.Charged != c(16) || res.Job.Reserved != c(4) || res.Job.Debited != c(16) || res.EntryID == "" {
		t.Errorf("first report: %+v", res)
	}
	storetest.ExpectPools(t, s, a, c(94), c(4), storetest.QS(10, 10, 0, 0), storetest.OVS(0, 0, 0, 0), use(6, 10, 0, 94))
	// The same report again charges nothing; a lower count keeps the higher.
	if res := ok(t)(report(s, a, "j1", map[string]int{"document": 3, "drawing": 2}, "")); res.Charged != 0 || res.EntryID != "" {
		t.Errorf("repeated report: %+v", res)
	}
	res = ok(t)(report(s, a, "j1", map[string]int{"document": 10, "drawing": 1}, ""))
	if res.Charged != c(14) || res.Job.Reserved != 0 || res.Job.Reported["drawing"] != 2 {
		t.Errorf("second report: %+v", res)
	}
	res = ok(t)(report(s, a, "j1", map[string]int{"document": 10, "drawing": 3}, meter.JobCompleted))
	if res.Charged != c(5) || res.Job.Status != meter.JobCompleted || res.Job.FinishedAt.IsZero() || res.Job.Debited != c(35) {
		t.Errorf("final report: %+v", res)
	}
	storetest.ExpectPools(t, s, a, c(75), 0, storetest.QS(10, 10, 0, 0), storetest.OVS(0, 0, 0, 0),
		use(6, 10, 0, 94), use(14, 0, 0, 80), use(5, 0, 0, 75))
	for i, e := range storetest.OldestFirst(t, s, a)[1:] {
		want := []int{5, 7, 1}[i]
		if e.ReservationID != "j1" || e.Route != "/jobs" || e.Pages != want || e.RequestID != "rq-j1" {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	u, err := s.Usage(ctx, a, month(0))
	if err != nil || !reflect.DeepEqual(u, []meter.RouteUsage{{Route: "/jobs", Requests: 3, Pages: 13, Credits: c(35)}}) {
		t.Errorf("usage %+v, %v", u, err)
	}
	if acct, _ := s.Account(ctx, a); acct.TotalUsed != c(35) {
		t.Errorf("total used %s", acct.TotalUsed)
	}
	// The final report again is answered; another is refused.
	if res := ok(t)(report(s, a, "j1", map[string]int{"document": 10, "drawing": 3}, meter.JobCompleted)); res.Charged != 0 ||
		res.Job.Reported["document"] != 10 {
		t.Errorf("repeated final report: %+v", res)
	}
	_, err = report(s, a, "j1", map[string]int{"document": 11}, meter.JobCompleted)
	storetest.WantCode(t, err, meter.ECodeJobFinished)
	_, err = report(s, a, "j1", nil, meter.JobFailed)
	storetest.WantCode(t, err, meter.ECodeJobFinished)
	_, err = report(s, a, "j1", map[string]int{"document": 11}, "")
	storetest.WantCode(t, err, meter.ECodeJobFinished)
	evs := claimAll(t, s)
	if len(evs) != 1 || evs[0].Type != meter.EventQuotaExhausted || evs[0].Balance != c(94) {
		t.Errorf("events %+v", evs)
	}
}

// Pages the hold and the pools cannot cover block the job (one event);
// ResumeJob is all or nothing, then finishes a pending Final.
func TestJobBlocksAndResumes(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j2", Route: "/ocr",
		Rates: map[string]meter.Credits{"page": c(3)}, Estimate: c(6), TTL: time.Hour}))
	if err := s.AttachJob(ctx, a, "j2", "up-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachJob(ctx, a, "j2", "up-2"); err != nil {
		t.Errorf("attaching again: %v", err)
	}
	storetest.WantCode(t, s.AttachJob(ctx, a, "j2", "up-x"), meter.ECodeInvalid)
	if j, err := s.JobByUpstream(ctx, a, "up-2"); err != nil || j.ID != "j2" || j.UpstreamID != "up-2" {
		t.Errorf("JobByUpstream: %+v, %v", j, err)
	}
	_, err := s.JobByUpstream(ctx, a, "up-x")
	storetest.WantCode(t, err, meter.ECodeJobNotFound)

	// 5 pages of 3: the hold (6) and the balance (4) cover 3 of them.
	res := ok(t)(report(s, a, "j2", map[string]int{"page": 5}, ""))
	if res.Charged != c(9) || res.Job.Status != meter.JobBlocked || res.Job.Reserved != 0 || res.Job.Owed() != c(6) {
		t.Errorf("blocking report: %+v", res)
	}
	storetest.Expect(t, s, a, c(1), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)},
		storetest.Entry{Type: "usage", Amount: -c(9), After: c(1)})
	res = ok(t)(report(s, a, "j2", map[string]int{"page": 6}, meter.JobCompleted))
	if res.Charged != 0 || res.Job.Final != meter.JobCompleted || res.Job.Reported["page"] != 6 || res.Job.Status != meter.JobBlocked {
		t.Errorf("report while blocked: %+v", res)
	}
	evs := claimAll(t, s)
	if len(evs) != 1 || evs[0].Type != meter.EventJobBlocked || evs[0].JobID != "j2" || evs[0].UpstreamJobID != "up-2" ||
		evs[0].Balance != c(1) {
		t.Errorf("events %+v", evs)
	}
	_, err = s.ResumeJob(ctx, a, "j2", month(0), "")
	e := storetest.WantCode(t, err, meter.ECodeInsufficientCredits)
	if e.Details["required"] != c(9) || e.Details["available"] != c(1) {
		t.Errorf("refusal details %v", e.Details)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: a, Amount: c(20), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	res = ok(t)(s.ResumeJob(ctx, a, "j2", month(0), ""))
	if res.Charged != c(9) || res.Job.Status != meter.JobCompleted || res.Job.Debited != c(18) || res.Job.Owed() != 0 {
		t.Errorf("resume: %+v", res)
	}
	storetest.Expect(t, s, a, c(12), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)},
		storetest.Entry{Type: "usage", Amount: -c(9), After: c(1)},
		storetest.Entry{Type: "purchase", Amount: c(20), After: c(21)},
		storetest.Entry{Type: "usage", Amount: -c(9), After: c(12)})
	_, err = s.ResumeJob(ctx, a, "j2", month(0), "")
	storetest.WantCode(t, err, meter.ECodeJobFinished)
	if evs := claimAll(t, s); len(evs) != 0 {
		t.Errorf("events after resuming %+v", evs)
	}
}

// Classes are charged by name, each as many whole pages as what is left
// covers; rate 0 is always covered. A resume without Final keeps a page
// of the highest rate, then holds it.
func TestJobClassesAndResumeHold(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j3", Route: "/r",
		Rates: map[string]meter.Credits{"b": c(4), "a": c(1), "free": 0}, TTL: time.Hour}))
	res := ok(t)(report(s, a, "j3", map[string]int{"a": 2, "b": 3, "free": 7}, ""))
	want := map[string]int{"a": 2, "b": 2, "free": 7}
	if res.Charged != c(10) || !reflect.DeepEqual(res.Job.Pages, want) || res.Job.Status != meter.JobBlocked {
		t.Errorf("report: %+v", res)
	}
	_, err := s.ResumeJob(ctx, a, "j3", meter.Period{}, "")
	if e := storetest.WantCode(t, err, meter.ECodeInsufficientCredits); e.Details["required"] != c(8) {
		t.Errorf("details %v", e.Details)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: a, Amount: c(10), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	res = ok(t)(s.ResumeJob(ctx, a, "j3", meter.Period{}, ""))
	if res.Charged != c(4) || res.Job.Status != meter.JobRunning || res.Job.Reserved != c(4) || res.Available != c(2) {
		t.Errorf("resume: %+v", res)
	}
	if res := ok(t)(s.ResumeJob(ctx, a, "j3", meter.Period{}, "")); res.Charged != 0 || res.Job.Reserved != c(4) {
		t.Errorf("resuming a running job: %+v", res)
	}
	res = ok(t)(s.CancelJob(ctx, a, "j3"))
	if res.Job.Status != meter.JobCanceled || res.Job.Reserved != 0 || res.Available != c(6) {
		t.Errorf("cancel: %+v", res)
	}
	if res := ok(t)(s.CancelJob(ctx, a, "j3")); res.Job.Status != meter.JobCanceled {
		t.Errorf("cancel again: %+v", res)
	}
	_, err = report(s, a, "j3", map[string]int{"a": 9}, "")
	storetest.WantCode(t, err, meter.ECodeJobFinished)
	storetest.Expect(t, s, a, c(6), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)},
		storetest.Entry{Type: "usage", Amount: -c(10), After: 0},
		storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)},
		storetest.Entry{Type: "usage", Amount: -c(4), After: c(6)})
	u, _ := s.Usage(ctx, a, month(0)) // the reports carried it
	if !reflect.DeepEqual(u, []meter.RouteUsage{{Route: "/r", Requests: 2, Pages: 12, Credits: c(14)}}) {
		t.Errorf("usage %+v", u)
	}
}

// A job's hold is not a reservation clients can settle, and its id space
// is the job's.
func TestJobHoldIsTheJobs(t *testing.T) {
	s := meter.Validated(openTemp(t, Options{})) // some refusals are its
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	req := meter.JobRequest{AccountID: a, ID: "j", Rates: map[string]meter.Credits{"p": c(1)}, Estimate: c(3), TTL: time.Hour}
	ok(t)(s.CreateJob(ctx, req))
	_, err := s.CreateJob(ctx, req)
	storetest.WantCode(t, err, meter.ECodeInvalid)
	_, err = s.Commit(ctx, meter.CommitRequest{AccountID: a, ReservationID: "job:j", Amount: c(3)})
	storetest.WantCode(t, err, meter.ECodeReservationNotFound)
	_, err = s.Void(ctx, a, "job:j")
	storetest.WantCode(t, err, meter.ECodeReservationNotFound)
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "job:j", Amount: c(1), TTL: time.Hour})
	storetest.WantCode(t, err, meter.ECodeInvalid)
	// Reservation ids of the jobs' form are refused (meter.JobHoldPrefix).
	_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "job:k", Amount: c(1), TTL: time.Hour})
	storetest.WantCode(t, err, meter.ECodeInvalid)
	req.ID, req.Estimate = "big", c(8)
	_, err = s.CreateJob(ctx, req)
	storetest.WantCode(t, err, meter.ECodeInsufficientCredits)
	_, err = report(s, a, "j", map[string]int{"q": 1}, "")
	storetest.WantCode(t, err, meter.ECodeInvalid)
	_, err = s.Job(ctx, a, "nope")
	storetest.WantCode(t, err, meter.ECodeJobNotFound)
	storetest.Expect(t, s, a, c(10), c(3), storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)})
}

// The hold expires on the store's clock at the job's expiry, which a
// charging report moves on: it releases exactly its parts, and the job
// reads expired. The finished record is purged after its Retain.
func TestJobExpiryFollowsTheClock(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(2)}); err != nil {
		t.Fatal(err)
	}
	// A plain hold beside the job's, to check that only the job's parts go.
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: a, ID: "r", Amount: c(1), TTL: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Rates: map[string]meter.Credits{"p": c(1)},
		Estimate: c(5), TTL: time.Minute, Retain: time.Hour, Period: month(0)}))
	if err := s.AttachJob(ctx, a, "j", "up"); err != nil {
		t.Fatal(err)
	}
	storetest.ExpectPools(t, s, a, c(10), c(4), storetest.QS(2, 0, 2, 0), storetest.OVS(0, 0, 0, 0))
	clk.Add(time.Minute - time.Millisecond)
	ok(t)(report(s, a, "j", map[string]int{"p": 1}, ""))
	clk.Add(time.Minute - time.Millisecond)
	storetest.ExpectPools(t, s, a, c(10), c(4), storetest.QS(2, 1, 1, 0), storetest.OVS(0, 0, 0, 0), use(0, 1, 0, 10))
	clk.Add(time.Millisecond)
	expiredAt := clk.Now()
	j, err := s.Job(ctx, a, "j")
	if err != nil || j.Status != meter.JobExpired || !j.FinishedAt.Equal(expiredAt) || j.Reserved != 0 || j.Debited != c(1) {
		t.Errorf("expired job: %+v, %v", j, err)
	}
	storetest.ExpectPools(t, s, a, c(10), c(1), storetest.QS(2, 1, 0, 1), storetest.OVS(0, 0, 0, 0), use(0, 1, 0, 10))
	_, err = report(s, a, "j", map[string]int{"p": 2}, "")
	storetest.WantCode(t, err, meter.ECodeJobExpired)
	_, err = s.ResumeJob(ctx, a, "j", month(0), "")
	storetest.WantCode(t, err, meter.ECodeJobExpired)
	_, err = s.CancelJob(ctx, a, "j")
	storetest.WantCode(t, err, meter.ECodeJobFinished)

	clk.Add(time.Hour - time.Millisecond)
	if j, err := s.JobByUpstream(ctx, a, "up"); err != nil || j.Status != meter.JobExpired {
		t.Errorf("within Retain: %+v, %v", j, err)
	}
	clk.Add(time.Millisecond)
	_, err = s.Job(ctx, a, "j")
	storetest.WantCode(t, err, meter.ECodeJobNotFound)
	_, err = s.JobByUpstream(ctx, a, "up")
	storetest.WantCode(t, err, meter.ECodeJobNotFound)
	for k := range dump(t, s) {
		if k == "accounts/acme/jobs/j" || k == "accounts/acme/jobup/up" {
			t.Errorf("%s not purged", k)
		}
	}
	// The id is free again (its settled hold record is still retained).
	res := ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Rates: map[string]meter.Credits{"p": c(1)},
		Estimate: c(2), TTL: time.Minute, Period: month(0)}))
	if res.Job.Reserved != c(2) || res.Job.Debited != 0 || res.Available != c(8) {
		t.Errorf("new job with the id: %+v", res)
	}
}

// A blocked job does not move its expiry; a running job's expiry read
// before any write sweeps reads expired.
func TestBlockedJobExpires(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(1)); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Rates: map[string]meter.Credits{"p": c(1)},
		TTL: time.Minute}))
	clk.Add(30 * time.Second)
	res := ok(t)(report(s, a, "j", map[string]int{"p": 3}, ""))
	if res.Job.Status != meter.JobBlocked || !res.Job.ExpiresAt.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("report: %+v", res)
	}
	clk.Add(59 * time.Second)
	res = ok(t)(report(s, a, "j", map[string]int{"p": 4}, ""))
	if !res.Job.ExpiresAt.Equal(clk.Now().Add(time.Second)) {
		t.Errorf("a blocked report moved the expiry: %+v", res.Job)
	}
	clk.Add(time.Second)
	if j, err := s.Job(ctx, a, "j"); err != nil || j.Status != meter.JobExpired || j.Owed() != c(3) {
		t.Errorf("blocked job at its expiry: %+v, %v", j, err)
	}
	storetest.Expect(t, s, a, 0, 0, storetest.Entry{Type: "purchase", Amount: c(1), After: c(1)},
		storetest.Entry{Type: "usage", Amount: -c(1), After: 0})
}

// A reopened store keeps a running job, its hold and its counts, and
// charges on from them.
func TestJobSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meter.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(50)); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Route: "/jobs",
		Rates: map[string]meter.Credits{"p": c(2)}, Estimate: c(10), TTL: time.Hour}))
	if err := s.AttachJob(ctx, a, "j", "up"); err != nil {
		t.Fatal(err)
	}
	ok(t)(report(s, a, "j", map[string]int{"p": 2}, ""))
	before, err := s.Job(ctx, a, "j")
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	after, err := s.JobByUpstream(ctx, a, "up")
	if err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("after reopening: %+v, %v\nbefore: %+v", after, err, before)
	}
	storetest.Expect(t, s, a, c(46), c(6), storetest.Entry{Type: "purchase", Amount: c(50), After: c(50)},
		storetest.Entry{Type: "usage", Amount: -c(4), After: c(46)})
	res := ok(t)(report(s, a, "j", map[string]int{"p": 7}, meter.JobCompleted))
	if res.Charged != c(10) || res.Job.Debited != c(14) || res.Job.Status != meter.JobCompleted {
		t.Errorf("report after reopening: %+v", res)
	}
	storetest.Expect(t, s, a, c(36), 0, storetest.Entry{Type: "purchase", Amount: c(50), After: c(50)},
		storetest.Entry{Type: "usage", Amount: -c(4), After: c(46)},
		storetest.Entry{Type: "usage", Amount: -c(10), After: c(36)})
}

// A job write that fails at its commit is metering_unavailable and leaves
// nothing of itself.
func TestFailedJobWriteLeavesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	rates := map[string]meter.Credits{"p": c(2)}
	for _, id := range []string{"run", "blocked"} {
		ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: id, Rates: rates, Estimate: c(2), TTL: time.Hour}))
	}
	ok(t)(report(s, a, "blocked", map[string]int{"p": 9}, ""))
	if _, err := s.Grant(ctx, meter.Grant{AccountID: a, Amount: c(20), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	// In order: each then succeeds, and the next builds on it.
	writes := []struct {
		name  string
		write func() error
	}{
		{"CreateJob", func() error {
			_, err := s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "new", Rates: rates, Estimate: c(1), TTL: time.Hour})
			return err
		}},
		{"AttachJob", func() error { return s.AttachJob(ctx, a, "run", "up") }},
		{"ReportJob", func() error { _, err := report(s, a, "run", map[string]int{"p": 1}, meter.JobCompleted); return err }},
		{"ResumeJob", func() error { _, err := s.ResumeJob(ctx, a, "blocked", month(0), ""); return err }},
		{"CancelJob", func() error { _, err := s.CancelJob(ctx, a, "new"); return err }},
	}
	for _, w := range writes {
		write := w.write
		t.Run(w.name, func(t *testing.T) {
			before := dump(t, s)
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
			if err := write(); err != nil {
				t.Errorf("then: %v", err)
			}
		})
	}
}

// Account.UpdatedAt is the last settings change; records written before
// it read their creation time. RetentionDays round-trips.
func TestAccountUpdatedAt(t *testing.T) {
	clk := newClock()
	s := openTemp(t, Options{Now: clk.Now})
	created := clk.Now()
	acct, err := s.CreateAccount(ctx, "a", 0)
	if err != nil || !acct.UpdatedAt.Equal(created) {
		t.Fatalf("created: %+v, %v", acct, err)
	}
	clk.Add(time.Hour)
	acct, err = s.UpdateSettings(ctx, "a", meter.Settings{RetentionDays: 7})
	if err != nil || !acct.UpdatedAt.Equal(clk.Now()) || acct.Settings.RetentionDays != 7 {
		t.Fatalf("updated: %+v, %v", acct, err)
	}
	clk.Add(time.Hour)
	if _, err := s.Grant(ctx, meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	if acct, _ = s.Account(ctx, "a"); !acct.UpdatedAt.Equal(created.Add(time.Hour)) || acct.Settings.RetentionDays != 7 {
		t.Errorf("after a grant: %+v", acct)
	}
	// A record of before the field.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bAccounts).Bucket([]byte("a"))
		r, err := decodeAccount(b.Get(kAccount))
		if err != nil {
			return err
		}
		r.UpdatedMS = 0
		raw, _ := encode(r)
		return b.Put(kAccount, raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	if acct, _ = s.Account(ctx, "a"); !acct.UpdatedAt.Equal(created) {
		t.Errorf("old record: updated at %v; want %v", acct.UpdatedAt, created)
	}
}

// A hold made in one period keeps its parts across a rollover: charged
// from it, its quota part is not the new period's use, and the charge
// counts in the new (stored) period's usage.
func TestJobAcrossPeriods(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, a, meter.Settings{MonthlyQuota: c(2)}); err != nil {
		t.Fatal(err)
	}
	ok(t)(s.CreateJob(ctx, meter.JobRequest{AccountID: a, ID: "j", Route: "/jobs", Rates: map[string]meter.Credits{"p": c(1)},
		Estimate: c(5), TTL: time.Hour, Period: month(0)}))
	storetest.ExpectPools(t, s, a, c(10), c(3), storetest.QS(2, 0, 2, 0), storetest.OVS(0, 0, 0, 0))
	res := ok(t)(s.ReportJob(ctx, meter.JobReport{AccountID: a, JobID: "j", Done: map[string]int{"p": 4}, Period: month(1)}))
	if res.Charged != c(4) || res.Job.Reserved != c(1) {
		t.Errorf("report: %+v", res)
	}
	// 2 of the old period's quota and 2 of the balance, from the hold.
	storetest.ExpectPools(t, s, a, c(8), c(1), storetest.QS(2, 0, 0, 2), storetest.OVS(0, 0, 0, 0), use(2, 2, 0, 8))
	ok(t)(s.CancelJob(ctx, a, "j"))
	storetest.ExpectPools(t, s, a, c(8), 0, storetest.QS(2, 0, 0, 2), storetest.OVS(0, 0, 0, 0), use(2, 2, 0, 8))
	for _, p := range []meter.Period{month(0), month(1)} {
		u, _ := s.Usage(ctx, a, p)
		want := []meter.RouteUsage{}
		if p == month(1) {
			want = []meter.RouteUsage{{Route: "/jobs", Requests: 1, Pages: 4, Credits: c(4)}}
		}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("usage of %v: %+v; want %+v", p.Start, u, want)
		}
	}
}

// A job record in the shape this store wrote before the stores shared
// meter.JobRecord still opens, reads the same and is charged as before
// (the next write stores it in the shared shape).
func TestJobRecordOldFormat(t *testing.T) {
	s := openTemp(t, Options{})
	a := "acme"
	if _, err := s.CreateAccount(ctx, a, c(10)); err != nil {
		t.Fatal(err)
	}
	req := meter.JobRequest{AccountID: a, ID: "j", Rates: map[string]meter.Credits{"p": c(1)}, Estimate: c(3), TTL: time.Hour}
	created := ok(t)(s.CreateJob(ctx, req)).Job
	var raw []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		raw = tx.Bucket(bAccounts).Bucket([]byte(a)).Bucket(bJobs).Get([]byte("j"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var rec meter.JobRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf(`{"s":"running","rates":{"p":1000},"est":3000,"created_ms":%d,"updated_ms":%d,`+
		`"expires_ms":%d,"ttl_ms":%d,"retain_ms":%d,"due":%d}`,
		rec.CreatedMS, rec.UpdatedMS, rec.ExpiresMS, rec.TTLMS, rec.RetainMS, rec.DueMS)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bAccounts).Bucket([]byte(a)).Bucket(bJobs).Put([]byte("j"), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, a, "j")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, created) {
		t.Fatalf("old record reads\n%+v\nwas\n%+v", j, created)
	}
	res := ok(t)(report(s, a, "j", map[string]int{"p": 2}, meter.JobCompleted))
	if res.Charged != c(2) || res.Job.Status != meter.JobCompleted {
		t.Fatalf("report: %+v", res)
	}
	storetest.Expect(t, s, a, c(8), 0, storetest.Entry{Type: "purchase", Amount: c(10), After: c(10)},
		storetest.Entry{Type: "usage", Amount: -c(2), After: c(8)})
}
