package storetest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The cases below are what only a store shows of meter.JobStore
// (meter/jobs.go): a job's fields and times, ids (reuse, upstream ids,
// unknown jobs), input checks, expiry by the store's clock, the
// job.blocked event's fields, and concurrency (jobs_concurrent.go). Where
// a job's credits move is the model's (meter/ledger TestJobs), and every
// store is compared with it on the same steps (jobs_scripts.go) and on
// random ones (RunModel).

// jobRoute is the route of the suite's jobs.
const jobRoute = "/jobs"

// pages are page counts by class.
type pages = map[string]int

// rates are credits per page by class.
type rates = map[string]meter.Credits

// jobReq is a job request of one account with a fresh id, a minute's TTL.
func jobReq(acct string, estimate meter.Credits, r rates) meter.JobRequest {
	return meter.JobRequest{AccountID: acct, ID: newID("job"), Route: jobRoute, Rates: r,
		EstimatedPages: 10, Estimate: estimate, TTL: time.Minute}
}

func mustCreateJob(t testing.TB, s meter.Store, r meter.JobRequest) meter.JobResult {
	t.Helper()
	res, err := s.CreateJob(ctx, r)
	if err != nil {
		t.Fatalf("CreateJob(%s, estimate %s): %v", r.ID, r.Estimate, err)
	}
	return res
}

// rep is a report of cumulative counts, with a request id of its own.
func rep(acct, job string, done pages) meter.JobReport {
	return meter.JobReport{AccountID: acct, JobID: job, Done: done, RequestID: newID("rq")}
}

func mustReport(t testing.TB, s meter.Store, r meter.JobReport) meter.JobResult {
	t.Helper()
	res, err := s.ReportJob(ctx, r)
	if err != nil {
		t.Fatalf("ReportJob(%s, %v, final %q): %v", r.JobID, r.Done, r.Final, err)
	}
	return res
}

// resumeJob resumes without a period: the store's current one.
func resumeJob(s meter.Store, acct, id string) (meter.JobResult, error) {
	return s.ResumeJob(ctx, acct, id, meter.Period{}, "")
}

func mustResume(t testing.TB, s meter.Store, acct, id string) meter.JobResult {
	t.Helper()
	return mustResumeIn(t, s, acct, id, meter.Period{})
}

func mustResumeIn(t testing.TB, s meter.Store, acct, id string, p meter.Period) meter.JobResult {
	t.Helper()
	res, err := s.ResumeJob(ctx, acct, id, p, "")
	if err != nil {
		t.Fatalf("ResumeJob(%s): %v", id, err)
	}
	return res
}

func mustCancel(t testing.TB, s meter.Store, acct, id string) meter.JobResult {
	t.Helper()
	res, err := s.CancelJob(ctx, acct, id)
	if err != nil {
		t.Fatalf("CancelJob(%s): %v", id, err)
	}
	return res
}

func mustJob(t testing.TB, s meter.Store, acct, id string) meter.Job {
	t.Helper()
	j, err := s.Job(ctx, acct, id)
	if err != nil {
		t.Fatalf("Job(%s): %v", id, err)
	}
	return j
}

// jobWant is a job's state as a case states it.
type jobWant struct {
	Status            string
	Reserved, Debited meter.Credits
	Pages, Reported   pages
	Failed            int
	// Final is checked while the job is running or blocked.
	Final string
}

