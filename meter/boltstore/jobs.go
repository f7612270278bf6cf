package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// Long-running jobs (meter.JobStore). Each account bucket gets, with its
// first job:
//
//	jobs/    job id -> record (JSON, see jobRecord)
//	jobup/   upstream job id -> job id
//
// A job's hold is a reservation of the account, "job:" + job id, marked
// Job (Commit and Void do not see it): Account.Reserved counts it, and
// the sweep expires it at the job's expiry. Unlike a request's hold it is
// in the file (a job blocks and resumes across restarts). Once
// blocked or finished, the hold is a settled (voided) record, purged after
// the store's Retain like the others.
//
// The job's own timer, member "j:" + id in timers/, is due at its expiry
// while it runs or is blocked, then at the purge of its finished record
// (FinishedAt + the job's Retain). Every write transaction on the account
// sweeps due timers first (see sweep), so expiry is written and finished
// records are purged there; Job and JobByUpstream sweep before reading when
// a timer is due, as Account does.

var (
	bJobs  = []byte("jobs")
	bJobUp = []byte("jobup")
)

// jobRecord is a job as stored: meter.JobRecord, the shape both stores
// keep (records of this store's older shape still read, see its
// UnmarshalJSON).
type jobRecord = meter.JobRecord

func holdID(id string) string { return "job:" + id }

// msCeil is d in whole milliseconds, rounded up (as Reserve's TTL).
func msCeil(d time.Duration) int64 {
	if d > math.MaxInt64-time.Millisecond {
		return d.Milliseconds() // the sum would overflow
	}
	return (d + time.Millisecond - 1).Milliseconds()
}

// jobBucket is one of the account's job buckets, created on first write
// (accounts older than jobs have none).
func (o *op) jobBucket(name []byte) (*bolt.Bucket, error) {
	o.dirty = true
	return o.b.CreateBucketIfNotExists(name)
}

func (o *op) loadJob(id string) (*jobRecord, error) {
	b := o.sub(bJobs)
	if b == nil {
		return nil, nil
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	j := new(jobRecord)
	if err := json.Unmarshal(raw, j); err != nil {
		return nil, fmt.Errorf("boltstore: bad job record %s: %w", id, err)
	}
	if j.Pages == nil {
		j.Pages = map[string]int{}
	}
	if j.Reported == nil {
		j.Reported = map[string]int{}
	}
	return j, nil
}

func (o *op) saveJob(id string, j *jobRecord) error {
	raw, err := encode(j)
	if err != nil {
		return err
	}
	b, err := o.jobBucket(bJobs)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), raw)
}

// setJobTimer moves the job's timer to due.
func (o *op) setJobTimer(id string, j *jobRecord, due int64) error {
	if j.DueMS != 0 {
		if err := o.del(bTimers, timerKey(j.DueMS, "j:"+id)); err != nil {
			return err
		}
	}
	j.DueMS = due
	return o.put(bTimers, timerKey(due, "j:"+id), nil)
}

// jobTimer handles the due timer k of job id (from sweep): a running or
// blocked job expires; a finished one whose Retain has passed is purged.
func (o *op) jobTimer(id string, k []byte) error {
	if err := o.del(bTimers, k); err != nil {
		return err
	}
	j, err := o.loadJob(id)
	if err != nil || j == nil {
		return err
	}
	if j.DueMS != 0 && !bytes.Equal(timerKey(j.DueMS, "j:"+id), k) {
		return nil // a stale timer: the job's own is elsewhere
	}
	j.DueMS = 0
	if !j.Finished() {
		if err := o.expireJob(id, j); err != nil {
			return err
		}
	}
	if j.FinishedMS+j.RetainMS > o.now {
		return nil
	}
	// Purged: the id may be used again, the upstream id too.
	if j.DueMS != 0 { // set by expireJob just now
		if err := o.del(bTimers, timerKey(j.DueMS, "j:"+id)); err != nil {
			return err
		}
	}
	if j.UpstreamID != "" {
		if b := o.sub(bJobUp); b != nil && string(b.Get([]byte(j.UpstreamID))) == id {
			if err := o.del(bJobUp, []byte(j.UpstreamID)); err != nil {
				return err
			}
		}
	}
	return o.del(bJobs, []byte(id))
}

