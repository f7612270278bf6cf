package storetest

import (
	"sort"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// The reference's jobs: a job's hold is the account's hold "job:" + id,
// charged in place as pages are reported (see meter.JobStore).

type refJob struct {
	rates    map[string]int64
	reported map[string]int
	pages    map[string]int
	estimate int64
	debited  int64
	failed   int
	status   string
	final    string
}

func (j *refJob) classes() []ledger.Pages {
	names := j.names()
	out := make([]ledger.Pages, len(names))
	for i, c := range names {
		out[i] = ledger.Pages{Rate: j.rates[c], Owed: int64(j.reported[c] - j.pages[c])}
	}
	return out
}

func (j *refJob) names() []string {
	cs := make([]string, 0, len(j.rates))
	for c := range j.rates {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

func (j *refJob) maxRate() int64 {
	var m int64
	for _, r := range j.rates {
		m = max(m, r)
	}
	return m
}

func (j *refJob) finished() bool { return meter.Job{Status: j.status}.Finished() }

// hold is the job's hold while held, else nil.
func (r *refAccount) jobHold(id string) *refHold {
	if h := r.holds[meter.JobHoldPrefix+id]; h != nil && h.state == refHeld {
		return h
	}
	return nil
}

func (r *refAccount) createJob(id string, rates map[string]int64, estimate int64) error {
	r.roll()
	if r.jobs[id] != nil {
		return meter.Errorf(meter.ECodeInvalid, "job id already used")
	}
	h, err := r.a.Reserve(estimate, 0)
	if err != nil {
		return err
	}
	r.holds[meter.JobHoldPrefix+id] = &refHold{h: h, state: refHeld, job: true}
	r.jobs[id] = &refJob{rates: rates, reported: map[string]int{}, pages: map[string]int{}, estimate: estimate,
		status: meter.JobRunning}
	return nil
}

// charge charges the job's owed pages within the budget (h: its hold, or
// nil) and reports whether some could not be.
func (r *refAccount) chargeJob(j *refJob, h *refHold) (int64, bool) {
	var hold *ledger.Hold
	if h != nil {
		hold = &h.h
	}
	n, cost, blocked := ledger.PagesWithin(r.a.JobBudget(hold), j.classes())
	pages := int64(0)
	for i, c := range j.names() {
		j.pages[c] += int(n[i])
		pages += n[i]
	}
	if pages == 0 {
		return 0, blocked
	}
	ch, _ := r.a.ChargeJob(hold, cost)
	j.debited += cost
	r.record(ch.Entry, ch.Events)
	return cost, blocked
}

func (r *refAccount) endJob(id string, j *refJob, status string) {
	if h := r.jobHold(id); h != nil {
		r.a.Release(h.h)
		h.state = refVoided
	}
	j.status = status
}

func (r *refAccount) reportJob(id string, done map[string]int, failed int, final string) (int64, error) {
	r.roll()
	j := r.jobs[id]
	switch {
	case j == nil:
		return 0, meter.Errorf(meter.ECodeJobNotFound, "job not found")
	case j.finished() && final == j.status && failed == j.failed && repeats(done, j.reported):
		return 0, nil
	case j.finished():
		return 0, meter.Errorf(meter.ECodeJobFinished, "job finished")
	}
	j.failed = max(j.failed, failed)
	for c, n := range done {
		j.reported[c] = max(j.reported[c], n)
	}
	if j.status == meter.JobBlocked {
		if final != "" {
			j.final = final
		}
		return 0, nil
	}
	cost, blocked := r.chargeJob(j, r.jobHold(id))
	switch {
	case blocked:
		j.status, j.final = meter.JobBlocked, final
		r.endJob(id, j, meter.JobBlocked)
		r.events = append(r.events, ledger.Event{Type: meter.EventJobBlocked, Balance: r.a.Balance})
	case final != "":
		r.endJob(id, j, final)
	}
	return cost, nil
}

func repeats(done, reported map[string]int) bool {
	for c, n := range done {
		if n != reported[c] {
			return false
		}
	}
	return true
}

func (r *refAccount) resumeJob(id string) (int64, error) {
	r.roll()
	j := r.jobs[id]
	switch {
	case j == nil:
		return 0, meter.Errorf(meter.ECodeJobNotFound, "job not found")
	case j.status == meter.JobRunning:
		return 0, nil
	case j.status != meter.JobBlocked:
		return 0, meter.Errorf(meter.ECodeJobFinished, "job finished")
	}
	var required int64
	for _, c := range j.classes() {
		required += c.Owed * c.Rate
	}
	if j.final == "" {
		required += j.maxRate()
	}
	if avail := r.a.Available(); avail < required {
		return 0, ledger.Insufficient(meter.Credits(required), meter.Credits(avail))
	}
	cost, _ := r.chargeJob(j, nil)
	if final := j.final; final != "" {
		j.final = ""
		r.endJob(id, j, final)
		return cost, nil
	}
	h := r.a.HoldAll(min(max(j.estimate-j.debited, j.maxRate()), r.a.Available()))
	r.holds[meter.JobHoldPrefix+id] = &refHold{h: h, state: refHeld, job: true}
	j.status = meter.JobRunning
	return cost, nil
}

func (r *refAccount) cancelJob(id string) error {
	j := r.jobs[id]
	switch {
	case j == nil:
		return meter.Errorf(meter.ECodeJobNotFound, "job not found")
	case j.status == meter.JobCanceled:
	case j.finished():
		return meter.Errorf(meter.ECodeJobFinished, "job finished")
	default:
		r.endJob(id, j, meter.JobCanceled)
	}
	return nil
}