// nonzero drops the zero counts of a map, so that a class with no pages
// may be absent or 0.
func nonzero(m pages) pages {
	out := pages{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// checkJob asserts a job's state and the invariants of every job: Debited
// is the charged pages times the rates, no class is charged beyond what
// was reported, FinishedAt is set exactly when the job is finished.
func checkJob(t testing.TB, what string, j meter.Job, w jobWant) {
	t.Helper()
	if j.Status != w.Status || j.Reserved != w.Reserved || j.Debited != w.Debited || j.Failed != w.Failed ||
		!reflect.DeepEqual(nonzero(j.Pages), nonzero(w.Pages)) || !reflect.DeepEqual(nonzero(j.Reported), nonzero(w.Reported)) {
		t.Errorf("%s: job %s: status %s reserved %s debited %s pages %v reported %v failed %d;\n"+
			"want status %s reserved %s debited %s pages %v reported %v failed %d",
			what, j.ID, j.Status, j.Reserved, j.Debited, j.Pages, j.Reported, j.Failed,
			w.Status, w.Reserved, w.Debited, w.Pages, w.Reported, w.Failed)
	}
	if !j.Finished() && j.Final != w.Final {
		t.Errorf("%s: job %s: final %q, want %q", what, j.ID, j.Final, w.Final)
	}
	checkJobInvariants(t, what, j)
}

func checkJobInvariants(t testing.TB, what string, j meter.Job) {
	t.Helper()
	var cost meter.Credits
	for cl, n := range j.Pages {
		if n > j.Reported[cl] {
			t.Errorf("%s: job %s: %d %s pages charged, %d reported", what, j.ID, n, cl, j.Reported[cl])
		}
		if _, ok := j.Rates[cl]; !ok && n != 0 {
			t.Errorf("%s: job %s: pages of class %q, which has no rate", what, j.ID, cl)
		}
		cost += meter.Credits(n) * j.Rates[cl]
	}
	if cost != j.Debited {
		t.Errorf("%s: job %s: debited %s, its pages %v at %v cost %s", what, j.ID, j.Debited, j.Pages, j.Rates, cost)
	}
	if j.Reserved < 0 || (j.Finished() || j.Status == meter.JobBlocked) && j.Reserved != 0 {
		t.Errorf("%s: job %s is %s and holds %s", what, j.ID, j.Status, j.Reserved)
	}
	if j.Finished() == j.FinishedAt.IsZero() {
		t.Errorf("%s: job %s is %s, finished at %v", what, j.ID, j.Status, j.FinishedAt)
	}
}

// checkResult asserts what a call charged and the account after it. A
// call that charged something names its entry; one that did not, none.
func checkResult(t testing.TB, what string, r meter.JobResult, charged, balance, available meter.Credits) {
	t.Helper()
	if r.Charged != charged || r.Balance != balance || r.Available != available || (charged != 0) != (r.EntryID != "") {
		t.Errorf("%s: charged %s entry %q balance %s available %s; want charged %s, balance %s, available %s",
			what, r.Charged, r.EntryID, r.Balance, r.Available, charged, balance, available)
	}
}

// sameJob fails unless two reads of a job agree on every field.
func sameJob(t testing.TB, what string, got, want meter.Job) {
	t.Helper()
	norm := func(j meter.Job) meter.Job {
		j.Pages, j.Reported = nonzero(j.Pages), nonzero(j.Reported)
		if len(j.Rates) == 0 {
			j.Rates = nil
		}
		for _, tm := range []*time.Time{&j.CreatedAt, &j.UpdatedAt, &j.ExpiresAt, &j.FinishedAt} {
			*tm = tm.Round(0).UTC()
		}
		return j
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// jobEntries returns a job's usage entries, oldest first.
func jobEntries(t testing.TB, s meter.Store, acct, job string) []meter.LedgerEntry {
	t.Helper()
	var out []meter.LedgerEntry
	for _, e := range oldestFirst(t, s, acct) {
		if e.ReservationID == job {
			if e.JobID != job {
				t.Errorf("job usage entry %s has job_id %q, want %q", e.ID, e.JobID, job)
			}
			out = append(out, e)
		}
	}
	return out
}

// charged is what a usage entry took from every pool.
func charged(e meter.LedgerEntry) meter.Credits { return e.Quota - e.Amount }

// logLedger logs an account's ledger, to explain a failure.
func logLedger(t testing.TB, s meter.Store, acct string) {
	t.Helper()
	for _, e := range oldestFirst(t, s, acct) {
		t.Logf("%s %-8s amount %8s quota %8s overage %8s after %8s pages %3d %s %s", e.ID, e.Type, e.Amount, e.Quota,
			e.Overage, e.BalanceAfter, e.Pages, e.Route, e.ReservationID)
	}
}

// sameDetails compares error details, times by Equal.
func sameDetails(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		if tv, isTime := v.(time.Time); isTime {
			if tw, ok := w.(time.Time); !ok || !tv.Equal(tw) {
				return false
			}
		} else if !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}

// near reports whether a is within d of b.
func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }

func testJobs(t *testing.T, s meter.Store) {
	t.Run("a job's fields and times", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(6), rates{"page": c(1)})
		r.EstimatedPages = 6
		before := time.Now()
		res := mustCreateJob(t, s, r)
		checkResult(t, "create", res, 0, c(10), c(4))
		j := res.Job
		if j.ID != r.ID || j.AccountID != id || j.Route != jobRoute || j.UpstreamID != "" ||
			!reflect.DeepEqual(j.Rates, r.Rates) || j.EstimatedPages != 6 || j.Estimate != c(6) || j.TTL != time.Minute {
			t.Errorf("job %+v", j)
		}
		checkJob(t, "created", j, jobWant{Status: meter.JobRunning, Reserved: c(6)})
		if !near(j.CreatedAt, before, time.Minute) || j.UpdatedAt.Before(j.CreatedAt) ||
			!near(j.ExpiresAt, j.CreatedAt.Add(time.Minute), 10*time.Millisecond) {
			t.Errorf("times: created %v updated %v expires %v", j.CreatedAt, j.UpdatedAt, j.ExpiresAt)
		}
		sameJob(t, "Job after CreateJob", mustJob(t, s, id, r.ID), j)
	})

	t.Run("a job id cannot be reused", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(2), rates{"page": c(1)})
		first := mustCreateJob(t, s, r)
		again := r
		again.Estimate, again.Rates = c(1), rates{"other": c(2)}
		_, err := s.CreateJob(ctx, again)
		wantCode(t, err, meter.ECodeInvalid)
		mustCancel(t, s, id, r.ID)
		_, err = s.CreateJob(ctx, r)
		wantCode(t, err, meter.ECodeInvalid)
		j := mustJob(t, s, id, r.ID)
		if j.Status != meter.JobCanceled || !reflect.DeepEqual(j.Rates, first.Job.Rates) {
			t.Errorf("job %+v", j)
		}
		// Job ids are per account.
		other := newAccount(t, s, c(10))
		r.AccountID = other
		mustCreateJob(t, s, r)
		expect(t, s, id, c(10), 0, entry{"purchase", c(10), c(10), false})
		expect(t, s, other, c(10), c(2), entry{"purchase", c(10), c(10), false})
		_, err = s.Job(ctx, newAccount(t, s, 0), r.ID)
		wantCode(t, err, meter.ECodeJobNotFound)
	})

	t.Run("invalid job requests", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		ok := jobReq(id, c(1), rates{"page": c(1)})
		for name, mod := range map[string]func(r *meter.JobRequest){
			"no rates":              func(r *meter.JobRequest) { r.Rates = nil },
			"empty rates":           func(r *meter.JobRequest) { r.Rates = rates{} },
			"negative rate":         func(r *meter.JobRequest) { r.Rates = rates{"page": c(1), "drawing": -1} },
			"huge rate":             func(r *meter.JobRequest) { r.Rates = rates{"page": MaxCredits + 1} },
			"class of a digit":      func(r *meter.JobRequest) { r.Rates = rates{"1page": c(1)} },
			"empty class":           func(r *meter.JobRequest) { r.Rates = rates{"": c(1)} },
			"class with a space":    func(r *meter.JobRequest) { r.Rates = rates{"a page": c(1)} },
			"zero TTL":              func(r *meter.JobRequest) { r.TTL = 0 },
			"negative TTL":          func(r *meter.JobRequest) { r.TTL = -time.Second },
			"negative estimate":     func(r *meter.JobRequest) { r.Estimate = -1 },
			"huge estimate":         func(r *meter.JobRequest) { r.Estimate = MaxCredits + 1 },
			"no id":                 func(r *meter.JobRequest) { r.ID = "" },
			"id too long":           func(r *meter.JobRequest) { r.ID = string(make([]byte, meter.MaxRefLen+1)) },
			"invalid account id":    func(r *meter.JobRequest) { r.AccountID = "bad id" },
			"control character":     func(r *meter.JobRequest) { r.ID += "\n" },
			"negative pages":        func(r *meter.JobRequest) { r.EstimatedPages = -1 },
			"negative retain":       func(r *meter.JobRequest) { r.Retain = -time.Second },
			"period ends too early": func(r *meter.JobRequest) { r.Period = meter.Period{Start: month(1).Start, End: month(0).Start} },
		} {
			r := ok
			r.ID = newID("job")
			mod(&r)
			if _, err := s.CreateJob(ctx, r); meter.ErrorCode(err) != meter.ECodeInvalid {
				t.Errorf("%s: %v; want code %s", name, err, meter.ECodeInvalid)
			}
		}
		long := ok
		long.ID = newID("job") + strings.Repeat("j", meter.MaxRefLen)
		long.ID = long.ID[len(long.ID)-meter.MaxRefLen:]
		mustCreateJob(t, s, long) // MaxRefLen bytes is fine
		mustCreateJob(t, s, ok)
		expect(t, s, id, c(10), c(2), entry{"purchase", c(10), c(10), false})
		_, err := s.CreateJob(ctx, jobReq(newID("nobody"), c(1), rates{"page": c(1)}))
		wantCode(t, err, meter.ECodeAccountNotFound)
	})

	t.Run("invalid reports", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		res := mustCreateJob(t, s, jobReq(id, c(2), rates{"page": c(1)}))
		mustReport(t, s, rep(id, res.Job.ID, pages{"page": 1}))
		before := mustJob(t, s, id, res.Job.ID)
		for name, r := range map[string]meter.JobReport{
			"unknown class":         rep(id, res.Job.ID, pages{"page": 2, "drawing": 1}),
			"final running":         {AccountID: id, JobID: res.Job.ID, Done: pages{"page": 2}, Final: meter.JobRunning},
			"final canceled":        {AccountID: id, JobID: res.Job.ID, Done: pages{"page": 2}, Final: meter.JobCanceled},
			"final expired":         {AccountID: id, JobID: res.Job.ID, Done: pages{"page": 2}, Final: meter.JobExpired},
			"final blocked":         {AccountID: id, JobID: res.Job.ID, Done: pages{"page": 2}, Final: meter.JobBlocked},
			"final of another kind": {AccountID: id, JobID: res.Job.ID, Done: pages{"page": 2}, Final: "done"},
			"final unknown class":   {AccountID: id, JobID: res.Job.ID, Done: pages{"x": 2}, Final: meter.JobCompleted},
			"invalid account id":    {AccountID: "bad id", JobID: res.Job.ID, Done: pages{"page": 2}},
		} {
			if _, err := s.ReportJob(ctx, r); meter.ErrorCode(err) != meter.ECodeInvalid {
				t.Errorf("%s: %v; want code %s", name, err, meter.ECodeInvalid)
			}
		}
		sameJob(t, "after invalid reports", mustJob(t, s, id, res.Job.ID), before)
		expect(t, s, id, c(9), c(1), entry{"purchase", c(10), c(10), false}, usage(1, 9))
	})

	t.Run("a charging report moves the expiry, others do not", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(5), rates{"page": c(1)})
		created := mustCreateJob(t, s, r).Job
		sleepMillis()
		before := time.Now()
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		if !res.Job.ExpiresAt.After(created.ExpiresAt) || res.Job.ExpiresAt.Before(before.Add(time.Minute-time.Second)) {
			t.Errorf("expires at %v after a charge; was %v", res.Job.ExpiresAt, created.ExpiresAt)
		}
		sleepMillis()
		again := mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		if !again.Job.ExpiresAt.Equal(res.Job.ExpiresAt) {
			t.Errorf("expires at %v after a report that charged nothing; was %v", again.Job.ExpiresAt, res.Job.ExpiresAt)
		}
	})

	t.Run("upstream ids", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(1), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		up := newID("up")
		if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
			t.Fatal(err)
		}
		j, err := s.JobByUpstream(ctx, id, up)
		if err != nil || j.ID != r.ID || j.UpstreamID != up || j.AccountID != id {
			t.Fatalf("JobByUpstream: %+v, %v", j, err)
		}
		sameJob(t, "JobByUpstream", j, mustJob(t, s, id, r.ID))
		if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
			t.Errorf("attaching the same id again: %v", err)
		}
		other := newID("up")
		wantCode(t, s.AttachJob(ctx, id, r.ID, other), meter.ECodeInvalid)
		wantCode(t, s.AttachJob(ctx, id, r.ID, ""), meter.ECodeInvalid)
		_, err = s.JobByUpstream(ctx, id, other)
		wantCode(t, err, meter.ECodeJobNotFound)
		if j := mustJob(t, s, id, r.ID); j.UpstreamID != up {
			t.Errorf("upstream id %q after another attach; want %q", j.UpstreamID, up)
		}
		// Upstream ids are per account.
		_, err = s.JobByUpstream(ctx, newAccount(t, s, 0), up)
		wantCode(t, err, meter.ECodeJobNotFound)
		// The id stays with the job as it runs.
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		if res.Job.UpstreamID != up {
			t.Errorf("report: upstream id %q", res.Job.UpstreamID)
		}
		wantCode(t, s.AttachJob(ctx, id, newID("job"), newID("up")), meter.ECodeJobNotFound)
	})

	t.Run("unknown jobs", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		nope := newID("job")
		_, err := s.Job(ctx, id, nope)
		wantCode(t, err, meter.ECodeJobNotFound)
		_, err = s.ReportJob(ctx, rep(id, nope, pages{"page": 1}))
		wantCode(t, err, meter.ECodeJobNotFound)
		_, err = s.CancelJob(ctx, id, nope)
		wantCode(t, err, meter.ECodeJobNotFound)
		wantCode(t, s.AttachJob(ctx, id, nope, "up"), meter.ECodeJobNotFound)
		_, err = s.JobByUpstream(ctx, id, newID("up"))
		wantCode(t, err, meter.ECodeJobNotFound)
		_, err = resumeJob(s, id, nope)
		wantCode(t, err, meter.ECodeJobNotFound)
		expect(t, s, id, c(10), 0, entry{"purchase", c(10), c(10), false})
	})
}