// expireJob writes the expiry of a running or blocked job whose ExpiresAt
// passed: its hold is released, its owed pages are never charged.
func (o *op) expireJob(id string, j *jobRecord) error {
	if h, err := o.loadRes(holdID(id)); err != nil {
		return err
	} else if h != nil && h.Job && h.State == held {
		if err := o.expire(holdID(id), h); err != nil {
			return err
		}
	}
	j.Status, j.FinishedMS, j.UpdatedMS = meter.JobExpired, j.ExpiresMS, j.ExpiresMS
	return o.finishJobTimer(id, j)
}

// finishJobTimer saves a finished job with its purge timer.
func (o *op) finishJobTimer(id string, j *jobRecord) error {
	if err := o.setJobTimer(id, j, j.FinishedMS+j.RetainMS); err != nil {
		return err
	}
	return o.saveJob(id, j)
}

// endJob finishes a running or blocked job as status now, releasing what
// is left of its hold.
func (o *op) endJob(id string, j *jobRecord, status string) error {
	if err := o.releaseHold(id); err != nil {
		return err
	}
	j.Status, j.FinishedMS, j.UpdatedMS = status, o.now, o.now
	return o.finishJobTimer(id, j)
}

// releaseHold settles the job's hold, if held, as voided: what is left of
// it goes back to the pools.
func (o *op) releaseHold(id string) error {
	rid := holdID(id)
	h, err := o.loadRes(rid)
	if err != nil || h == nil || !h.Job || h.State != held {
		return err
	}
	h.State = voided
	o.a.Release(h.Hold)
	o.dirty = true
	return o.finish(rid, h)
}

// job is the meter.Job of a record, read at o.now: a running or blocked
// job whose expiry passed reads as expired even before a write says so.
func (o *op) job(id string, j *jobRecord) (meter.Job, error) {
	out := j.Job(o.id, id)
	if !j.Finished() && j.ExpiresMS <= o.now {
		out.Status, out.FinishedAt, out.UpdatedAt = meter.JobExpired, msTime(j.ExpiresMS), msTime(j.ExpiresMS)
	}
	if out.Status == meter.JobRunning {
		h, err := o.loadRes(holdID(id))
		if err != nil {
			return meter.Job{}, internalErr(err)
		}
		if h != nil && h.Job && h.State == held && h.Exp > o.now {
			out.Reserved = meter.Credits(h.Amount())
		}
	}
	return out, nil
}

func (o *op) jobResult(id string, j *jobRecord, charged int64, entryID string) (meter.JobResult, error) {
	// What the call released of an ended grant leaves before the answer's
	// balance, as Commit's does (and redisstore's job scripts).
	if err := o.endLots(); err != nil {
		return meter.JobResult{}, internalErr(err)
	}
	jv, err := o.job(id, j)
	if err != nil {
		return meter.JobResult{}, err
	}
	return meter.JobResult{Job: jv, Charged: meter.Credits(charged), EntryID: entryID,
		Balance: meter.Credits(o.a.Balance), Available: meter.Credits(o.a.Balance - o.a.Reserved)}, nil
}

func jobNotFound(id string) error {
	return meter.Errorf(meter.ECodeJobNotFound, "job %q not found", id)
}

// liveJob loads a job that must exist; a running or blocked one whose
// expiry passed is expired now (the sweep normally did it already).
func (o *op) liveJob(id string) (*jobRecord, error) {
	j, err := o.loadJob(id)
	if err != nil {
		return nil, internalErr(err)
	}
	if j == nil {
		return nil, jobNotFound(id)
	}
	if !j.Finished() && j.ExpiresMS <= o.now {
		if err := o.expireJob(id, j); err != nil {
			return nil, internalErr(err)
		}
	}
	return j, nil
}

