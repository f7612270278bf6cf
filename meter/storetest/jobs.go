package storetest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The cases below are meter.JobStore's specification (meter/jobs.go), as
// tests. Amounts are chosen so that every charge, hold and refusal is
// exact. A job's charges are checked three ways that must agree: the
// job's Debited, its Pages times its Rates, and the sum of its ledger
// entries (ReservationID = the job id).

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

// checkJobEntries asserts a job's usage entries, oldest first: the pages
// each paid for, their route and type, and that they sum to its Debited.
func checkJobEntries(t testing.TB, s meter.Store, j meter.Job, pagesEach ...int) {
	t.Helper()
	es := jobEntries(t, s, j.AccountID, j.ID)
	var got []int
	var sum meter.Credits
	for _, e := range es {
		got = append(got, e.Pages)
		sum += charged(e)
		if e.Type != meter.EntryUsage || e.Route != j.Route || e.AccountID != j.AccountID || e.Late {
			t.Errorf("job %s: entry %+v", j.ID, e)
		}
	}
	if !reflect.DeepEqual(got, pagesEach) {
		t.Errorf("job %s: entries of %v pages; want %v", j.ID, got, pagesEach)
	}
	if sum != j.Debited {
		t.Errorf("job %s: entries sum to %s, debited %s", j.ID, sum, j.Debited)
	}
}

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
	t.Run("create holds the estimate", func(t *testing.T) {
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
		// The hold is the job's: other requests get what is left.
		mustReserve(t, s, id, newRID(), c(3))
		_, err := reserve(s, id, newRID(), c(2), time.Minute, "")
		wantCode(t, err, meter.ECodeInsufficientCredits)
		expect(t, s, id, c(10), c(9), entry{"purchase", c(10), c(10), false})
	})

	t.Run("an estimate of 0 holds nothing", func(t *testing.T) {
		id := newAccount(t, s, 0)
		res := mustCreateJob(t, s, jobReq(id, 0, rates{"page": c(1)}))
		checkResult(t, "create", res, 0, 0, 0)
		checkJob(t, "created", res.Job, jobWant{Status: meter.JobRunning})
		expect(t, s, id, 0, 0)
	})

	t.Run("insufficient credits says what was required and available", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		mustReserve(t, s, id, newRID(), c(4))
		r := jobReq(id, c(7), rates{"page": c(1)})
		_, err := s.CreateJob(ctx, r)
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(7) || e.Details["available"] != c(6) {
			t.Errorf("details %v; want required 7, available 6", e.Details)
		}
		_, err = s.Job(ctx, id, r.ID)
		wantCode(t, err, meter.ECodeJobNotFound)
		// Reading: a refused CreateJob records nothing, so its id is not
		// "used" and a later CreateJob may take it.
		r.Estimate = c(6)
		mustCreateJob(t, s, r)
		expect(t, s, id, c(10), c(10), entry{"purchase", c(10), c(10), false})
	})

	// Refusals as Reserve's: the same request refused the same way, with
	// the same details, on twin accounts.
	for _, tc := range []struct {
		name                       string
		balance, quota, overageCap meter.Credits
		amount, fits               meter.Credits
		code                       string
	}{
		{"quota exceeded", 0, c(10), 0, c(12), c(10), meter.ECodeQuotaExceeded},
		{"insufficient credits beyond the quota", c(1), c(10), 0, c(12), c(11), meter.ECodeInsufficientCredits},
		{"overage limit reached", c(2), 0, c(5), c(8), c(7), meter.ECodeOverageLimitReached},
	} {
		t.Run("refused like Reserve: "+tc.name, func(t *testing.T) {
			p := month(0)
			twin := quotaAccount(t, s, tc.balance, tc.quota, tc.overageCap)
			_, rerr := reserveIn(s, twin, newRID(), tc.amount, p, time.Minute)
			want := wantCode(t, rerr, tc.code)
			id := quotaAccount(t, s, tc.balance, tc.quota, tc.overageCap)
			r := jobReq(id, tc.amount, rates{"page": c(1)})
			r.Period = p
			_, err := s.CreateJob(ctx, r)
			if got := wantCode(t, err, tc.code); !sameDetails(got.Details, want.Details) {
				t.Errorf("details %v; Reserve's %v", got.Details, want.Details)
			}
			a, err := s.Account(ctx, id)
			if err != nil || a.Reserved != 0 || a.Quota.Reserved != 0 || a.Overage.Reserved != 0 {
				t.Errorf("account after the refusal %+v, %v", a, err)
			}
			// As much as fits is held.
			r.ID, r.Estimate = newID("job"), tc.fits
			mustCreateJob(t, s, r)
		})
	}

	// Quota 10, balance 5: the hold takes the quota first; charges take
	// the hold (its quota part first, as a commit does), then what is
	// available.
	t.Run("a job uses quota first", func(t *testing.T) {
		id := quotaAccount(t, s, c(5), c(10), 0)
		p := month(0)
		r := jobReq(id, c(12), rates{"page": c(1)})
		r.Period = p
		res := mustCreateJob(t, s, r)
		checkResult(t, "create", res, 0, c(5), c(3))
		checkJob(t, "created", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(12)})
		expectPools(t, s, id, c(5), c(2), qs(10, 0, 10, 0), ovs(0, 0, 0, 0))

		report := func(n int, final string) meter.JobResult {
			t.Helper()
			rp := rep(id, r.ID, pages{"page": n})
			rp.Period, rp.Final = p, final
			return mustReport(t, s, rp)
		}
		res = report(11, "") // 10 quota + 1 balance, all from the hold
		checkResult(t, "report 11", res, c(11), c(4), c(3))
		checkJob(t, "report 11", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(1), Debited: c(11),
			Pages: pages{"page": 11}, Reported: pages{"page": 11}})
		expectPools(t, s, id, c(4), c(1), qs(10, 10, 0, 0), ovs(0, 0, 0, 0), use{-c(1), c(10), 0, c(4)})

		res = report(14, "") // 1 from the hold, 2 from the balance
		checkResult(t, "report 14", res, c(3), c(1), c(1))
		res = report(15, meter.JobCompleted)
		checkResult(t, "report 15 completed", res, c(1), 0, 0)
		checkJob(t, "completed", res.Job, jobWant{Status: meter.JobCompleted, Debited: c(15),
			Pages: pages{"page": 15}, Reported: pages{"page": 15}})
		expectPools(t, s, id, 0, 0, qs(10, 10, 0, 0), ovs(0, 0, 0, 0),
			use{-c(1), c(10), 0, c(4)}, use{-c(3), 0, 0, c(1)}, use{-c(1), 0, 0, 0})
		checkJobEntries(t, s, res.Job, 11, 3, 1)
		// Reading: usage by route counts each charging call as a request.
		got, err := s.Usage(ctx, id, p)
		want := []meter.RouteUsage{{Route: jobRoute, Requests: 3, Pages: 15, Credits: c(15)}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Usage: %+v, %v; want %+v", got, err, want)
		}
	})

	// Quota 6, held whole by two jobs (2 and 4): past its own hold a job
	// finds no quota left, whatever it pays for.
	t.Run("a job does not take another's quota", func(t *testing.T) {
		id := quotaAccount(t, s, c(1), c(6), 0)
		p := month(0)
		a := jobReq(id, c(2), rates{"page": c(1)})
		b := jobReq(id, c(4), rates{"page": c(2), "scan": c(0.5)})
		for _, r := range []*meter.JobRequest{&a, &b} {
			r.Period = p
			mustCreateJob(t, s, *r)
		}
		expectPools(t, s, id, c(1), 0, qs(6, 0, 6, 0), ovs(0, 0, 0, 0))
		rp := rep(id, b.ID, pages{"page": 2, "scan": 3}) // 5.5: the hold's 4 and 1 of the balance; a scan owed
		rp.Period = p
		res := mustReport(t, s, rp)
		checkResult(t, "report", res, c(5), 0, 0)
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(5),
			Pages: pages{"page": 2, "scan": 2}, Reported: pages{"page": 2, "scan": 3}})
		expectPools(t, s, id, 0, 0, qs(6, 4, 2, 0), ovs(0, 0, 0, 0), use{-c(1), c(4), 0, 0})
		rp = rep(id, a.ID, pages{"page": 2})
		rp.Period = p
		res = mustReport(t, s, rp)
		checkResult(t, "the other job", res, c(2), 0, 0)
		expectPools(t, s, id, 0, 0, qs(6, 6, 0, 0), ovs(0, 0, 0, 0), use{-c(1), c(4), 0, 0}, use{0, c(2), 0, 0})
	})

	t.Run("a job reaches into the overage", func(t *testing.T) {
		id := quotaAccount(t, s, c(2), 0, c(5))
		p := month(0)
		r := jobReq(id, c(7), rates{"page": c(1)})
		r.Period = p
		res := mustCreateJob(t, s, r)
		checkResult(t, "create", res, 0, c(2), -c(5))
		expectPools(t, s, id, c(2), c(7), qs(0, 0, 0, 0), ovs(5, 0, 5, 0))
		rp := rep(id, r.ID, pages{"page": 3})
		rp.Period = p
		res = mustReport(t, s, rp) // 2 balance + 1 overage, from the hold
		checkResult(t, "report", res, c(3), -c(1), -c(5))
		expectPools(t, s, id, -c(1), c(4), qs(0, 0, 0, 0), ovs(5, 1, 4, 0), use{-c(3), 0, c(1), -c(1)})
		res = mustCancel(t, s, id, r.ID)
		checkResult(t, "cancel", res, 0, -c(1), -c(1))
		expectPools(t, s, id, -c(1), 0, qs(0, 0, 0, 0), ovs(5, 1, 0, 4), use{-c(3), 0, c(1), -c(1)})
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

	t.Run("reports are cumulative", func(t *testing.T) {
		id := newAccount(t, s, c(20))
		r := jobReq(id, c(10), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		first := rep(id, r.ID, pages{"page": 3})
		res := mustReport(t, s, first)
		checkResult(t, "3 pages", res, c(3), c(17), c(10))
		checkJob(t, "3 pages", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(7), Debited: c(3),
			Pages: pages{"page": 3}, Reported: pages{"page": 3}})
		entry1 := res.EntryID

		res = mustReport(t, s, first) // the same report again
		checkResult(t, "repeated", res, 0, c(17), c(10))
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 2})) // out of order: read as 3
		checkResult(t, "lower", res, 0, c(17), c(10))
		checkJob(t, "lower", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(7), Debited: c(3),
			Pages: pages{"page": 3}, Reported: pages{"page": 3}})
		res = mustReport(t, s, rep(id, r.ID, nil)) // no counts at all
		checkResult(t, "empty", res, 0, c(17), c(10))

		second := rep(id, r.ID, pages{"page": 5})
		second.Failed = 2
		res = mustReport(t, s, second)
		checkResult(t, "5 pages, 2 failed", res, c(2), c(15), c(10))
		entry2 := res.EntryID
		for _, f := range []int{1, 4, 3} {
			rp := rep(id, r.ID, pages{"page": 5})
			rp.Failed = f
			res = mustReport(t, s, rp)
			checkResult(t, fmt.Sprintf("%d failed", f), res, 0, c(15), c(10))
		}
		checkJob(t, "failed pages", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(5), Debited: c(5),
			Pages: pages{"page": 5}, Reported: pages{"page": 5}, Failed: 4})
		sameJob(t, "Job after reports", mustJob(t, s, id, r.ID), res.Job)

		expect(t, s, id, c(15), c(5), entry{"purchase", c(20), c(20), false}, usage(3, 17), usage(2, 15))
		es := jobEntries(t, s, id, r.ID)
		if len(es) != 2 || es[0].ID != entry1 || es[1].ID != entry2 ||
			es[0].RequestID != first.RequestID || es[1].RequestID != second.RequestID {
			t.Errorf("entries %+v", es)
		}
		checkJobEntries(t, s, res.Job, 3, 2)
		got, err := s.Usage(ctx, id, meter.Period{})
		want := []meter.RouteUsage{{Route: jobRoute, Requests: 2, Pages: 5, Credits: c(5)}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Usage: %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("charges take the hold, then what is available", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(4), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 3})) // from the hold: available stays
		checkResult(t, "3 pages", res, c(3), c(7), c(6))
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 6})) // 1 from the hold, 2 available
		checkResult(t, "6 pages", res, c(3), c(4), c(4))
		checkJob(t, "6 pages", res.Job, jobWant{Status: meter.JobRunning, Debited: c(6),
			Pages: pages{"page": 6}, Reported: pages{"page": 6}})
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 8}))
		checkResult(t, "8 pages", res, c(2), c(2), c(2))
		checkJob(t, "8 pages", res.Job, jobWant{Status: meter.JobRunning, Debited: c(8),
			Pages: pages{"page": 8}, Reported: pages{"page": 8}})
		expect(t, s, id, c(2), 0, entry{"purchase", c(10), c(10), false}, usage(3, 7), usage(3, 4), usage(2, 2))
		checkJobEntries(t, s, res.Job, 3, 3, 2)
	})

	t.Run("page classes", func(t *testing.T) {
		id := newAccount(t, s, c(50))
		r := jobReq(id, c(20), rates{"drawing": c(8), "document": c(0.5)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"drawing": 1, "document": 4}))
		checkResult(t, "report", res, c(10), c(40), c(30))
		res = mustReport(t, s, rep(id, r.ID, pages{"drawing": 1, "document": 5}))
		checkResult(t, "one more document", res, c(0.5), c(39.5), c(30))
		res = mustReport(t, s, rep(id, r.ID, pages{"drawing": 2})) // documents read as 5
		checkResult(t, "one more drawing", res, c(8), c(31.5), c(30))
		checkJob(t, "classes", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(1.5), Debited: c(18.5),
			Pages: pages{"drawing": 2, "document": 5}, Reported: pages{"drawing": 2, "document": 5}})
		checkJobEntries(t, s, res.Job, 5, 1, 1)
	})

	t.Run("a class of rate 0 is always covered", func(t *testing.T) {
		id := newAccount(t, s, 0)
		r := jobReq(id, 0, rates{"free": 0, "page": c(1)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"free": 5}))
		if res.Charged != 0 {
			t.Errorf("charged %s for free pages", res.Charged)
		}
		checkJob(t, "free pages", res.Job, jobWant{Status: meter.JobRunning,
			Pages: pages{"free": 5}, Reported: pages{"free": 5}})
		res = mustReport(t, s, rep(id, r.ID, pages{"free": 7, "page": 1}))
		checkJob(t, "a paid page", res.Job, jobWant{Status: meter.JobBlocked,
			Pages: pages{"free": 7}, Reported: pages{"free": 7, "page": 1}})
		if res.Job.Owed() != c(1) || res.Charged != 0 {
			t.Errorf("owed %s charged %s", res.Job.Owed(), res.Charged)
		}
		expect(t, s, id, 0, 0)
	})

	t.Run("completion releases the rest and freezes the job", func(t *testing.T) {
		id := newAccount(t, s, c(20))
		r := jobReq(id, c(10), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		mustReport(t, s, rep(id, r.ID, pages{"page": 4}))
		final := rep(id, r.ID, pages{"page": 6})
		final.Failed, final.Final = 1, meter.JobCompleted
		res := mustReport(t, s, final)
		checkResult(t, "final", res, c(2), c(14), c(14))
		checkJob(t, "completed", res.Job, jobWant{Status: meter.JobCompleted, Debited: c(6),
			Pages: pages{"page": 6}, Reported: pages{"page": 6}, Failed: 1})
		done := res.Job
		sameJob(t, "Job after completion", mustJob(t, s, id, r.ID), done)

		// A report that repeats the final one answers it, charging nothing.
		sleepMillis()
		again, err := s.ReportJob(ctx, final)
		if err != nil {
			t.Fatalf("the final report again: %v", err)
		}
		checkResult(t, "final again", again, 0, c(14), c(14))
		sameJob(t, "final again", again.Job, done)
		for name, rp := range map[string]meter.JobReport{
			"more pages":            {AccountID: id, JobID: r.ID, Done: pages{"page": 7}, Failed: 1, Final: meter.JobCompleted},
			"the same, not final":   {AccountID: id, JobID: r.ID, Done: pages{"page": 6}, Failed: 1},
			"the same, failed":      {AccountID: id, JobID: r.ID, Done: pages{"page": 6}, Failed: 1, Final: meter.JobFailed},
			"more failed":           {AccountID: id, JobID: r.ID, Done: pages{"page": 6}, Failed: 2, Final: meter.JobCompleted},
			"fewer pages, complete": {AccountID: id, JobID: r.ID, Done: pages{"page": 5}, Failed: 1, Final: meter.JobCompleted},
		} {
			_, err := s.ReportJob(ctx, rp)
			if meter.ErrorCode(err) != meter.ECodeJobFinished {
				t.Errorf("%s: %v; want code %s", name, err, meter.ECodeJobFinished)
			}
		}
		_, err = resumeJob(s, id, r.ID)
		wantCode(t, err, meter.ECodeJobFinished)
		_, err = s.CancelJob(ctx, id, r.ID)
		wantCode(t, err, meter.ECodeJobFinished)
		sameJob(t, "Job at the end", mustJob(t, s, id, r.ID), done)
		expect(t, s, id, c(14), 0, entry{"purchase", c(20), c(20), false}, usage(4, 16), usage(2, 14))
		checkJobEntries(t, s, done, 4, 2)
	})

	t.Run("a failed job pays for its done pages", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(5), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		final := rep(id, r.ID, pages{"page": 2})
		final.Failed, final.Final = 3, meter.JobFailed
		res := mustReport(t, s, final)
		checkResult(t, "failed", res, c(2), c(8), c(8))
		checkJob(t, "failed", res.Job, jobWant{Status: meter.JobFailed, Debited: c(2),
			Pages: pages{"page": 2}, Reported: pages{"page": 2}, Failed: 3})
		_, err := s.ReportJob(ctx, rep(id, r.ID, pages{"page": 3}))
		wantCode(t, err, meter.ECodeJobFinished)
		again := mustReport(t, s, final)
		checkResult(t, "failed again", again, 0, c(8), c(8))
		expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false}, usage(2, 8))
	})

	t.Run("a job completed with no pages charges nothing", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(5), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Final: meter.JobCompleted})
		checkResult(t, "completed", res, 0, c(10), c(10))
		checkJob(t, "completed", res.Job, jobWant{Status: meter.JobCompleted})
		expect(t, s, id, c(10), 0, entry{"purchase", c(10), c(10), false})
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

	t.Run("cancel releases the hold and keeps the charges", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(6), rates{"page": c(1)})
		mustCreateJob(t, s, r)
		mustReport(t, s, rep(id, r.ID, pages{"page": 2}))
		res := mustCancel(t, s, id, r.ID)
		checkResult(t, "cancel", res, 0, c(8), c(8))
		checkJob(t, "canceled", res.Job, jobWant{Status: meter.JobCanceled, Debited: c(2),
			Pages: pages{"page": 2}, Reported: pages{"page": 2}})
		sameJob(t, "Job after cancel", mustJob(t, s, id, r.ID), res.Job)
		sleepMillis()
		again := mustCancel(t, s, id, r.ID) // a no-op
		checkResult(t, "cancel again", again, 0, c(8), c(8))
		sameJob(t, "cancel again", again.Job, res.Job)
		_, err := s.ReportJob(ctx, rep(id, r.ID, pages{"page": 3}))
		wantCode(t, err, meter.ECodeJobFinished)
		_, err = resumeJob(s, id, r.ID)
		wantCode(t, err, meter.ECodeJobFinished)
		expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false}, usage(2, 8))
	})

	t.Run("a completed or failed job cannot be canceled", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		for _, final := range []string{meter.JobCompleted, meter.JobFailed} {
			r := jobReq(id, c(2), rates{"page": c(1)})
			mustCreateJob(t, s, r)
			mustReport(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: pages{"page": 1}, Final: final})
			_, err := s.CancelJob(ctx, id, r.ID)
			wantCode(t, err, meter.ECodeJobFinished)
			if j := mustJob(t, s, id, r.ID); j.Status != final {
				t.Errorf("status %s; want %s", j.Status, final)
			}
		}
		expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false}, usage(1, 9), usage(1, 8))
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

