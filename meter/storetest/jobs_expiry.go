package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

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
		// A TTL long enough for a loaded -race run to resume well before
		// the blocked job's expiry (500 ms failed at load 15).
		ttl := 1500 * time.Millisecond
		id := newAccount(t, s, c(2))
		r := jobReq(id, 0, rates{"page": c(1)})
		r.TTL = ttl
		mustCreateJob(t, s, r)
		blocked := mustReport(t, s, rep(id, r.ID, pages{"page": 3})).Job
		grant(t, s, id, c(10), meter.EntryPurchase, "")
		time.Sleep(600 * time.Millisecond)
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