// CreateJob records a running job and holds its estimate from the pools
// (quota, balance, overage), refused as Reserve refuses.
func (s *Store) CreateJob(ctx context.Context, r meter.JobRequest) (meter.JobResult, error) {
	ttl, retain := msCeil(r.TTL), msCeil(r.RetainOrDefault())
	var res meter.JobResult
	err := s.update(ctx, r.AccountID, func(o *op) error {
		a := o.a
		o.rollPeriod(r.Period)
		prev, err := o.loadJob(r.ID)
		if err != nil {
			return internalErr(err)
		}
		rid := holdID(r.ID)
		h, err := o.loadRes(rid)
		if err != nil {
			return internalErr(err)
		}
		// A settled hold of a purged job may stay longer than its job
		// (the store's Retain): it is reused; a Reserve's is not.
		if prev != nil || (h != nil && (!h.Job || h.State == held)) {
			return invalid("job id already used")
		}
		amount := int64(r.Estimate)
		hold, err := a.Reserve(amount, 0)
		if err != nil {
			return err
		}
		o.dirty = true
		if h == nil {
			h = &reservation{}
		}
		due := h.Due
		*h = reservation{State: held, Hold: hold, Exp: o.now + ttl, Due: due, Job: true}
		if err := o.setTimer(rid, h, h.Exp); err != nil {
			return internalErr(err)
		}
		if err := o.saveRes(rid, h); err != nil {
			return internalErr(err)
		}
		j := &jobRecord{Route: r.Route, Status: meter.JobRunning, Rates: make(map[string]int64, len(r.Rates)),
			EstPages: r.EstimatedPages, Estimate: amount, Pages: map[string]int{}, Reported: map[string]int{},
			CreatedMS: o.now, UpdatedMS: o.now, ExpiresMS: o.now + ttl, TTLMS: ttl, RetainMS: retain}
		for c, rate := range r.Rates {
			j.Rates[c] = int64(rate)
		}
		if err := o.setJobTimer(r.ID, j, j.ExpiresMS); err != nil {
			return internalErr(err)
		}
		if err := o.saveJob(r.ID, j); err != nil {
			return internalErr(err)
		}
		res, err = o.jobResult(r.ID, j, 0, "")
		return err
	})
	if err != nil {
		return meter.JobResult{}, err
	}
	return res, nil
}

// Job reads a job. It reads without writing unless a timer of the account
// is due, in which case it sweeps first (writing expiries and purges).
func (s *Store) Job(ctx context.Context, account, id string) (meter.Job, error) {
	return s.readJob(ctx, account, func(o *op) (string, error) { return id, nil })
}

// JobByUpstream finds a job by the upstream's id of it.
func (s *Store) JobByUpstream(ctx context.Context, account, upstreamID string) (meter.Job, error) {
	return s.readJob(ctx, account, func(o *op) (string, error) {
		if b := o.sub(bJobUp); b != nil {
			if id := b.Get([]byte(upstreamID)); id != nil {
				return string(id), nil
			}
		}
		return "", jobNotFound(upstreamID)
	})
}

// readJob reads the job that find names, in a read transaction unless a
// timer is due.
func (s *Store) readJob(ctx context.Context, account string, find func(o *op) (string, error)) (meter.Job, error) {
	var out meter.Job
	read := func(o *op) error {
		id, err := find(o)
		if err != nil {
			return err
		}
		j, err := o.loadJob(id)
		if err != nil {
			return internalErr(err)
		}
		if j == nil {
			return jobNotFound(id)
		}
		out, err = o.job(id, j)
		return err
	}
	sweep := false
	err := s.view(ctx, account, func(o *op) error {
		if sweep = o.due(); sweep {
			return nil
		}
		return read(o)
	})
	if err != nil || !sweep {
		return out, err
	}
	return out, s.update(ctx, account, read)
}

// AttachJob records the upstream's id of a job, whatever its status (the
// upstream's answer may come after the job was canceled). Attaching the
// job's id again is a no-op; another id, or one another job has, is
// ECodeInvalid.
func (s *Store) AttachJob(ctx context.Context, account, id, upstreamID string) error {
	return s.update(ctx, account, func(o *op) error {
		j, err := o.loadJob(id)
		if err != nil {
			return internalErr(err)
		}
		switch {
		case j == nil:
			return jobNotFound(id)
		case j.UpstreamID == upstreamID:
			return nil
		case j.UpstreamID != "":
			return invalid("job %q already has upstream id %q", id, j.UpstreamID)
		}
		if b := o.sub(bJobUp); b != nil {
			if other := b.Get([]byte(upstreamID)); other != nil && string(other) != id {
				return invalid("upstream id %q belongs to another job", upstreamID)
			}
		}
		j.UpstreamID, j.UpdatedMS = upstreamID, o.now
		b, err := o.jobBucket(bJobUp)
		if err == nil {
			err = b.Put([]byte(upstreamID), []byte(id))
		}
		if err == nil {
			err = o.saveJob(id, j)
		}
		if err != nil {
			return internalErr(err)
		}
		return nil
	})
}

// charged is the outcome of chargeJob.
type charged struct {
	credits int64
	pages   int
	entry   string
	blocked bool // some owed page could not be covered
}

