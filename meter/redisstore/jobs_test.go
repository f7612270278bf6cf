package redisstore

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

func mustCreateJob(t testing.TB, s *Store, r meter.JobRequest) meter.JobResult {
	t.Helper()
	res, err := s.CreateJob(ctx, r)
	if err != nil {
		t.Fatalf("CreateJob(%s): %v", r.ID, err)
	}
	return res
}

func mustReportJob(t testing.TB, s *Store, r meter.JobReport) meter.JobResult {
	t.Helper()
	res, err := s.ReportJob(ctx, r)
	if err != nil {
		t.Fatalf("ReportJob(%s, %v): %v", r.JobID, r.Done, err)
	}
	return res
}

func jobRequest(acct string, estimate meter.Credits, rates map[string]meter.Credits, ttl time.Duration) meter.JobRequest {
	return meter.JobRequest{AccountID: acct, ID: newID("job"), Route: "/jobs", Rates: rates,
		EstimatedPages: 10, Estimate: estimate, TTL: ttl}
}

func rawClient(t testing.TB) *redis.Client {
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// A job's hold is a reservation record: the sweep of any account script
// expires it at the job's expiry and releases exactly its parts (quota
// and balance), leaving other holds alone; the job then reads as expired.
func TestJobHoldExpiresBySweep(t *testing.T) {
	s := newStore(t, Options{})
	cl := rawClient(t)
	id := newAccount(t, s, c(10))
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: c(3)}); err != nil {
		t.Fatal(err)
	}
	p := month(0)
	mustReserveIn(t, s, id, newRID(), c(1), p) // quota 1
	// Long enough for the create and the report under a loaded -race
	// run (shortTTL was not), short enough to wait out.
	const ttl = 400 * time.Millisecond
	r := jobRequest(id, c(6), map[string]meter.Credits{"page": c(1)}, ttl)
	r.Period = p
	mustCreateJob(t, s, r) // quota 2, balance 4
	expectPools(t, s, id, c(10), c(4), qs(3, 0, 3, 0), ovs(0, 0, 0, 0))
	res := mustReportJob(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 1}, Period: p})
	if res.Charged != c(1) || res.Job.Reserved != c(5) {
		t.Fatalf("report: %+v", res)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	// Account's sweep, not a job script, releases the hold.
	expectPools(t, s, id, c(10), 0, qs(3, 1, 1, 1), ovs(0, 0, 0, 0), use{0, c(1), 0, c(10)})
	if rec := cl.HGet(ctx, s.accountKeys(id)[2], "job:"+r.ID).Val(); !strings.HasPrefix(rec, "x|") {
		t.Errorf("hold record %q; want it expired", rec)
	}
	j, err := s.Job(ctx, id, r.ID)
	if err != nil || j.Status != meter.JobExpired || j.Reserved != 0 || j.Debited != c(1) || !j.FinishedAt.Equal(j.ExpiresAt) {
		t.Fatalf("Job: %+v, %v", j, err)
	}
	_, err = s.ReportJob(ctx, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 2}})
	wantCode(t, err, meter.ECodeJobExpired)
	_, err = s.ResumeJob(ctx, id, r.ID, meter.Period{}, "")
	wantCode(t, err, meter.ECodeJobExpired)
	_, err = s.CancelJob(ctx, id, r.ID)
	wantCode(t, err, meter.ECodeJobFinished)
	expectPools(t, s, id, c(10), 0, qs(3, 1, 1, 1), ovs(0, 0, 0, 0), use{0, c(1), 0, c(10)})

	// A job script that finds the expiry passed before any sweep releases
	// the hold itself.
	id2 := newAccount(t, s, c(10))
	r2 := jobRequest(id2, c(4), map[string]meter.Credits{"page": c(1)}, shortTTL)
	mustCreateJob(t, s, r2)
	pastTTL()
	_, err = s.ReportJob(ctx, meter.JobReport{AccountID: id2, JobID: r2.ID, Done: map[string]int{"page": 1}})
	wantCode(t, err, meter.ECodeJobExpired)
	if rec := cl.HGet(ctx, s.accountKeys(id2)[2], "job:"+r2.ID).Val(); !strings.HasPrefix(rec, "x|") {
		t.Errorf("hold record %q; want it expired", rec)
	}
	expect(t, s, id2, c(10), 0, entry{"purchase", c(10), c(10), false})
}

