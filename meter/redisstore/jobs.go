package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Jobs (meter.JobStore): every call is one script of job_*.lua, with
// job_lib.lua, over the account's keys and the job's record and alias (all
// in the account's slot). See job_lib.lua for the layout.

// jobKey is a job's record; jobAliasKey maps an upstream id to a job id.
// Both are after the account's hash tag, so any bytes may follow.
func (s *Store) jobKey(account, id string) string {
	return s.prefix + ":{" + account + "}:job:" + id
}

func (s *Store) jobAliasKey(account, upstreamID string) string {
	return s.prefix + ":{" + account + "}:jobup:" + upstreamID
}

// CreateJob records a running job and holds its estimate; see meter.JobStore.
func (s *Store) CreateJob(ctx context.Context, r meter.JobRequest) (meter.JobResult, error) {
	rates := make(map[string]string, len(r.Rates))
	for c, v := range r.Rates {
		rates[c] = strconv.FormatInt(int64(v), 10)
	}
	b, err := json.Marshal(rates)
	if err != nil {
		return meter.JobResult{}, internalErr(err)
	}
	return s.runJob(ctx, jobCreateScript, r.AccountID, r.ID, r.Period, r.Route, string(b), r.EstimatedPages,
		int64(r.Estimate), ceilMS(r.TTL), ceilMS(r.RetainOrDefault()), nonce())
}

// Job reads a job; see meter.JobStore.
func (s *Store) Job(ctx context.Context, account, id string) (meter.Job, error) {
	res, err := s.runJob(ctx, jobGetScript, account, id, meter.Period{})
	return res.Job, err
}

// AttachJob records the upstream's id of a job; see meter.JobStore.
func (s *Store) AttachJob(ctx context.Context, account, id, upstreamID string) error {
	// The upstream id to attach is the one the keys name (ARGV[3]).
	s.jobUps.put(account, id, upstreamID)
	_, err := s.runJob(ctx, jobAttachScript, account, id, meter.Period{})
	if err != nil {
		s.jobUps.drop(account, id)
	}
	return err
}

// JobByUpstream finds a job by its upstream id: the alias, then the record,
// which must name the same upstream id (an alias is never reused while its
// job's record lives, but is checked all the same).
func (s *Store) JobByUpstream(ctx context.Context, account, upstreamID string) (meter.Job, error) {
	notFound := meter.Errorf(meter.ECodeJobNotFound, "job %q not found", upstreamID)
	id, err := s.c.Get(ctx, s.jobAliasKey(account, upstreamID)).Result()
	if errors.Is(err, redis.Nil) {
		if err := s.mustExist(ctx, account); err != nil {
			return meter.Job{}, err
		}
		return meter.Job{}, notFound
	}
	if err != nil {
		return meter.Job{}, storeErr(err)
	}
	j, err := s.Job(ctx, account, id)
	var me *meter.Error
	if errors.As(err, &me) && me.Code == meter.ECodeJobNotFound || err == nil && j.UpstreamID != upstreamID {
		return meter.Job{}, notFound
	}
	return j, err
}

// ReportJob records progress and charges the newly done pages; see
// meter.JobStore.
func (s *Store) ReportJob(ctx context.Context, r meter.JobReport) (meter.JobResult, error) {
	done := make(map[string]string, len(r.Done))
	for c, n := range r.Done {
		done[c] = strconv.Itoa(n)
	}
	b, err := json.Marshal(done)
	if err != nil {
		return meter.JobResult{}, internalErr(err)
	}
	res, err := s.runJob(ctx, jobReportScript, r.AccountID, r.JobID, r.Period, string(b), r.Failed, r.Final, r.RequestID)
	var bad *badReport
	if errors.As(err, &bad) {
		// The script found the report invalid for the job; the words are
		// the shared validation's.
		j, perr := parseJob(r.AccountID, bad.job)
		if perr != nil {
			return meter.JobResult{}, internalErr(perr)
		}
		if verr := r.ValidateFor(j); verr != nil {
			return meter.JobResult{}, verr
		}
		return meter.JobResult{}, meter.Errorf(meter.ECodeInvalid, "invalid job report")
	}
	return res, err
}

