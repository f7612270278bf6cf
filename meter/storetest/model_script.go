package storetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Scripted sequences: the steps of a case, applied to a store and to the
// reference model (model_ref.go, model_jobs.go), compared after each step
// as RunModel compares its random ones, plus what only a script can name:
// each answer in full, the refusal's details, the job as Job reads it, the
// job's usage entry (its id, pages, request and route) and the usage by
// route. The exact numbers of these cases are meter/ledger's table tests
// (*_table_test.go, under the same names); here the store must give the
// model's answers, whatever they are.

// sstep is one step of a script: a job's (create, n: the estimate;
// report; resume; cancel), or one of model_script_req.go (buy, reserve,
// commit, ...).
type sstep struct {
	op     string
	job    string // the job's name in the script
	n      float64
	rates  rates
	done   pages
	failed int
	final  string
	req    reqStep
}

func create(job string, estimate float64, r rates) sstep {
	return sstep{op: "create", job: job, n: estimate, rates: r}
}
func report(job string, done pages) sstep { return sstep{op: "report", job: job, done: done} }
func finish(job string, done pages, failed int, final string) sstep {
	return sstep{op: "report", job: job, done: done, failed: failed, final: final}
}
func failing(job string, done pages, failed int) sstep {
	return sstep{op: "report", job: job, done: done, failed: failed}
}
func resume(job string) sstep   { return sstep{op: "resume", job: job} }
func cancel(job string) sstep   { return sstep{op: "cancel", job: job} }
func buy(n float64) sstep       { return sstep{op: "buy", n: n} }
func holdOther(n float64) sstep { return sstep{op: "reserve", n: n} } // another request's

// script is an account (its balance, and with a quota or an overage cap
// a period that every call names) and the steps applied to it.
type script struct {
	name                                 string
	balance, quota, overageCap, lowBelow float64
	steps                                []sstep
}

// runScripts runs each script on an account of its own.
func runScripts(t *testing.T, s meter.Store, scripts []script) {
	t.Helper()
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // some sleep past a TTL
			runScript(t, s, sc)
		})
	}
}

// scriptRun is a script running on a store beside the model: the period
// its calls name, the store's ids of its jobs and reservations by name,
// each job as Job last read it, and the jobs' usage by route as the model
// charged it.
type scriptRun struct {
	t          *testing.T
	s          meter.Store
	r          *refAccount
	p          meter.Period
	jobs, rids map[string]string
	entries    map[string]scriptEntry // by the name of the commit that wrote it
	last       map[string]meter.Job
	used       meter.RouteUsage
}

func runScript(t *testing.T, s meter.Store, sc script) {
	id := newID("script")
	if _, err := s.CreateAccount(ctx, id, c(sc.balance)); err != nil {
		t.Fatal(err)
	}
	sr := &scriptRun{t: t, s: s, r: newRefAccount(id, int64(c(sc.balance))), jobs: map[string]string{},
		rids: map[string]string{}, entries: map[string]scriptEntry{}, last: map[string]meter.Job{}}
	if sc.quota+sc.overageCap+sc.lowBelow != 0 {
		st := meter.Settings{MonthlyQuota: c(sc.quota), OverageCap: c(sc.overageCap), LowBalanceThreshold: c(sc.lowBelow)}
		if _, err := s.UpdateSettings(ctx, id, st); err != nil {
			t.Fatal(err)
		}
		sr.r.settings(int64(st.MonthlyQuota), int64(st.OverageCap), int64(st.LowBalanceThreshold))
	}
	if sc.quota+sc.overageCap != 0 {
		sr.r.month, sr.p = 1, month(1)
	}
	compareModel(t, s, sr.r, 0, "the account's creation")
	for i, st := range sc.steps {
		desc := fmt.Sprintf("step %d: %s %s%s %v %v failed %d final %q", i, st.op, st.job, st.req.rid, st.n, st.done,
			st.failed, st.final)
		if st.job != "" {
			sr.jobStep(desc, st)
		} else {
			sr.request(desc, st)
		}
		if !st.req.short {
			// After a short hold, its answer was compared: reading the
			// account too could outlast its TTL before the expire step.
			compareModel(t, s, sr.r, i+1, desc)
		}
	}
	sr.checkUsage()
}

// jobStep applies a job's step to the store and the model and compares
// the answers, then every job of the script as Job reads it.
func (sr *scriptRun) jobStep(desc string, st sstep) {
	t, s, r := sr.t, sr.s, sr.r
	jid := sr.jobs[st.job]
	if jid == "" {
		jid = newID("job")
		sr.jobs[st.job] = jid
	}
	finished := r.jobs[jid] != nil && r.jobs[jid].finished()
	if finished {
		sleepMillis() // a call that changed a finished job would show in its times
	}
	var res meter.JobResult
	var gerr, werr error
	var cost int64
	var before int
	if j := r.jobs[jid]; j != nil {
		before = sum(j.pages)
	}
	rq := newID("rq")
	switch st.op {
	case "create":
		res, gerr = s.CreateJob(ctx, meter.JobRequest{AccountID: r.id, ID: jid, Route: jobRoute, Rates: st.rates,
			EstimatedPages: 10, Estimate: c(st.n), TTL: time.Minute, Period: sr.p})
		rates := map[string]int64{}
		for cl, v := range st.rates {
			rates[cl] = int64(v)
		}
		werr = r.createJob(jid, rates, int64(c(st.n)))
	case "report":
		res, gerr = s.ReportJob(ctx, meter.JobReport{AccountID: r.id, JobID: jid, Done: st.done, Failed: st.failed,
			Final: st.final, RequestID: rq, Period: sr.p})
		cost, werr = r.reportJob(jid, st.done, st.failed, st.final)
	case "resume":
		res, gerr = s.ResumeJob(ctx, r.id, jid, sr.p, rq)
		cost, werr = r.resumeJob(jid)
	case "cancel":
		res, gerr = s.CancelJob(ctx, r.id, jid)
		werr = r.cancelJob(jid)
	default:
		t.Fatalf("%s: no such step", desc)
	}
	sameRefusal(t, desc, gerr, werr)
	if gerr == nil {
		n := sum(r.jobs[jid].pages) - before
		checkScriptResult(t, s, desc, r, res, meter.Credits(cost), n, rq)
		if n > 0 { // free pages too, with no entry
			sr.used.Requests++
			sr.used.Pages += int64(n)
			sr.used.Credits += meter.Credits(cost)
		}
	}
	sr.checkJobs(desc, st.job, res.Job, gerr == nil, finished)
}

