package meter

import (
	"context"
	"sort"
	"time"
)

// Long-running jobs (issue 8). An asynchronous API answers its submission
// (POST /jobs) with 202 and processes the pages later. A job holds an
// estimate of its cost from the submission on (the hold is a reservation
// of the account, so it counts in Account.Reserved and no other request
// can spend it), and is debited page by page as the upstream reports
// progress. Reports are cumulative ("so far: 12 drawing pages, 30
// document pages, 2 failed"), which makes them idempotent: a retried, a
// duplicated or an out-of-order report charges nothing twice.
//
// A charge is taken from the job's hold first, then from what the account
// has available (quota, balance, overage: the same pools and order as a
// request), never more. Pages the hold and the pools cannot cover are
// owed: the job becomes JobBlocked (a job.blocked event is recorded once
// per blocking) and further reports charge nothing until ResumeJob pays
// the owed pages. A job that receives no charging report, resume or
// creation for its TTL expires: its hold is released, its owed pages are
// never charged, reports are refused.

// JobHoldPrefix starts the reservation id of a job's hold ("job:" + the
// job id); Reserve refuses ids with it.
const JobHoldPrefix = "job:"

// KeptReplyPrefix starts the field where redisstore keeps a lease's
// last group-settle reply, next to the lease's record among the
// reservations ("L:" + lease id): no reservation id may start with it.
const KeptReplyPrefix = "L:"

// Job statuses.
const (
	JobRunning   = "running"
	JobBlocked   = "blocked_insufficient_credits"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
	JobExpired   = "expired"
)

// EventJobBlocked: a job's report could not be covered; the job pauses
// until it is resumed (Event.JobID names it).
const EventJobBlocked = "job.blocked"

// ECodeJobNotFound etc. are the job refusals.
const (
	// ECodeJobNotFound: no such job on the account (404).
	ECodeJobNotFound = "job_not_found"
	// ECodeJobExpired: the job's TTL elapsed (410).
	ECodeJobExpired = "job_expired"
	// ECodeJobFinished: the job is completed, failed or canceled and
	// takes no reports or resumes (409).
	ECodeJobFinished = "job_finished"
)