// chargeJob charges the job's owed pages, class by class in name order,
// as many whole pages as the budget covers (the hold h, if held, then the
// pools; ledger.PagesWithin and ChargeJob). One usage entry for it all,
// counted in the stored period's usage by route; events as Commit raises
// them.
func (o *op) chargeJob(id string, j *jobRecord, h *reservation, requestID string) (charged, error) {
	a := o.a
	var hold *ledger.Hold
	if h != nil && h.Job && h.State == held {
		hold = &h.Hold
	}
	names := j.Classes()
	classes := make([]ledger.Pages, len(names))
	for i, c := range names {
		classes[i] = ledger.Pages{Rate: j.Rates[c], Owed: int64(j.Reported[c] - j.Pages[c])}
	}
	n, x, blocked := ledger.PagesWithin(a.JobBudget(hold), classes)
	out := charged{blocked: blocked}
	for i, c := range names {
		if classes[i].Owed > 0 { // the record as before: no entry for a class never owed
			j.Pages[c] += int(n[i])
			out.pages += int(n[i])
		}
	}
	if out.pages == 0 {
		return out, nil
	}
	ch, ok := a.ChargeJob(hold, x)
	if !ok {
		return out, fmt.Errorf("boltstore: job %s: pools short of the budget", id) // cannot happen
	}
	j.Debited += x
	o.dirty = true
	if err := o.emit(ch.Events); err != nil {
		return out, err
	}
	if ch.Entry != nil {
		e := modelEntry(*ch.Entry)
		e.Route, e.RequestID, e.ReservationID, e.Pages, e.JobID, e.UpstreamJobID = j.Route, requestID, id, out.pages, id, j.UpstreamID
		eid, err := o.appendEntry(e)
		if err != nil {
			return out, err
		}
		out.entry = eid.String()
	}
	out.credits = x
	return out, o.count(a.Period, j.Route, int64(out.pages), x)
}

// refresh moves a running job's expiry, and its hold's, to now + TTL.
func (o *op) refresh(id string, j *jobRecord, h *reservation) error {
	j.ExpiresMS = o.now + j.TTLMS
	if err := o.setJobTimer(id, j, j.ExpiresMS); err != nil {
		return err
	}
	if h == nil || !h.Job || h.State != held {
		return nil
	}
	h.Exp = j.ExpiresMS
	return o.setTimer(holdID(id), h, h.Exp)
}

// ReportJob records a cumulative report and charges the newly done pages
// (see meter.JobStore).
func (s *Store) ReportJob(ctx context.Context, r meter.JobReport) (meter.JobResult, error) {
	var res meter.JobResult
	err := s.update(ctx, r.AccountID, func(o *op) error {
		o.rollPeriod(r.Period)
		j, err := o.liveJob(r.JobID)
		if err != nil {
			return err
		}
		// The report's classes first, whatever the job's status (as
		// redisstore's job_report.lua).
		jv, err := o.job(r.JobID, j)
		if err != nil {
			return err
		}
		if err := r.ValidateFor(jv); err != nil {
			return err
		}
		switch {
		case j.Status == meter.JobExpired:
			return meter.Errorf(meter.ECodeJobExpired, "job %q expired", r.JobID)
		case j.Finished() && repeatsFinal(r, j):
			// The final report again (a retry): answered, nothing recorded.
			res, err = o.jobResult(r.JobID, j, 0, "")
			return err
		case j.Finished():
			return meter.Errorf(meter.ECodeJobFinished, "job %q is %s", r.JobID, j.Status)
		}
		j.Failed = max(j.Failed, r.Failed)
		for c, n := range r.Done {
			j.Reported[c] = max(j.Reported[c], n)
		}
		j.UpdatedMS = o.now
		var ch charged
		if j.Status == meter.JobBlocked {
			if r.Final != "" {
				j.Final = r.Final
			}
		} else {
			rid := holdID(r.JobID)
			h, err := o.loadRes(rid)
			if err != nil {
				return internalErr(err)
			}
			if ch, err = o.chargeJob(r.JobID, j, h, r.RequestID); err != nil {
				return internalErr(err)
			}
			if ch.pages > 0 {
				err = o.refresh(r.JobID, j, h)
				if err == nil && h != nil && h.Job && h.State == held {
					err = o.saveRes(rid, h)
				}
				if err != nil {
					return internalErr(err)
				}
			}
			switch {
			case ch.blocked:
				j.Status, j.Final = meter.JobBlocked, r.Final
				err := o.releaseHold(r.JobID)
				if err == nil {
					err = o.emitEvent(&event{Type: meter.EventJobBlocked, JobID: r.JobID, UpstreamJobID: j.UpstreamID})
				}
				if err != nil {
					return internalErr(err)
				}
			case r.Final != "":
				if err := o.endJob(r.JobID, j, r.Final); err != nil {
					return internalErr(err)
				}
				res, err = o.jobResult(r.JobID, j, ch.credits, ch.entry)
				return err
			}
		}
		if err := o.saveJob(r.JobID, j); err != nil {
			return internalErr(err)
		}
		res, err = o.jobResult(r.JobID, j, ch.credits, ch.entry)
		return err
	})
	if err != nil {
		return meter.JobResult{}, err
	}
	return res, nil
}