// jobShortTTL is the TTL of jobs meant to expire; pastJobTTL waits until
// they have, on the store's clock.
const jobShortTTL = 400 * time.Millisecond

func pastJobTTL() { time.Sleep(jobShortTTL + 150*time.Millisecond) }

// sleepUntil sleeps until margin past t.
func sleepUntil(t time.Time, margin time.Duration) { time.Sleep(time.Until(t) + margin) }

// checkExpired asserts that a job reads as expired, holds nothing, and
// refuses reports and resumes.
func checkExpired(t *testing.T, s meter.Store, acct, job string, w jobWant) meter.Job {
	t.Helper()
	j := mustJob(t, s, acct, job)
	w.Status = meter.JobExpired
	// Reading: an expired job's hold is released, so it reads Reserved 0.
	checkJob(t, "expired", j, w)
	if j.FinishedAt.Before(j.ExpiresAt.Add(-time.Millisecond)) {
		t.Errorf("finished at %v, before it expired at %v", j.FinishedAt, j.ExpiresAt)
	}
	_, err := s.ReportJob(ctx, rep(acct, job, pages{"page": 100}))
	wantCode(t, err, meter.ECodeJobExpired)
	_, err = s.ReportJob(ctx, rep(acct, job, j.Reported))
	wantCode(t, err, meter.ECodeJobExpired)
	_, err = resumeJob(s, acct, job)
	wantCode(t, err, meter.ECodeJobExpired)
	// Reading: CancelJob lists no job_expired; an expired job is
	// finished (Job.Finished), so canceling it is job_finished.
	_, err = s.CancelJob(ctx, acct, job)
	wantCode(t, err, meter.ECodeJobFinished)
	sameJob(t, "expired, after refused calls", mustJob(t, s, acct, job), j)
	return j
}