func pexpireTime(t *testing.T, cl *redis.Client, key string) int64 {
	t.Helper()
	ms, err := cl.Do(ctx, "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// The record and the upstream alias expire Retain after the job's expiry
// while it runs, after its end once finished; a store that has not seen
// the job's upstream id (another gateway) moves the alias all the same.
func TestJobKeysExpireAfterRetain(t *testing.T) {
	s := newStore(t, Options{})
	cl := rawClient(t)
	id := newAccount(t, s, c(10))
	r := jobRequest(id, c(2), map[string]meter.Credits{"page": c(1)}, time.Hour)
	r.Retain = 2 * time.Hour
	j := mustCreateJob(t, s, r).Job
	retain := (2 * time.Hour).Milliseconds()
	jobKey := s.jobKey(id, r.ID)
	if got, want := pexpireTime(t, cl, jobKey), j.ExpiresAt.UnixMilli()+retain; got != want {
		t.Errorf("record expires at %d, want %d", got, want)
	}
	up := "up|50%7C%" // '|' and '%' in ids are escaped in event records
	if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
		t.Fatal(err)
	}
	alias := s.jobAliasKey(id, up)
	if cl.Get(ctx, alias).Val() != r.ID || pexpireTime(t, cl, alias) != j.ExpiresAt.UnixMilli()+retain {
		t.Errorf("alias %q expires at %d", cl.Get(ctx, alias).Val(), pexpireTime(t, cl, alias))
	}

	time.Sleep(5 * time.Millisecond)
	other := newStore(t, Options{})
	res, err := other.ReportJob(ctx, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 1}})
	if err != nil || !res.Job.ExpiresAt.After(j.ExpiresAt) {
		t.Fatalf("report: %+v, %v", res, err)
	}
	want := res.Job.ExpiresAt.UnixMilli() + retain
	if pexpireTime(t, cl, jobKey) != want || pexpireTime(t, cl, alias) != want {
		t.Errorf("after a charge: record %d alias %d, want %d", pexpireTime(t, cl, jobKey), pexpireTime(t, cl, alias), want)
	}

	res = mustReportJob(t, other, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 2},
		Final: meter.JobCompleted})
	want = res.Job.FinishedAt.UnixMilli() + retain
	if res.Job.FinishedAt.IsZero() || pexpireTime(t, cl, jobKey) != want || pexpireTime(t, cl, alias) != want {
		t.Errorf("finished: record %d alias %d, want %d", pexpireTime(t, cl, jobKey), pexpireTime(t, cl, alias), want)
	}
	if got, err := s.JobByUpstream(ctx, id, up); err != nil || got.ID != r.ID || got.Status != meter.JobCompleted {
		t.Errorf("JobByUpstream: %+v, %v", got, err)
	}

	// Default retention: 30 days.
	d := mustCreateJob(t, s, jobRequest(id, 0, map[string]meter.Credits{"page": c(1)}, time.Minute)).Job
	if got, want := pexpireTime(t, cl, s.jobKey(id, d.ID)), d.ExpiresAt.Add(meter.DefaultJobRetain).UnixMilli(); got != want {
		t.Errorf("default retention: expires at %d, want %d", got, want)
	}
}

// go-redis resends a CreateJob whose reply was lost: the nonce makes the
// resend answer the same job, holding once; another call is refused.
func TestCreateJobResent(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	jid := newID("job")
	create := func(nonce string) (meter.JobResult, error) {
		return s.runJob(ctx, jobCreateScript, id, jid, meter.Period{}, "/jobs", `{"page":"1000"}`, 4,
			int64(c(4)), int64(60000), int64(3600000), nonce)
	}
	first, err := create("n1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := create("n1")
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Fatalf("resent: %+v, %v; first %+v", again, err, first)
	}
	_, err = create("n2")
	wantCode(t, err, meter.ECodeInvalid)
	expect(t, s, id, c(10), c(4), entry{"purchase", c(10), c(10), false})
}