// repeatsFinal reports whether r repeats the final report of a finished
// job: its status, its failed count and the counts of the classes it
// names (as redisstore's job_report.lua). Any other report to a finished
// job is refused, so that pages done after the end are not silently lost.
func repeatsFinal(r meter.JobReport, j *jobRecord) bool {
	if r.Final == "" || r.Final != j.Status || r.Failed != j.Failed {
		return false
	}
	for c, n := range r.Done {
		if n != j.Reported[c] {
			return false
		}
	}
	return true
}

// ResumeJob unblocks a blocked job, all or nothing (see meter.JobStore):
// it pays the owed pages from the pools and, unless a Final is pending,
// holds again min(max(Estimate - Debited, highest rate), what is left).
// Resuming a running job changes nothing.
func (s *Store) ResumeJob(ctx context.Context, account, id string, p meter.Period, requestID string) (meter.JobResult, error) {
	var res meter.JobResult
	err := s.update(ctx, account, func(o *op) error {
		a := o.a
		o.rollPeriod(p)
		j, err := o.liveJob(id)
		if err != nil {
			return err
		}
		switch j.Status {
		case meter.JobRunning:
			res, err = o.jobResult(id, j, 0, "")
			return err
		case meter.JobExpired:
			return meter.Errorf(meter.ECodeJobExpired, "job %q expired", id)
		case meter.JobBlocked:
		default:
			return meter.Errorf(meter.ECodeJobFinished, "job %q is %s", id, j.Status)
		}
		required := j.Owed()
		if j.Final == "" {
			required += j.MaxRate()
		}
		if avail := a.Available(); avail < required {
			return ledger.Insufficient(meter.Credits(required), meter.Credits(avail))
		}
		ch, err := o.chargeJob(id, j, nil, requestID)
		if err != nil {
			return internalErr(err)
		}
		if ch.blocked {
			return internalErr(fmt.Errorf("boltstore: job %s: resume left pages owed", id)) // cannot happen
		}
		if final := j.Final; final != "" {
			j.Final = "" // applied (as redisstore's)
			if err := o.endJob(id, j, final); err != nil {
				return internalErr(err)
			}
			res, err = o.jobResult(id, j, ch.credits, ch.entry)
			return err
		}
		hold := a.HoldAll(min(max(j.Estimate-j.Debited, j.MaxRate()), a.Available()))
		rid := holdID(id)
		h, err := o.loadRes(rid)
		if err != nil {
			return internalErr(err)
		}
		if h != nil && !h.Job {
			// A Reserve took the id once the old hold record was purged.
			return internalErr(fmt.Errorf("boltstore: job %s: reservation %s is not the job's", id, rid))
		}
		due := int64(0)
		if h != nil {
			due = h.Due // the settled record's purge timer, moved below
		}
		h = &reservation{State: held, Hold: hold, Due: due, Job: true}
		j.Status, j.UpdatedMS = meter.JobRunning, o.now
		err = o.refresh(id, j, h)
		if err == nil {
			err = o.saveRes(rid, h)
		}
		if err == nil {
			err = o.saveJob(id, j)
		}
		if err != nil {
			return internalErr(err)
		}
		res, err = o.jobResult(id, j, ch.credits, ch.entry)
		return err
	})
	if err != nil {
		return meter.JobResult{}, err
	}
	return res, nil
}

// CancelJob finishes a running or blocked job as canceled, releasing its
// hold. Canceling a canceled job is a no-op; another finished one
// (expired included) is ECodeJobFinished.
func (s *Store) CancelJob(ctx context.Context, account, id string) (meter.JobResult, error) {
	var res meter.JobResult
	err := s.update(ctx, account, func(o *op) error {
		j, err := o.liveJob(id)
		if err != nil {
			return err
		}
		switch {
		case j.Status == meter.JobCanceled:
		case j.Finished():
			return meter.Errorf(meter.ECodeJobFinished, "job %q is %s", id, j.Status)
		default:
			if err := o.endJob(id, j, meter.JobCanceled); err != nil {
				return internalErr(err)
			}
		}
		res, err = o.jobResult(id, j, 0, "")
		return err
	})
	if err != nil {
		return meter.JobResult{}, err
	}
	return res, nil
}