// Job is a long-running job's billing record. Amounts are Credits.
type Job struct {
	ID        string `json:"id"`
	AccountID string `json:"account"`
	// UpstreamID is the upstream's own id of the job (AttachJob), by which
	// clients name it.
	UpstreamID string `json:"upstream_id,omitempty"`
	Route      string `json:"route,omitempty"`
	Status     string `json:"status"`
	// Rates are the credits per page of each page class, frozen when the
	// job was created (the account's rates then).
	Rates map[string]Credits `json:"rates"`
	// EstimatedPages and Estimate are what the submission reserved for.
	EstimatedPages int     `json:"estimated_pages"`
	Estimate       Credits `json:"estimate"`
	// Reserved is what the job holds now; Debited what it was charged so
	// far (all pools: quota, balance, overage).
	Reserved Credits `json:"credits_reserved"`
	Debited  Credits `json:"credits_debited"`
	// Pages are the charged pages by class; Reported the pages reported
	// done by class (Reported - Pages are owed while blocked).
	Pages    map[string]int `json:"pages"`
	Reported map[string]int `json:"reported"`
	// Failed is the failed pages reported (never charged).
	Failed int `json:"failed_pages"`
	// Final is the final status a report asked for while the job was
	// blocked (JobCompleted or JobFailed): ResumeJob applies it once the
	// owed pages are paid.
	Final     string    `json:"final,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt: a running or blocked job expires then, unless a charging
	// report or a resume moves it on by the job's TTL.
	ExpiresAt time.Time `json:"expires_at"`
	// FinishedAt is when it completed, failed, was canceled or expired;
	// the record is frozen from then on.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// TTL is the job's TTL, as created.
	TTL time.Duration `json:"-"`
}

// Finished reports whether the job is frozen.
func (j Job) Finished() bool {
	switch j.Status {
	case JobCompleted, JobFailed, JobCanceled, JobExpired:
		return true
	}
	return false
}

// SuccessfulPages is the pages charged, of every class.
func (j Job) SuccessfulPages() int {
	n := 0
	for _, p := range j.Pages {
		n += p
	}
	return n
}

// Owed is the cost of the pages reported but not charged.
func (j Job) Owed() Credits {
	var c Credits
	for _, cl := range j.Classes() {
		c += Credits(j.Reported[cl]-j.Pages[cl]) * j.Rates[cl]
	}
	return c
}

// Classes returns the job's page classes in the order charges take them:
// by name.
func (j Job) Classes() []string {
	cs := make([]string, 0, len(j.Rates))
	for c := range j.Rates {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// JobRequest creates a job and holds its estimate.
type JobRequest struct {
	AccountID string
	// ID is the job id, chosen by the caller (unique on the account, at
	// most MaxRefLen bytes).
	ID    string
	Route string
	// Rates: credits per page of each class (at least one; class names
	// as pricing's: a letter then letters, digits, _ or -).
	Rates          map[string]Credits
	EstimatedPages int
	// Estimate is held at once, from the pools in the usual order;
	// refusals as Reserve's (insufficient_credits, quota_exceeded,
	// overage_limit_reached). 0 holds nothing.
	Estimate Credits
	// TTL of the job (see Job.ExpiresAt); positive.
	TTL time.Duration
	// Retain is how long a finished job's record stays readable
	// (default 30 days).
	Retain time.Duration
	// Period: as ReserveRequest.Period.
	Period Period
}

// JobReport is the upstream's progress: cumulative counts.
type JobReport struct {
	AccountID string
	JobID     string
	// Done are the pages processed successfully so far, by class. A count
	// lower than an earlier report's is read as the earlier one. A class
	// not in the job's Rates is invalid.
	Done map[string]int
	// Failed is the pages that failed so far (the largest reported wins).
	Failed int
	// Final, JobCompleted or JobFailed, ends the job once its pages are
	// paid: the rest of the hold is released and the record frozen. While
	// the job is blocked, it is kept in Job.Final for ResumeJob.
	Final string
	// RequestID is recorded in the ledger entry.
	RequestID string
	Period    Period
}

// JobResult is the outcome of a job operation.
type JobResult struct {
	Job Job
	// Charged is what this call debited (all pools); EntryID its ledger
	// entry ("" when nothing was charged).
	Charged Credits
	EntryID string
	// Balance and Available after the call.
	Balance   Credits
	Available Credits
}

// JobStore is the store's side of jobs; every method is atomic.
//
// Charging (ReportJob, ResumeJob): for each class in Job.Classes order,
// the pages Reported - Pages are charged whole, as many as the budget
// (the hold, then the pools) covers; a class of rate 0 is always covered.
// One usage ledger entry per charging call (ReservationID = the job id,
// Route = the job's route, Pages = the pages charged, RequestID from the
// report), counted in the usage by route of the stored period. Quota,
// low-balance and overage events as for Commit.
type JobStore interface {
	// CreateJob records a running job and holds its estimate, expiring
	// after TTL. A second call with an id the account has used is
	// ECodeInvalid ("job id already used"), unless it is the store
	// client's own retry of the same call.
	CreateJob(ctx context.Context, r JobRequest) (JobResult, error)
	// Job reads a job, JobExpired once its ExpiresAt passed (running or
	// blocked). ECodeJobNotFound.
	Job(ctx context.Context, account, id string) (Job, error)
	// AttachJob records the upstream's id of a job, so that
	// JobByUpstream finds it. Attaching the same id again is a no-op;
	// another id is ECodeInvalid.
	AttachJob(ctx context.Context, account, id, upstreamID string) error
	// JobByUpstream finds a job by its upstream id. ECodeJobNotFound.
	JobByUpstream(ctx context.Context, account, upstreamID string) (Job, error)
	// ReportJob records progress and charges the newly done pages. Running:
	// charges; if a page cannot be covered the job becomes JobBlocked
	// (what could be covered is charged) and a job.blocked event is
	// recorded; what is left of the hold is
	// released (Reserved 0 while blocked). A charging report moves ExpiresAt to
	// now + TTL. Blocked: counts are recorded, nothing is charged, the
	// expiry does not move. ECodeJobExpired, ECodeJobFinished (a report
	// that repeats the final one of a finished job answers it instead).
	ReportJob(ctx context.Context, r JobReport) (JobResult, error)
	// ResumeJob unblocks a blocked job, all or nothing. It must pay every
	// owed page and, unless a Final is pending, leave at least one page at
	// the job's highest rate available; otherwise it changes nothing and
	// is ECodeInsufficientCredits with required = that sum and available =
	// what the pools have. With a pending Final the job then finishes as
	// that status (the hold released); otherwise it runs again, holding
	// min(max(Estimate - Debited, highest rate), what is available after
	// the owed pages), and ExpiresAt moves to now + TTL. Resuming a running
	// job changes nothing and succeeds. ECodeJobExpired, ECodeJobFinished.
	// requestID is recorded in the ledger entry of what it charges.
	ResumeJob(ctx context.Context, account, id string, p Period, requestID string) (JobResult, error)
	// CancelJob finishes a running or blocked job as JobCanceled: the hold
	// is released, nothing more is charged (what was charged stays).
	// Canceling a canceled job is a no-op; another finished one is
	// ECodeJobFinished.
	CancelJob(ctx context.Context, account, id string) (JobResult, error)
}