// blockedJob creates a job on a new account and reports pages beyond its
// budget: balance 10, rate 4 a page, estimate 6; 3 pages reported, 2
// charged (8: the hold's 6 and 2 of the balance), 1 owed (4).
func blockedJob(t *testing.T, s meter.Store) (acct string, r meter.JobRequest, res meter.JobResult) {
	t.Helper()
	acct = newAccount(t, s, c(10))
	r = jobReq(acct, c(6), rates{"page": c(4)})
	mustCreateJob(t, s, r)
	res = mustReport(t, s, rep(acct, r.ID, pages{"page": 3}))
	checkResult(t, "blocking report", res, c(8), c(2), c(2))
	checkJob(t, "blocking report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(8),
		Pages: pages{"page": 2}, Reported: pages{"page": 3}})
	return acct, r, res
}

func testJobBlockAndResume(t *testing.T, s meter.Store) {
	t.Run("a blocked job is resumed once paid, and no page is charged twice or skipped", func(t *testing.T) {
		id, r, blocked := blockedJob(t, s)
		if blocked.Job.Owed() != c(4) {
			t.Errorf("owed %s, want 4", blocked.Job.Owed())
		}
		expect(t, s, id, c(2), 0, entry{"purchase", c(10), c(10), false}, usage(8, 2))

		// Blocked: counts are recorded, nothing is charged, the expiry
		// stays.
		sleepMillis()
		more := rep(id, r.ID, pages{"page": 5})
		more.Failed = 1
		res := mustReport(t, s, more)
		checkResult(t, "report while blocked", res, 0, c(2), c(2))
		checkJob(t, "report while blocked", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(8),
			Pages: pages{"page": 2}, Reported: pages{"page": 5}, Failed: 1})
		if !res.Job.ExpiresAt.Equal(blocked.Job.ExpiresAt) {
			t.Errorf("a report while blocked moved the expiry from %v to %v", blocked.Job.ExpiresAt, res.Job.ExpiresAt)
		}
		stuck := res.Job

		// Resuming needs the owed 12 and one more page (4): all or nothing.
		_, err := resumeJob(s, id, r.ID)
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(16) || e.Details["available"] != c(2) {
			t.Errorf("details %v; want required 16, available 2", e.Details)
		}
		sameJob(t, "after a refused resume", mustJob(t, s, id, r.ID), stuck)
		expect(t, s, id, c(2), 0, entry{"purchase", c(10), c(10), false}, usage(8, 2))

		grant(t, s, id, c(20), meter.EntryPurchase, "")
		sleepMillis()
		res = mustResume(t, s, id, r.ID)
		// The owed 3 pages (12); then a hold of min(max(6 - 20, 4), 10).
		checkResult(t, "resume", res, c(12), c(10), c(6))
		checkJob(t, "resumed", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(4), Debited: c(20),
			Pages: pages{"page": 5}, Reported: pages{"page": 5}, Failed: 1})
		if !res.Job.ExpiresAt.After(stuck.ExpiresAt) {
			t.Errorf("resume left the expiry at %v (was %v)", res.Job.ExpiresAt, stuck.ExpiresAt)
		}
		resumed := res.Job
		if es := jobEntries(t, s, id, r.ID); len(es) != 2 || es[1].ID != res.EntryID || es[1].Pages != 3 {
			t.Errorf("entries %+v", es)
		}

		// Resuming a running job changes nothing.
		res = mustResume(t, s, id, r.ID)
		checkResult(t, "resume again", res, 0, c(10), c(6))
		sameJob(t, "resume again", res.Job, resumed)

		res = mustReport(t, s, rep(id, r.ID, pages{"page": 6})) // from the new hold
		checkResult(t, "6 pages", res, c(4), c(6), c(6))
		final := rep(id, r.ID, pages{"page": 6})
		final.Final = meter.JobCompleted
		res = mustReport(t, s, final)
		checkResult(t, "completed", res, 0, c(6), c(6))
		checkJob(t, "completed", res.Job, jobWant{Status: meter.JobCompleted, Debited: c(24),
			Pages: pages{"page": 6}, Reported: pages{"page": 6}, Failed: 1})
		expect(t, s, id, c(6), 0, entry{"purchase", c(10), c(10), false}, usage(8, 2),
			entry{"purchase", c(20), c(22), false}, usage(12, 10), usage(4, 6))
		checkJobEntries(t, s, res.Job, 2, 3, 1)
		got, err := s.Usage(ctx, id, meter.Period{})
		want := []meter.RouteUsage{{Route: jobRoute, Requests: 3, Pages: 6, Credits: c(24)}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Usage: %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("pages are charged whole", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, 0, rates{"page": c(3)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 4}))
		checkResult(t, "report", res, c(9), c(1), c(1))
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(9),
			Pages: pages{"page": 3}, Reported: pages{"page": 4}})
		expect(t, s, id, c(1), 0, entry{"purchase", c(10), c(10), false}, usage(9, 1))
		checkJobEntries(t, s, res.Job, 3)
	})

	t.Run("classes are charged in name order", func(t *testing.T) {
		// document (3) before drawing (4): 2 documents, then 1 drawing.
		// In the other order 2 drawings would take 8 and leave 2, which
		// pays no document.
		id := newAccount(t, s, c(10))
		r := jobReq(id, 0, rates{"drawing": c(4), "document": c(3)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"drawing": 2, "document": 2}))
		checkResult(t, "report", res, c(10), 0, 0)
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(10),
			Pages: pages{"document": 2, "drawing": 1}, Reported: pages{"drawing": 2, "document": 2}})
		checkJobEntries(t, s, res.Job, 3)
	})

	t.Run("a class that cannot be paid leaves the budget to the next", func(t *testing.T) {
		// Reading: "for each class in Job.Classes order, the pages ... are
		// charged whole, as many as the budget covers": a class that
		// runs out of budget does not stop the next, cheaper one. alpha
		// (4) takes 1 page of 2, beta (1) the 2 left.
		id := newAccount(t, s, c(6))
		r := jobReq(id, 0, rates{"alpha": c(4), "beta": c(1)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"alpha": 2, "beta": 2}))
		checkResult(t, "report", res, c(6), 0, 0)
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(6),
			Pages: pages{"alpha": 1, "beta": 2}, Reported: pages{"alpha": 2, "beta": 2}})
	})

	t.Run("blocking releases what is left of the hold", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(10), rates{"page": c(4)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 3})) // 2 pages; 2 of the hold left
		checkResult(t, "report", res, c(8), c(2), c(2))
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(8),
			Pages: pages{"page": 2}, Reported: pages{"page": 3}})
		expect(t, s, id, c(2), 0, entry{"purchase", c(10), c(10), false}, usage(8, 2))

		// A page dearer than hold and balance together: nothing charged,
		// the whole hold released.
		id = newAccount(t, s, c(25))
		r = jobReq(id, c(20), rates{"page": c(30)})
		mustCreateJob(t, s, r)
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		checkResult(t, "a dear page", res, 0, c(25), c(25))
		checkJob(t, "a dear page", res.Job, jobWant{Status: meter.JobBlocked,
			Reported: pages{"page": 1}})
		_, err := resumeJob(s, id, r.ID)
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(60) || e.Details["available"] != c(25) {
			t.Errorf("details %v; want required 60, available 25", e.Details)
		}
		expect(t, s, id, c(25), 0, entry{"purchase", c(25), c(25), false})
	})

	t.Run("a job with nothing to spend blocks at once", func(t *testing.T) {
		id := newAccount(t, s, 0)
		r := jobReq(id, 0, rates{"page": c(1)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"page": 1}))
		checkResult(t, "report", res, 0, 0, 0)
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Reported: pages{"page": 1}})
		expect(t, s, id, 0, 0)
	})

	t.Run("resume holds a page at the highest rate", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(2), rates{"document": c(1), "drawing": c(8)})
		mustCreateJob(t, s, r)
		res := mustReport(t, s, rep(id, r.ID, pages{"document": 12}))
		checkResult(t, "report", res, c(10), 0, 0)
		// Owed 2; resuming needs 2 + 8, the drawing's rate.
		grant(t, s, id, c(9), meter.EntryPurchase, "")
		_, err := resumeJob(s, id, r.ID)
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(10) || e.Details["available"] != c(9) {
			t.Errorf("details %v; want required 10, available 9", e.Details)
		}
		grant(t, s, id, c(1), meter.EntryPurchase, "")
		res = mustResume(t, s, id, r.ID) // exactly enough
		checkResult(t, "resume", res, c(2), c(8), 0)
		checkJob(t, "resumed", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(8), Debited: c(12),
			Pages: pages{"document": 12}, Reported: pages{"document": 12}})
		res = mustReport(t, s, rep(id, r.ID, pages{"document": 12, "drawing": 1}))
		checkResult(t, "a drawing from the hold", res, c(8), 0, 0)
		res = mustReport(t, s, rep(id, r.ID, pages{"drawing": 2}))
		checkResult(t, "blocked again", res, 0, 0, 0)
		checkJob(t, "blocked again", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(20),
			Pages: pages{"document": 12, "drawing": 1}, Reported: pages{"document": 12, "drawing": 2}})
		expect(t, s, id, 0, 0, entry{"purchase", c(10), c(10), false}, usage(10, 0),
			entry{"purchase", c(9), c(9), false}, entry{"purchase", c(1), c(10), false}, usage(2, 8), usage(8, 0))
		checkJobEntries(t, s, res.Job, 10, 2, 1)
	})

	t.Run("a final report while blocked is applied by resume", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		r := jobReq(id, c(4), rates{"page": c(4)})
		mustCreateJob(t, s, r)
		final := rep(id, r.ID, pages{"page": 4})
		final.Final = meter.JobCompleted
		res := mustReport(t, s, final)
		checkResult(t, "final report", res, c(8), c(2), c(2))
		checkJob(t, "final report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(8),
			Pages: pages{"page": 2}, Reported: pages{"page": 4}, Final: meter.JobCompleted})
		// With a final status pending, resuming needs the owed pages only.
		_, err := resumeJob(s, id, r.ID)
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(8) || e.Details["available"] != c(2) {
			t.Errorf("details %v; want required 8, available 2", e.Details)
		}
		grant(t, s, id, c(6), meter.EntryPurchase, "")
		res = mustResume(t, s, id, r.ID)
		checkResult(t, "resume", res, c(8), 0, 0)
		checkJob(t, "resumed", res.Job, jobWant{Status: meter.JobCompleted, Debited: c(16),
			Pages: pages{"page": 4}, Reported: pages{"page": 4}})
		done := res.Job
		// Reading: the report that asked for the final status is "the
		// final one" of the job: repeating it answers, charging nothing.
		again, err := s.ReportJob(ctx, final)
		if err != nil {
			t.Fatalf("the final report again: %v", err)
		}
		checkResult(t, "final again", again, 0, 0, 0)
		sameJob(t, "final again", again.Job, done)
		_, err = s.ReportJob(ctx, rep(id, r.ID, pages{"page": 5}))
		wantCode(t, err, meter.ECodeJobFinished)
		_, err = resumeJob(s, id, r.ID)
		wantCode(t, err, meter.ECodeJobFinished)
		expect(t, s, id, 0, 0, entry{"purchase", c(10), c(10), false}, usage(8, 2),
			entry{"purchase", c(6), c(8), false}, usage(8, 0))
		checkJobEntries(t, s, done, 2, 2)
	})

	t.Run("a failure reported while blocked is applied by resume", func(t *testing.T) {
		id, r, _ := blockedJob(t, s)
		final := rep(id, r.ID, pages{"page": 4})
		final.Failed, final.Final = 2, meter.JobFailed
		res := mustReport(t, s, final)
		checkResult(t, "failed while blocked", res, 0, c(2), c(2))
		checkJob(t, "failed while blocked", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(8),
			Pages: pages{"page": 2}, Reported: pages{"page": 4}, Failed: 2, Final: meter.JobFailed})
		grant(t, s, id, c(6), meter.EntryPurchase, "")
		res = mustResume(t, s, id, r.ID)
		checkResult(t, "resume", res, c(8), 0, 0)
		checkJob(t, "failed", res.Job, jobWant{Status: meter.JobFailed, Debited: c(16),
			Pages: pages{"page": 4}, Reported: pages{"page": 4}, Failed: 2})
		expect(t, s, id, 0, 0, entry{"purchase", c(10), c(10), false}, usage(8, 2),
			entry{"purchase", c(6), c(8), false}, usage(8, 0))
	})

	t.Run("a blocked job can be canceled: its owed pages are never charged", func(t *testing.T) {
		id, r, _ := blockedJob(t, s)
		res := mustCancel(t, s, id, r.ID)
		checkResult(t, "cancel", res, 0, c(2), c(2))
		checkJob(t, "canceled", res.Job, jobWant{Status: meter.JobCanceled, Debited: c(8),
			Pages: pages{"page": 2}, Reported: pages{"page": 3}})
		grant(t, s, id, c(20), meter.EntryPurchase, "")
		_, err := resumeJob(s, id, r.ID)
		wantCode(t, err, meter.ECodeJobFinished)
		mustCancel(t, s, id, r.ID)
		expect(t, s, id, c(22), 0, entry{"purchase", c(10), c(10), false}, usage(8, 2),
			entry{"purchase", c(20), c(22), false})
	})

	// Reading: ResumeJob's "available = what the pools have" counts the
	// quota left as well as the balance (Reserve's details name the
	// available balance only).
	t.Run("resume pays from the quota, then the balance", func(t *testing.T) {
		id := quotaAccount(t, s, 0, c(10), 0)
		p := month(0)
		r := jobReq(id, 0, rates{"page": c(4)})
		r.Period = p
		mustCreateJob(t, s, r)
		rp := rep(id, r.ID, pages{"page": 3})
		rp.Period = p
		res := mustReport(t, s, rp) // 2 pages of the quota; 2 of it left
		checkResult(t, "report", res, c(8), 0, 0)
		for _, tc := range []struct{ grant, available meter.Credits }{{0, c(2)}, {c(5), c(7)}} {
			if tc.grant != 0 {
				grant(t, s, id, tc.grant, meter.EntryPurchase, "")
			}
			_, err := s.ResumeJob(ctx, id, r.ID, p, "")
			e := wantCode(t, err, meter.ECodeInsufficientCredits)
			if e.Details["required"] != c(8) || e.Details["available"] != tc.available {
				t.Errorf("details %v; want required 8, available %s", e.Details, tc.available)
			}
		}
		grant(t, s, id, c(1), meter.EntryPurchase, "")
		res = mustResumeIn(t, s, id, r.ID, p) // 2 quota + 2 balance; holds 4 of the balance
		checkResult(t, "resume", res, c(4), c(4), 0)
		checkJob(t, "resumed", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(4), Debited: c(12),
			Pages: pages{"page": 3}, Reported: pages{"page": 3}})
		expectPools(t, s, id, c(4), c(4), qs(10, 10, 0, 0), ovs(0, 0, 0, 0), use{0, c(8), 0, 0}, use{-c(2), c(2), 0, c(4)})
	})

	t.Run("a job blocks at the overage cap and resumes from the balance", func(t *testing.T) {
		id := quotaAccount(t, s, c(2), 0, c(3))
		p := month(0)
		r := jobReq(id, 0, rates{"page": c(1)})
		r.Period = p
		mustCreateJob(t, s, r)
		rp := rep(id, r.ID, pages{"page": 6})
		rp.Period = p
		res := mustReport(t, s, rp) // 2 balance + 3 overage: 5 pages
		checkResult(t, "report", res, c(5), -c(3), -c(3))
		checkJob(t, "report", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(5),
			Pages: pages{"page": 5}, Reported: pages{"page": 6}})
		expectPools(t, s, id, -c(3), 0, qs(0, 0, 0, 0), ovs(3, 3, 0, 0), use{-c(5), 0, c(3), -c(3)})
		_, err := s.ResumeJob(ctx, id, r.ID, p, "")
		wantCode(t, err, meter.ECodeInsufficientCredits)
		grant(t, s, id, c(10), meter.EntryPurchase, "")
		res = mustResumeIn(t, s, id, r.ID, p)
		checkResult(t, "resume", res, c(1), c(6), c(5))
		checkJob(t, "resumed", res.Job, jobWant{Status: meter.JobRunning, Reserved: c(1), Debited: c(6),
			Pages: pages{"page": 6}, Reported: pages{"page": 6}})
		expectPools(t, s, id, c(6), c(1), qs(0, 0, 0, 0), ovs(3, 3, 0, 0),
			use{-c(5), 0, c(3), -c(3)}, use{-c(1), 0, 0, c(6)})
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
		mustReport(t, s, rep(id, r.ID, pages{"page": 4})) // while blocked: no second event
		e := drain(t, s, id, meter.EventJobBlocked)[0]
		if e.JobID != r.ID || e.UpstreamJobID != "" || e.AccountID != id || e.Balance != c(1) ||
			e.Attempts != 0 || time.Since(e.CreatedAt).Abs() > time.Minute || !meter.LedgerEntryID.MatchString(e.ID) {
			t.Errorf("event %+v", e)
		}
		if b, err := e.Payload(); err != nil || !strings.Contains(string(b), `"job_id":"`+r.ID+`"`) {
			t.Errorf("payload %s, %v", b, err)
		}

		_, err := resumeJob(s, id, r.ID) // refused: owed 4 + 2, available 1
		wantCode(t, err, meter.ECodeInsufficientCredits)
		drain(t, s, id)
		grant(t, s, id, c(10), meter.EntryPurchase, "")
		res = mustResume(t, s, id, r.ID) // pays 4: balance 7, holds 2
		checkResult(t, "resume", res, c(4), c(7), c(5))
		drain(t, s, id)
		res = mustReport(t, s, rep(id, r.ID, pages{"page": 10})) // 6 more pages, 7 to spend: 3
		checkResult(t, "blocking again", res, c(6), c(1), c(1))
		checkJob(t, "blocking again", res.Job, jobWant{Status: meter.JobBlocked, Debited: c(14),
			Pages: pages{"page": 7}, Reported: pages{"page": 10}})
		if e := drain(t, s, id, meter.EventJobBlocked)[0]; e.JobID != r.ID || e.Balance != c(1) {
			t.Errorf("second event %+v", e)
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

	t.Run("a job's charge crosses the low-balance threshold", func(t *testing.T) {
		id := lowBalanceAccount(t, s, c(10), c(5))
		r := jobReq(id, c(4), rates{"page": c(1)})
		mustCreateJob(t, s, r) // a hold moves no balance
		drain(t, s, id)
		mustReport(t, s, rep(id, r.ID, pages{"page": 6}))
		if e := drain(t, s, id, meter.EventLowBalance)[0]; e.Balance != c(4) || e.Threshold != c(5) {
			t.Errorf("event %+v", e)
		}
	})

	t.Run("a job's charge exhausts the quota", func(t *testing.T) {
		id := quotaAccount(t, s, c(5), c(10), 0)
		p := month(0)
		r := jobReq(id, 0, rates{"page": c(1)})
		r.Period = p
		mustCreateJob(t, s, r)
		rp := rep(id, r.ID, pages{"page": 10})
		rp.Period = p
		mustReport(t, s, rp)
		e := drain(t, s, id, meter.EventQuotaExhausted)[0]
		if e.Limit != c(10) || e.Used != c(10) || e.Balance != c(5) || !e.ResetsAt.Equal(p.End) {
			t.Errorf("event %+v", e)
		}
	})
}

// jobCounts are the cumulative counts of one job's upstream: they only
// grow, so a report of them read at any time is a true cumulative report,
// however late it arrives.
type jobCounts struct {
	done   map[string]*atomic.Int64
	failed atomic.Int64
}

func newJobCounts(r rates) *jobCounts {
	jc := &jobCounts{done: map[string]*atomic.Int64{}}
	for cl := range r {
		jc.done[cl] = new(atomic.Int64)
	}
	return jc
}

func (jc *jobCounts) snapshot() pages {
	p := pages{}
	for cl, n := range jc.done {
		p[cl] = int(n.Load())
	}
	return p
}

// raceJobs reports on jobs from several goroutines each (one more page of
// a random class, then the counts so far), while other goroutines reserve
// and commit or void ordinary requests, grant credits now and then and
// resume the jobs, and a watcher checks the account. It returns the final
// counts of each job.
func raceJobs(t *testing.T, s meter.Store, acct string, p meter.Period, jobs []meter.JobRequest,
	watch func(a meter.Account) error) []*jobCounts {
	counts := make([]*jobCounts, len(jobs))
	for i, j := range jobs {
		counts[i] = newJobCounts(j.Rates)
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := s.Account(ctx, acct)
			if err == nil {
				err = watch(a)
			}
			if err != nil {
				t.Errorf("account %+v: %v", a, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for i, j := range jobs {
		classes := meter.Job{Rates: j.Rates}.Classes()
		for range 3 {
			wg.Go(func() {
				for range 12 {
					jc := counts[i]
					jc.done[classes[rand.IntN(len(classes))]].Add(1)
					if rand.IntN(4) == 0 {
						jc.failed.Add(1)
					}
					r := meter.JobReport{AccountID: acct, JobID: j.ID, Done: jc.snapshot(), Failed: int(jc.failed.Load()),
						RequestID: newID("rq"), Period: p}
					if _, err := s.ReportJob(ctx, r); err != nil {
						t.Errorf("ReportJob(%s): %v", j.ID, err)
						return
					}
				}
			})
		}
	}
	for range 3 {
		wg.Go(func() {
			for range 10 {
				rid := newRID()
				amount := c(0.5) * meter.Credits(1+rand.IntN(3))
				if _, err := reserveIn(s, acct, rid, amount, p, time.Minute); err != nil {
					switch meter.ErrorCode(err) {
					case meter.ECodeInsufficientCredits, meter.ECodeQuotaExceeded, meter.ECodeOverageLimitReached:
					default:
						t.Error(err)
					}
					continue
				}
				var err error
				if rand.IntN(3) == 0 {
					_, err = s.Void(ctx, acct, rid)
				} else {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: acct, ReservationID: rid,
						Amount: meter.Credits(rand.Int64N(int64(amount) + 1)), Route: "/convert", Pages: 1})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 6 {
			time.Sleep(3 * time.Millisecond)
			if _, err := s.Grant(ctx, meter.Grant{AccountID: acct, Amount: c(2), Type: meter.EntryPurchase}); err != nil {
				t.Error(err)
			}
			for _, j := range jobs {
				if _, err := s.ResumeJob(ctx, acct, j.ID, p, ""); err != nil &&
					meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
					t.Errorf("ResumeJob(%s): %v", j.ID, err)
				}
			}
		}
	})
	wg.Wait()
	close(stop)
	<-watched
	return counts
}

// settleJobs checks each job after a race, then pays for what is owed and
// completes it with its final counts: every page reported is charged
// exactly once.
func settleJobs(t *testing.T, s meter.Store, acct string, p meter.Period, jobs []meter.JobRequest, counts []*jobCounts) {
	t.Helper()
	var held meter.Credits
	for i, r := range jobs {
		j := mustJob(t, s, acct, r.ID)
		checkJobInvariants(t, "after the race", j)
		want := counts[i].snapshot()
		if !reflect.DeepEqual(nonzero(j.Reported), nonzero(want)) || j.Failed != int(counts[i].failed.Load()) ||
			(j.Status != meter.JobRunning && j.Status != meter.JobBlocked) {
			t.Errorf("after the race: job %+v; reported %v, %d failed", j, want, counts[i].failed.Load())
		}
		var sum meter.Credits
		n := 0
		for _, e := range jobEntries(t, s, acct, r.ID) {
			sum += charged(e)
			n += e.Pages
		}
		if sum != j.Debited || n != j.SuccessfulPages() {
			t.Errorf("after the race: job %s debited %s for %d pages; its entries %s for %d", j.ID, j.Debited, j.SuccessfulPages(), sum, n)
		}
		held += j.Reserved
	}
	a, err := s.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	// Every request was committed or voided: what is reserved is the jobs'.
	if a.Reserved+a.Quota.Reserved != held {
		t.Errorf("after the race: reserved %s + quota %s; the jobs hold %s", a.Reserved, a.Quota.Reserved, held)
	}
	checkInvariant(t, oldestFirst(t, s, acct), a.Balance)

	grant(t, s, acct, c(1000), meter.EntryPurchase, "")
	var pagesAll int64
	var debited meter.Credits
	for i, r := range jobs {
		final := meter.JobReport{AccountID: acct, JobID: r.ID, Done: counts[i].snapshot(),
			Failed: int(counts[i].failed.Load()), Final: meter.JobCompleted, Period: p}
		res := mustReport(t, s, final)
		if res.Job.Status == meter.JobBlocked {
			res = mustResumeIn(t, s, acct, r.ID, p)
		}
		j := res.Job
		var cost meter.Credits
		for cl, n := range final.Done {
			cost += meter.Credits(n) * r.Rates[cl]
		}
		checkJob(t, "settled", j, jobWant{Status: meter.JobCompleted, Debited: cost, Pages: final.Done,
			Reported: final.Done, Failed: final.Failed})
		var sum meter.Credits
		n := 0
		for _, e := range jobEntries(t, s, acct, r.ID) {
			sum += charged(e)
			n += e.Pages
		}
		if sum != cost || n != j.SuccessfulPages() {
			t.Errorf("settled: job %s: entries charged %s for %d pages; want %s for %d", j.ID, sum, n, cost, j.SuccessfulPages())
		}
		pagesAll += int64(n)
		debited += cost
	}
	a, err = s.Account(ctx, acct)
	if err != nil || a.Reserved != 0 || a.Quota.Reserved != 0 || a.Overage.Reserved != 0 {
		t.Errorf("settled: account %+v, %v", a, err)
	}
	es := oldestFirst(t, s, acct)
	checkInvariant(t, es, a.Balance)
	var used meter.Credits
	for _, e := range es {
		if e.Type == meter.EntryUsage {
			used += charged(e)
		}
	}
	if a.TotalUsed != used {
		t.Errorf("settled: total used %s; the ledger's usage %s", a.TotalUsed, used)
	}
	us, err := s.Usage(ctx, acct, p)
	if err != nil {
		t.Fatal(err)
	}
	var routed meter.Credits
	for _, u := range us {
		routed += u.Credits
		if u.Route == jobRoute && (u.Pages != pagesAll || u.Credits != debited) {
			t.Errorf("settled: usage of %s %+v; the jobs charged %s for %d pages", jobRoute, u, debited, pagesAll)
		}
	}
	if routed != used {
		t.Errorf("settled: usage by route %+v sums to %s; the ledger's usage %s", us, routed, used)
	}
}

func testJobsConcurrent(t *testing.T, s meter.Store) {
	t.Run("two jobs and requests share a small balance", func(t *testing.T) {
		id := newAccount(t, s, c(30))
		jobs := []meter.JobRequest{
			jobReq(id, c(5), rates{"page": c(1)}),
			jobReq(id, c(6), rates{"document": c(0.5), "drawing": c(3)}),
		}
		for _, r := range jobs {
			mustCreateJob(t, s, r)
		}
		counts := raceJobs(t, s, id, meter.Period{}, jobs, func(a meter.Account) error {
			if a.Balance < 0 || a.Reserved < 0 || a.Available < 0 {
				return fmt.Errorf("below zero")
			}
			return nil
		})
		settleJobs(t, s, id, meter.Period{}, jobs, counts)
	})

	t.Run("two jobs and requests share quota, balance and overage", func(t *testing.T) {
		id := quotaAccount(t, s, c(3), c(6), c(4))
		p := month(0)
		jobs := []meter.JobRequest{
			jobReq(id, c(2), rates{"page": c(1)}),
			jobReq(id, c(4), rates{"page": c(2), "scan": c(0.5)}),
		}
		for _, r := range jobs {
			r.Period = p
			mustCreateJob(t, s, r)
		}
		counts := raceJobs(t, s, id, p, jobs, func(a meter.Account) error {
			if a.Quota.Used+a.Quota.Reserved > c(6) || a.Overage.Used+a.Overage.Reserved > c(4) ||
				a.Available < -c(4) || a.Balance < -c(4) || a.Reserved < 0 || a.Quota.Reserved < 0 {
				return fmt.Errorf("beyond the pools")
			}
			return nil
		})
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var quota, overage meter.Credits
		for _, e := range oldestFirst(t, s, id) {
			quota, overage = quota+e.Quota, overage+e.Overage
		}
		if a.Quota.Used != quota || a.Overage.Used != overage || a.Quota.Used > c(6) || a.Overage.Used > c(4) {
			t.Errorf("quota %+v overage %+v; the ledger's %s, %s", a.Quota, a.Overage, quota, overage)
		}
		if t.Failed() {
			logLedger(t, s, id)
		}
		settleJobs(t, s, id, p, jobs, counts)
	})
}

// testAccountUpdatedAt: Account.UpdatedAt is when the settings last
// changed; Settings.RetentionDays is kept like every setting.
func testAccountUpdatedAt(t *testing.T, s meter.Store) {
	id := newID("upd")
	a, err := s.CreateAccount(ctx, id, c(10))
	if err != nil {
		t.Fatal(err)
	}
	created := a.UpdatedAt
	if created.IsZero() || created.Before(a.CreatedAt) || created.Sub(a.CreatedAt) > time.Second {
		t.Errorf("created at %v, updated at %v", a.CreatedAt, created)
	}
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(created) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Account: %+v, %v", got, err)
	}
	// Money moves, settings do not: UpdatedAt stays.
	sleepMillis()
	grant(t, s, id, c(1), meter.EntryPurchase, "")
	debit(t, s, id, c(2))
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(created) {
		t.Errorf("after a grant and a debit: updated at %v, %v; want %v", got.UpdatedAt, err, created)
	}

	last := created
	for i, st := range []meter.Settings{{RetentionDays: 7}, {RetentionDays: 7}, {}} {
		sleepMillis()
		a, err := s.UpdateSettings(ctx, id, st)
		if err != nil {
			t.Fatal(err)
		}
		if !a.UpdatedAt.After(last) || a.UpdatedAt.Before(a.CreatedAt) || time.Since(a.UpdatedAt).Abs() > time.Minute ||
			!reflect.DeepEqual(a.Settings, st) {
			t.Errorf("update %d: updated at %v (before: %v), settings %+v; want %+v", i, a.UpdatedAt, last, a.Settings, st)
		}
		got, err := s.Account(ctx, id)
		if err != nil || !got.UpdatedAt.Equal(a.UpdatedAt) || !reflect.DeepEqual(got.Settings, st) || got.Settings.RetentionDays != st.RetentionDays {
			t.Errorf("update %d: Account %+v, %v", i, got, err)
		}
		last = a.UpdatedAt
	}
	// A refused update changes nothing.
	sleepMillis()
	_, err = s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: -1})
	wantCode(t, err, meter.ECodeInvalid)
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(last) {
		t.Errorf("after a refused update: updated at %v, %v; want %v", got.UpdatedAt, err, last)
	}
}
