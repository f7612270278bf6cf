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
// unknown jobs), input checks, the job.blocked event's fields, expiry by
// the store's clock (jobs_expiry.go) and concurrency (jobs_concurrent.go).
// Where
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