// ResumeJob unblocks a blocked job, all or nothing; see meter.JobStore. The
// period is the call's, as ReserveRequest.Period.
func (s *Store) ResumeJob(ctx context.Context, account, id string, p meter.Period, requestID string) (meter.JobResult, error) {
	return s.runJob(ctx, jobResumeScript, account, id, p, requestID)
}

// CancelJob finishes a running or blocked job as canceled; see
// meter.JobStore.
func (s *Store) CancelJob(ctx context.Context, account, id string) (meter.JobResult, error) {
	return s.runJob(ctx, jobCancelScript, account, id, meter.Period{})
}

// runJob runs a job script (see job_lib.lua for its KEYS and ARGV) and
// reads its job reply. The usage hash and the alias are named by guesses
// (the account's period as last seen, or the call's if newer; the job's
// upstream id as last seen); a script that finds a guess wrong says so,
// having changed nothing, and the call is made again.
func (s *Store) runJob(ctx context.Context, sc *script, account, id string, p meter.Period, args ...any) (meter.JobResult, error) {
	pid, pend := p.Millis()
	period := pid
	if v, ok := s.periods.Load(account); ok {
		period = max(period, v.(int64))
	}
	up := s.jobUps.get(account, id)
	for attempt := 0; ; attempt++ {
		keys := append(s.accountKeys(account), s.usageKey(account, period), s.jobKey(account, id),
			s.jobAliasKey(account, up), s.seriesKey(account))
		argv := append([]any{period, up, pid, pend, id}, args...)
		rep, err := s.runKeys(ctx, sc, account, keys, argv...)
		var wp *wrongPeriod
		var wu *wrongUpstream
		switch {
		case attempt < 3 && errors.As(err, &wp):
			period = wp.id
			continue
		case attempt < 3 && errors.As(err, &wu):
			up = wu.id
			s.jobUps.put(account, id, up)
			continue
		case err != nil:
			return meter.JobResult{}, err
		}
		j, perr := parseJob(account, rep.strOf("job_json"))
		if perr != nil {
			return meter.JobResult{}, internalErr(perr)
		}
		j.Reserved = meter.Credits(rep.intOf("reserved"))
		res := meter.JobResult{Job: j, Charged: meter.Credits(rep.intOf("charged")), EntryID: rep.strOf("entry_id"),
			Balance: meter.Credits(rep.intOf("balance")), Available: meter.Credits(rep.intOf("available"))}
		s.periods.Store(account, rep.intOf("period"))
		if rep.intOf("events") > 0 {
			s.indexEvents(ctx, account)
		}
		if j.Finished() {
			s.jobUps.drop(account, id)
		} else if j.UpstreamID != "" {
			s.jobUps.put(account, id, j.UpstreamID)
		}
		return res, rep.check()
	}
}

// parseJob reads a job record as job_json (job_lib.lua) writes it: a
// meter.JobRecord.
func parseJob(account, raw string) (meter.Job, error) {
	var rec meter.JobRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return meter.Job{}, fmt.Errorf("redisstore: bad job record of %s: %q: %v", account, raw, err)
	}
	return rec.Job(account, rec.ID), nil
}

func ceilMS(d time.Duration) int64 { return (d + time.Millisecond - 1).Milliseconds() }

// wrongUpstream is a job script's "KEYS[11] is not the job's alias: call
// again with the alias of id"; runJob handles it.
type wrongUpstream struct{ id string }

func (w *wrongUpstream) Error() string { return "redisstore: the job's upstream id is " + w.id }

// badReport is job_report.lua's "invalid for this job", with the job
// record; ReportJob words it.
type badReport struct{ job string }

func (b *badReport) Error() string { return "redisstore: invalid job report" }

// upstreamCache remembers the upstream ids of jobs this process has seen,
// so that job scripts name the alias key at once (see runJob). Finished
// jobs are dropped; the whole cache is, when it grows past its bound
// (jobs that expired unseen): it is only a guess.
type upstreamCache struct {
	mu sync.Mutex
	m  map[string]string
}

const upstreamCacheMax = 100_000

func (u *upstreamCache) get(account, id string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[account+"\x00"+id]
}

func (u *upstreamCache) put(account, id, up string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil || len(u.m) >= upstreamCacheMax {
		u.m = make(map[string]string)
	}
	u.m[account+"\x00"+id] = up
}

func (u *upstreamCache) drop(account, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, account+"\x00"+id)
}

var _ meter.JobStore = (*Store)(nil)