// A report the pools cannot cover blocks the job (what fits is charged,
// the rest of the hold released, a job.blocked event recorded); reports
// while blocked are recorded only; ResumeJob pays the owed pages and
// applies the waiting final status.
func TestJobBlockedThenResumedWithFinal(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(5))
	r := jobRequest(id, c(3), map[string]meter.Credits{"page": c(1)}, time.Minute)
	mustCreateJob(t, s, r)
	up := "up|1%7C"
	if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
		t.Fatal(err)
	}
	res := mustReportJob(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 8}})
	if res.Charged != c(5) || res.Balance != 0 || res.Available != 0 || res.Job.Status != meter.JobBlocked ||
		res.Job.Reserved != 0 || res.Job.Pages["page"] != 5 || res.Job.Owed() != c(3) {
		t.Fatalf("blocking report: %+v", res)
	}
	blocked := res.Job
	evs := claimMine(t, s, id)
	if len(evs) != 1 || evs[0].Type != meter.EventJobBlocked || evs[0].JobID != r.ID || evs[0].UpstreamJobID != up ||
		evs[0].Balance != 0 {
		t.Fatalf("events %+v", evs)
	}
	if err := s.AckEvent(ctx, id, evs[0].ID); err != nil {
		t.Fatal(err)
	}

	time.Sleep(5 * time.Millisecond)
	res = mustReportJob(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 10},
		Failed: 1, Final: meter.JobCompleted})
	if res.Charged != 0 || res.Job.Status != meter.JobBlocked || res.Job.Final != meter.JobCompleted ||
		res.Job.Reported["page"] != 10 || res.Job.Failed != 1 || !res.Job.ExpiresAt.Equal(blocked.ExpiresAt) {
		t.Fatalf("report while blocked: %+v", res)
	}
	if evs := claimMine(t, s, id); len(evs) != 0 {
		t.Errorf("events of a blocked job's report: %+v", evs)
	}

	_, err := s.ResumeJob(ctx, id, r.ID, meter.Period{}, "")
	e := wantCode(t, err, meter.ECodeInsufficientCredits)
	if e.Details["required"] != c(5) || e.Details["available"] != meter.Credits(0) {
		t.Errorf("details %v; want required 5 (the owed pages; a final status waits), available 0", e.Details)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Type: meter.EntryPurchase, Amount: c(7)}); err != nil {
		t.Fatal(err)
	}
	res, err = s.ResumeJob(ctx, id, r.ID, meter.Period{}, "")
	if err != nil || res.Charged != c(5) || res.Balance != c(2) || res.Available != c(2) ||
		res.Job.Status != meter.JobCompleted || res.Job.Debited != c(10) || res.Job.FinishedAt.IsZero() {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	expect(t, s, id, c(2), 0, entry{"purchase", c(5), c(5), false}, entry{"usage", -c(5), 0, false},
		entry{"purchase", c(7), c(7), false}, entry{"usage", -c(5), c(2), false})
	us, err := s.Usage(ctx, id, meter.Period{})
	if want := []meter.RouteUsage{{Route: "/jobs", Requests: 2, Pages: 10, Credits: c(10)}}; err != nil || !reflect.DeepEqual(us, want) {
		t.Errorf("usage %+v, %v; want %+v", us, err, want)
	}
}

// Classes are charged in name order, each as far as the budget goes; a
// resume without a final status needs one more page at the highest rate
// and holds again.
func TestJobResumedRunsAgain(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(2))
	r := jobRequest(id, c(2), map[string]meter.Credits{"a": c(1), "b": c(3)}, time.Minute)
	mustCreateJob(t, s, r)
	res := mustReportJob(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"a": 1, "b": 1}})
	if res.Charged != c(1) || res.Job.Status != meter.JobBlocked || res.Balance != c(1) || res.Available != c(1) {
		t.Fatalf("report: %+v", res)
	}
	_, err := s.ResumeJob(ctx, id, r.ID, meter.Period{}, "")
	if e := wantCode(t, err, meter.ECodeInsufficientCredits); e.Details["required"] != c(6) || e.Details["available"] != c(1) {
		t.Errorf("details %v; want required 6, available 1", e.Details)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Type: meter.EntryPurchase, Amount: c(10)}); err != nil {
		t.Fatal(err)
	}
	res, err = s.ResumeJob(ctx, id, r.ID, meter.Period{}, "")
	if err != nil || res.Charged != c(3) || res.Job.Status != meter.JobRunning || res.Job.Reserved != c(3) ||
		res.Balance != c(8) || res.Available != c(5) || !res.Job.ExpiresAt.After(time.Now().Add(50*time.Second)) {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	if again, err := s.ResumeJob(ctx, id, r.ID, meter.Period{}, ""); err != nil || again.Charged != 0 || again.Job.Reserved != c(3) {
		t.Errorf("resuming a running job: %+v, %v", again, err)
	}
	expect(t, s, id, c(8), c(3), entry{"purchase", c(2), c(2), false}, entry{"usage", -c(1), c(1), false},
		entry{"purchase", c(10), c(11), false}, entry{"usage", -c(3), c(8), false})
}