// The cases sleep past short TTLs, so they run in parallel.
func testJobExpiry(t *testing.T, s meter.Store) {
	t.Run("a job with no reports expires and releases its hold", func(t *testing.T) {
		t.Parallel()
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(6), rates{"page": c(1)})
		r.TTL = jobShortTTL
		created := mustCreateJob(t, s, r).Job
		if created.TTL != jobShortTTL || !near(created.ExpiresAt, created.CreatedAt.Add(jobShortTTL), 10*time.Millisecond) {
			t.Errorf("job %+v", created)
		}
		up := newID("up")
		if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
			t.Fatal(err)
		}
		_, err := reserve(s, id, newRID(), c(5), time.Minute, "")
		wantCode(t, err, meter.ECodeInsufficientCredits)
		pastJobTTL()
		expect(t, s, id, c(10), 0, entry{"purchase", c(10), c(10), false})
		checkExpired(t, s, id, r.ID, jobWant{})
		if j, err := s.JobByUpstream(ctx, id, up); err != nil || j.Status != meter.JobExpired {
			t.Errorf("JobByUpstream after expiry: %+v, %v", j, err)
		}
		mustReserve(t, s, id, newRID(), c(10)) // needs the released 6
		expect(t, s, id, c(10), c(10), entry{"purchase", c(10), c(10), false})
	})

	t.Run("what was charged before the expiry stays", func(t *testing.T) {
		t.Parallel()
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(6), rates{"page": c(1)})
		r.TTL = jobShortTTL
		mustCreateJob(t, s, r)
		mustReport(t, s, rep(id, r.ID, pages{"page": 2}))
		pastJobTTL()
		checkExpired(t, s, id, r.ID, jobWant{Debited: c(2), Pages: pages{"page": 2}, Reported: pages{"page": 2}})
		expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false}, usage(2, 8))
	})

	t.Run("a charging report moves the expiry", func(t *testing.T) {
		t.Parallel()
		ttl := 500 * time.Millisecond
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(5), rates{"page": c(1)})
		r.TTL = ttl
		created := mustCreateJob(t, s, r).Job
		time.Sleep(300 * time.Millisecond)
		before := time.Now()
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		moved := res.Job.ExpiresAt
		if !moved.After(created.ExpiresAt) || !near(moved, before.Add(ttl), 100*time.Millisecond) {
			t.Errorf("expires at %v after a charge at %v; was %v", moved, before, created.ExpiresAt)
		}
		sleepUntil(created.ExpiresAt, 100*time.Millisecond) // past the first expiry
		// A report that charges nothing does not move it.
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		checkJob(t, "after the first expiry", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(4), Debited: c(1),
			Pages: pages{"page": 1}, Reported: pages{"page": 1}})
		if !res.Job.ExpiresAt.Equal(moved) {
			t.Errorf("a report that charged nothing moved the expiry from %v to %v", moved, res.Job.ExpiresAt)
		}
		sleepUntil(moved, 150*time.Millisecond)
		checkExpired(t, s, id, r.ID, jobWant{Debited: c(1), Pages: pages{"page": 1}, Reported: pages{"page": 1}})
		expect(t, s, id, c(9), 0, entry{"purchase", c(10), c(10), false}, usage(1, 9))
	})

	t.Run("a blocked job expires; its owed pages are never charged", func(t *testing.T) {
		t.Parallel()
		id := newAccount(t, s, c(2))
		r := jobReq(id, 0, rates{"page": c(1)})
		r.TTL = jobShortTTL
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 3}))
		checkResult(t, "blocking", res, c(2), 0, 0)
		blockedUntil := res.Job.ExpiresAt
		time.Sleep(jobShortTTL / 2)
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 5})) // does not move the expiry
		if !res.Job.ExpiresAt.Equal(blockedUntil) {
			t.Errorf("a report while blocked moved the expiry from %v to %v", blockedUntil, res.Job.ExpiresAt)
		}
		sleepUntil(blockedUntil, 150*time.Millisecond)
		grant(t, s, id, c(10), meter.EntryPurchase, "")
		checkExpired(t, s, id, r.ID, jobWant{Debited: c(2), Pages: pages{"page": 2}, Reported: pages{"page": 5}})
		expect(t, s, id, c(10), 0, entry{"purchase", c(2), c(2), false}, usage(2, 0), entry{"purchase", c(10), c(10), false})
	})

	t.Run("resume moves the expiry", func(t *testing.T) {
		t.Parallel()
		ttl := 500 * time.Millisecond
		id := newAccount(t, s, c(2))
		r := jobReq(id, 0, rates{"page": c(1)})
		r.TTL = ttl
		mustCreateJob(t, s, r)
		blocked := mustReport(t, s, rep(id, r.ID, pages{"page": 3})).Job
		grant(t, s, id, c(10), meter.EntryPurchase, "")
		time.Sleep(300 * time.Millisecond)
		res := mustResume(t, s, id, r.ID)
		checkResult(t, "resume", res, c(1), c(9), c(8))
		moved := res.Job.ExpiresAt
		if !moved.After(blocked.ExpiresAt) {
			t.Errorf("resume left the expiry at %v (was %v)", moved, blocked.ExpiresAt)
		}
		sleepUntil(blocked.ExpiresAt, 100*time.Millisecond)
		checkJob(t, "past the blocked expiry", mustJob(t, s, id, r.ID), jobWant{Status: meter.JobRunning, Reserved: c(1),
			Debited: c(3), Pages: pages{"page": 3}, Reported: pages{"page": 3}})
		expect(t, s, id, c(9), c(1), entry{"purchase", c(2), c(2), false}, usage(2, 0),
			entry{"purchase", c(10), c(10), false}, usage(1, 9))
		sleepUntil(moved, 150*time.Millisecond)
		checkExpired(t, s, id, r.ID, jobWant{Debited: c(3), Pages: pages{"page": 3}, Reported: pages{"page": 3}})
		expect(t, s, id, c(9), 0, entry{"purchase", c(2), c(2), false}, usage(2, 0),
			entry{"purchase", c(10), c(10), false}, usage(1, 9))
	})

	t.Run("a finished job is readable for its Retain, then not found", func(t *testing.T) {
		// Reading: past Retain the record is gone: Job says
		// job_not_found.
		t.Parallel()
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(2), rates{"page": c(1)})
		r.Retain = 300 * time.Millisecond
		mustCreateJob(t, s, r)
		mustReport(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: pages{"page": 1}, Final: meter.JobCompleted})
		if j := mustJob(t, s, id, r.ID); j.Status != meter.JobCompleted {
			t.Errorf("job %+v", j)
		}
		time.Sleep(r.Retain + 200*time.Millisecond)
		_, err := s.Job(ctx, id, r.ID)
		wantCode(t, err, meter.ECodeJobNotFound)
		expect(t, s, id, c(9), 0, entry{"purchase", c(10), c(10), false}, usage(1, 9))
	})
}