// checkJobs reads every job of the script and compares it with the
// model's; the job of the step (name) with the call's answer when it
// succeeded (ok), and with its last read when the call could not change
// it (refused, or on a finished job). Other jobs are as last read.
func (sr *scriptRun) checkJobs(desc, name string, answer meter.Job, ok, finished bool) {
	t, r := sr.t, sr.r
	for n, jid := range sr.jobs {
		if r.jobs[jid] == nil { // a refused CreateJob records nothing
			_, err := sr.s.Job(ctx, r.id, jid)
			wantCode(t, err, meter.ECodeJobNotFound)
			continue
		}
		j := mustJob(t, sr.s, r.id, jid)
		sameRefJob(t, desc, j, r.jobs[jid], r)
		if n == name && ok {
			sameJob(t, desc+": the call's job and Job", answer, j)
		}
		if (n != name || finished || !ok) && sr.last[n].ID != "" {
			sameJob(t, desc+": a job the call did not change", j, sr.last[n])
		}
		sr.last[n] = j
	}
}

// checkUsage compares the jobs' usage by route in the script's period
// with what the model charged.
func (sr *scriptRun) checkUsage() {
	us, err := sr.s.Usage(ctx, sr.r.id, sr.p)
	if err != nil {
		sr.t.Fatal(err)
	}
	var got, want []meter.RouteUsage
	for _, u := range us {
		if u.Route == jobRoute {
			got = append(got, u)
		}
	}
	if sr.used.Requests > 0 {
		sr.used.Route = jobRoute
		want = append(want, sr.used)
	}
	if len(got) != len(want) || len(want) > 0 && got[0] != want[0] {
		sr.t.Errorf("usage by route %+v; the model's %+v", got, want)
	}
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// sameRefusal fails unless the store refused (or not) as the model did:
// the same code, and the model's details where it gives some (a store may
// add its own to job_finished: redisstore names the status).
func sameRefusal(t *testing.T, desc string, got, want error) {
	t.Helper()
	if meter.ErrorCode(got) != meter.ErrorCode(want) {
		t.Fatalf("%s: store %v, model %v", desc, got, want)
	}
	var ge, we *meter.Error
	if errors.As(got, &ge) && errors.As(want, &we) && len(we.Details) > 0 && !sameDetails(ge.Details, we.Details) {
		t.Fatalf("%s: details %v, model %v", desc, ge.Details, we.Details)
	}
}

// checkScriptResult checks a job call's answer against the model's, and
// the usage entry of a call that charged (a report or a resume): the
// newest, with the call's pages and request.
func checkScriptResult(t *testing.T, s meter.Store, desc string, r *refAccount, res meter.JobResult, cost meter.Credits,
	pages int, rq string) {
	t.Helper()
	bal, avail := meter.Credits(r.a.Balance), meter.Credits(r.a.Balance-r.a.Reserved)
	if res.Charged != cost || res.Balance != bal || res.Available != avail || (cost != 0) != (res.EntryID != "") {
		t.Fatalf("%s: charged %s entry %q balance %s available %s; model %s, %s, %s",
			desc, res.Charged, res.EntryID, res.Balance, res.Available, cost, bal, avail)
	}
	if cost == 0 {
		return
	}
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: r.id, Limit: 1})
	if err != nil || len(es) != 1 {
		t.Fatalf("%s: Ledger: %v, %v", desc, es, err)
	}
	e, j := es[0], res.Job
	if e.ID != res.EntryID || e.Type != meter.EntryUsage || e.Pages != pages || e.ReservationID != j.ID || e.JobID != j.ID ||
		e.AccountID != r.id || e.Route != jobRoute || e.RequestID != rq {
		t.Fatalf("%s: entry %+v; want %s of %d pages for job %s, request %s", desc, e, res.EntryID, pages, j.ID, rq)
	}
}

// sameRefJob compares the job Job reads with the model's.
func sameRefJob(t *testing.T, desc string, j meter.Job, m *refJob, r *refAccount) {
	t.Helper()
	var held int64
	if h := r.jobHold(j.ID); h != nil {
		held = h.h.Amount()
	}
	want := meter.Job{Status: m.status, Reserved: meter.Credits(held), Debited: meter.Credits(m.debited),
		Pages: nonzero(m.pages), Reported: nonzero(m.reported), Failed: m.failed}
	got := meter.Job{Status: j.Status, Reserved: j.Reserved, Debited: j.Debited, Pages: nonzero(j.Pages),
		Reported: nonzero(j.Reported), Failed: j.Failed}
	if !j.Finished() {
		want.Final, got.Final = m.final, j.Final
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: job %s\nstore %+v\nmodel %+v", desc, j.ID, got, want)
	}
	if rs := slices.Sorted(maps.Keys(j.Rates)); !slices.Equal(rs, m.names()) {
		t.Fatalf("%s: job %s has classes %v, model %v", desc, j.ID, rs, m.names())
	}
	checkJobInvariants(t, desc, j)
}