// UpdatedAt is the creation, then each UpdateSettings; accounts from
// before the field read their creation. RetentionDays round-trips.
func TestAccountUpdatedAt(t *testing.T) {
	s := newStore(t, Options{})
	cl := rawClient(t)
	id := newID("acct")
	a, err := s.CreateAccount(ctx, id, 0)
	if err != nil || a.UpdatedAt.IsZero() || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Fatalf("created: %+v, %v", a, err)
	}
	time.Sleep(5 * time.Millisecond)
	u, err := s.UpdateSettings(ctx, id, meter.Settings{RetentionDays: 7})
	if err != nil || !u.UpdatedAt.After(a.CreatedAt) || !u.CreatedAt.Equal(a.CreatedAt) || u.Settings.RetentionDays != 7 {
		t.Fatalf("updated: %+v, %v", u, err)
	}
	got, err := s.Account(ctx, id)
	if err != nil || !got.UpdatedAt.Equal(u.UpdatedAt) || got.Settings.RetentionDays != 7 {
		t.Fatalf("Account: %+v, %v", got, err)
	}
	cl.HDel(ctx, s.accountKeys(id)[0], "updated_ms")
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("an account from before updated_ms: %+v, %v", got, err)
	}
}

// Event records from before job events still parse; a job event's ids
// may hold the separator.
func TestEventRecordFormats(t *testing.T) {
	e, err := eventFrom("a", "1-1", "credits.low_balance|1000|5|10|0|0|0|2|w1")
	if err != nil || e.Balance != 5 || e.Threshold != 10 || e.Attempts != 2 || e.JobID != "" {
		t.Errorf("old record: %+v, %v", e, err)
	}
	e, err = eventFrom("a", "1-2", "job.blocked|1000|5|0|0|0|0|j%7C1%25|up%257C|0|")
	if err != nil || e.JobID != "j|1%" || e.UpstreamJobID != "up%7C" || e.Balance != 5 {
		t.Errorf("job record: %+v, %v", e, err)
	}
	if _, err := eventFrom("a", "1-3", "job.blocked|1000|5|0|0|0|0|j|0|"); err == nil {
		t.Error("a record of 10 fields parsed")
	}
}

// On a Redis Cluster of three masters, in strict script mode, every job
// script keeps to its account's slot.
func TestJobsOnClusterOfThreeMasters(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := cl.Client()
	defer raw.Close()
	perMaster := map[string]int{}
	for i := 0; i < 9; i++ {
		id := fmt.Sprintf("c3job_%02d", i)
		m, err := raw.MasterForKey(ctx, s.accountKeys(id)[0])
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m.Options().Addr]++
		t.Run(id, func(t *testing.T) { clusterJob(t, s, id) })
	}
	if len(perMaster) != 3 {
		t.Errorf("accounts on %d masters, want 3", len(perMaster))
	}
}

func clusterJob(t *testing.T, s *Store, id string) {
	if _, err := s.CreateAccount(ctx, id, c(5)); err != nil {
		t.Fatal(err)
	}
	r := jobRequest(id, c(3), map[string]meter.Credits{"page": c(1)}, time.Minute)
	r.Period = month(0)
	mustCreateJob(t, s, r)
	up := "up-" + id
	if err := s.AttachJob(ctx, id, r.ID, up); err != nil {
		t.Fatal(err)
	}
	res := mustReportJob(t, s, meter.JobReport{AccountID: id, JobID: r.ID, Done: map[string]int{"page": 7}, Period: month(0)})
	if res.Job.Status != meter.JobBlocked || res.Charged != c(5) {
		t.Fatalf("report: %+v", res)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Type: meter.EntryPurchase, Amount: c(10)}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.ResumeJob(ctx, id, r.ID, month(0), ""); err != nil || res.Job.Status != meter.JobRunning || res.Job.Reserved != c(1) {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	if j, err := s.JobByUpstream(ctx, id, up); err != nil || j.ID != r.ID {
		t.Fatalf("JobByUpstream: %+v, %v", j, err)
	}
	if res, err := s.CancelJob(ctx, id, r.ID); err != nil || res.Job.Status != meter.JobCanceled {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	expect(t, s, id, c(8), 0, entry{"purchase", c(5), c(5), false}, entry{"usage", -c(5), 0, false},
		entry{"purchase", c(10), c(10), false}, entry{"usage", -c(2), c(8), false})
	var found bool
	for _, e := range claimAll(t, s) {
		found = found || e.AccountID == id && e.Type == meter.EventJobBlocked && e.JobID == r.ID && e.UpstreamJobID == up
	}
	if !found {
		t.Error("no job.blocked event claimed")
	}
}

func claimAll(t *testing.T, s *Store) []meter.Event {
	t.Helper()
	evs, err := s.ClaimEvents(ctx, "test", time.Minute, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