// JobEvents: ClaimEvents is global (see events.go); these cases drain
// their own accounts' events and run one after the other.
func testJobEvents(t *testing.T, s meter.Store) {
	t.Run("each blocking records one job.blocked event", func(t *testing.T) {
		id := newAccount(t, s, c(5))
		r := jobReq(id, 0, rates{"page": c(2)})
		mustCreateJob(t, s, r)
		drain(t, s, id)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 3})) // 2 pages
		checkResult(t, "blocking", res, c(4), c(1), c(1))
		mustReport(t, s, rep(id, r.ID, pages{"page": 4})) // while blocked: no second event (and Scripts/Jobs)
		e := drain(t, s, id, meter.EventJobBlocked)[0]
		if e.JobID != r.ID || e.UpstreamJobID != "" || e.AccountID != id || e.Balance != c(1) ||
			e.Attempts != 0 || time.Since(e.CreatedAt).Abs() > time.Minute || !meter.LedgerEntryID.MatchString(e.ID) {
			t.Errorf("event %+v", e)
		}
		if b, err := e.Payload(); err != nil || !strings.Contains(string(b), `"job_id":"`+r.ID+`"`) {
			t.Errorf("payload %s, %v", b, err)
		}
	})

	t.Run("the event names the upstream job", func(t *testing.T) {
		id := newAccount(t, s, 0)
		r := jobReq(id, 0, rates{"page": c(1)})
		mustCreateJob(t, s, r)
		up := newID("up")
		if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
			t.Fatal(err)
		}
		mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		e := drain(t, s, id, meter.EventJobBlocked)[0]
		if e.JobID != r.ID || e.UpstreamJobID != up || e.Balance != 0 {
			t.Errorf("event %+v", e)
		}
		if b, err := e.Payload(); err != nil || !strings.Contains(string(b), `"upstream_job_id":"`+up+`"`) {
			t.Errorf("payload %s, %v", b, err)
		}
	})

}
