package ledger

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// A job of meter.JobStore over the model, as the stores run one
// (docs/jobs.md): a hold of the estimate; each report charges the owed
// pages within the hold and the pools (PagesWithin, ChargeJob); pages not
// covered block the job and release its hold; a resume needs the owed
// pages and, unless a final status is pending, one page at the highest
// rate (Available), charges them and holds what is left of the estimate,
// at least that page (HoldAll). meter/storetest runs the same steps on
// every store beside its reference model (jobs_scripts.go).
type simJob struct {
	rates             map[string]int64
	reported, charged map[string]int64
	hold              *Hold // nil: none (blocked or finished)
	estimate, debited int64
	status, final     string
	failed            int64
}

func (j *simJob) classes() []Pages {
	var ps []Pages
	for _, c := range slices.Sorted(maps.Keys(j.rates)) {
		ps = append(ps, Pages{Rate: j.rates[c], Owed: j.reported[c] - j.charged[c]})
	}
	return ps
}

func (j *simJob) maxRate() (m int64) {
	for _, r := range j.rates {
		m = max(m, r)
	}
	return m
}

func (j *simJob) finished() bool { return meter.Job{Status: j.status}.Finished() }

// accountSim is an account, its jobs and other requests' holds (pools_test.go);
// month is the period its calls name (0: none), sum what its ledger
// entries add up to, out what the current step did.
type accountSim struct {
	a     *Account
	jobs  map[string]*simJob
	holds map[string]*simHold
	month int64
	sum   int64
	out   strings.Builder
}

// charge charges the job's owed pages within the budget and reports
// whether some could not be.
func (s *accountSim) charge(j *simJob) bool {
	n, cost, blocked := PagesWithin(s.a.JobBudget(j.hold), j.classes())
	fmt.Fprintf(&s.out, "charged %s", cr(cost))
	if slices.Max(append(n, 0)) == 0 {
		return blocked
	}
	ch, ok := s.a.ChargeJob(j.hold, cost)
	if !ok {
		panic("the pools fell short of a cost within the budget")
	}
	for i, c := range slices.Sorted(maps.Keys(j.rates)) {
		j.charged[c] += n[i]
	}
	j.debited += cost
	if e := ch.Entry; e != nil {
		s.sum += e.Amount
		fmt.Fprintf(&s.out, " (usage %s quota %s overage %s after %s)", cr(e.Amount), cr(e.Quota), cr(e.Overage), cr(e.BalanceAfter))
	}
	s.events(ch.Events)
	return blocked
}

// events writes each event's type and what it says beyond the balance
// (the balance after the step, which the state shows).
func (s *accountSim) events(evs []Event) {
	for _, e := range evs {
		fmt.Fprintf(&s.out, " %s", e.Type)
		switch e.Type {
		case meter.EventLowBalance:
			fmt.Fprintf(&s.out, "[below %s]", cr(e.Threshold))
		case meter.EventQuotaExhausted, meter.EventOverageLimitReached:
			fmt.Fprintf(&s.out, "[used %s of %s]", cr(e.Used), cr(e.Limit))
		case meter.EventShortfall:
			fmt.Fprintf(&s.out, "[%s]", cr(e.Used))
		}
	}
}

func (s *accountSim) end(j *simJob, status string) {
	if j.hold != nil {
		s.a.Release(*j.hold)
		j.hold = nil
	}
	j.status = status
}

// do applies one step: "create <job> <estimate> <class>=<rate>...",
// "report <job> <class>=<pages>... [failed=n] [final=<status>]",
// "resume <job>", "cancel <job>", "buy <credits>", "hold <credits>" (another
// request's reservation).
func (s *accountSim) do(step string) error {
	f := strings.Fields(step)
	if ok, err := s.request(f); ok {
		return err
	}
	j := s.jobs[f[1]]
	if f[0] != "buy" && f[0] != "cancel" {
		s.roll() // as the stores, at a call that names a period
	}
	switch f[0] {
	case "buy", "hold":
		x := k(num(f[1]))
		if f[0] == "hold" {
			h, err := s.a.Reserve(x, 0)
			fmt.Fprintf(&s.out, "held %s", cr(h.Amount()))
			return err
		}
		e, evs, err := s.a.Grant(meter.EntryPurchase, x)
		s.sum += e.Amount
		s.events(evs)
		return err
	case "create":
		if j != nil {
			return meter.Errorf(meter.ECodeInvalid, "job id already used")
		}
		j = &simJob{rates: map[string]int64{}, reported: map[string]int64{}, charged: map[string]int64{},
			estimate: k(num(f[2])), status: meter.JobRunning}
		for _, kv := range f[3:] {
			c, v, _ := strings.Cut(kv, "=")
			j.rates[c] = k(num(v))
		}
		h, err := s.a.Reserve(j.estimate, 0)
		if err != nil {
			return err
		}
		j.hold = &h
		s.jobs[f[1]] = j
		s.out.WriteString("held " + cr(h.Amount()))
		return nil
	case "report":
		done, failed, final := map[string]int64{}, int64(0), ""
		for _, kv := range f[2:] {
			c, v, _ := strings.Cut(kv, "=")
			switch c {
			case "failed":
				failed = int64(num(v))
			case "final":
				final = v
			default:
				done[c] = int64(num(v))
			}
		}
		if j.finished() {
			if final == j.status && failed == j.failed && maps.EqualFunc(done, j.reported, func(a, b int64) bool { return a == b }) {
				return nil // the final report again
			}
			return meter.Errorf(meter.ECodeJobFinished, "job finished")
		}
		j.failed = max(j.failed, failed)
		for c, n := range done {
			j.reported[c] = max(j.reported[c], n)
		}
		if j.status == meter.JobBlocked {
			j.final = cmp.Or(final, j.final)
			return nil
		}
		switch blocked := s.charge(j); {
		case blocked:
			j.final = final
			s.end(j, meter.JobBlocked)
			s.out.WriteString(" " + meter.EventJobBlocked)
		case final != "":
			s.end(j, final)
		}
		return nil
	case "resume":
		switch {
		case j.status == meter.JobRunning:
			return nil
		case j.status != meter.JobBlocked:
			return meter.Errorf(meter.ECodeJobFinished, "job finished")
		}
		var required int64
		for _, c := range j.classes() {
			required += c.Owed * c.Rate
		}
		if j.final == "" {
			required += j.maxRate()
		}
		if avail := s.a.Available(); avail < required {
			return Insufficient(meter.Credits(required), meter.Credits(avail))
		}
		s.charge(j)
		if j.final != "" {
			j.status, j.final = j.final, ""
			return nil
		}
		h := s.a.HoldAll(min(max(j.estimate-j.debited, j.maxRate()), s.a.Available()))
		j.hold, j.status = &h, meter.JobRunning
		return nil
	case "cancel":
		switch {
		case j.status == meter.JobCanceled:
		case j.finished():
			return meter.Errorf(meter.ECodeJobFinished, "job finished")
		default:
			s.end(j, meter.JobCanceled)
		}
		return nil
	}
	panic("no step " + step)
}

func num(s string) float64 {
	var x float64
	if _, err := fmt.Sscan(s, &x); err != nil {
		panic(err)
	}
	return x
}

func cr(x int64) string { return meter.Credits(x).String() }

// state is the step's outcome, the named job and the account after it.
func (s *accountSim) state(name string, err error) string {
	out := strings.TrimSpace(s.out.String())
	s.out.Reset()
	if err != nil {
		out = "refused " + meter.ErrorCode(err)
		var me *meter.Error
		if errors.As(err, &me) {
			for _, key := range slices.Sorted(maps.Keys(me.Details)) {
				if v, ok := me.Details[key].(meter.Credits); ok {
					out += fmt.Sprintf(" %s %s", key, v)
				}
			}
		}
	}
	if j := s.jobs[name]; j != nil {
		var ps []string
		for _, c := range slices.Sorted(maps.Keys(j.charged)) {
			if j.charged[c] > 0 {
				ps = append(ps, fmt.Sprintf("%s:%d", c, j.charged[c]))
			}
		}
		var held int64
		if j.hold != nil {
			held = j.hold.Amount()
		}
		out += fmt.Sprintf(" | %s held %s debited %s", j.status, cr(held), cr(j.debited))
		if len(ps) > 0 {
			out += " pages " + strings.Join(ps, ",")
		}
		var owed int64
		for _, c := range j.classes() {
			owed += c.Owed * c.Rate
		}
		if owed > 0 {
			out += " owed " + cr(owed)
		}
		if j.failed > 0 {
			out += fmt.Sprintf(" failed %d", j.failed)
		}
		if j.final != "" {
			out += " final " + j.final
		}
	}
	a := s.a
	out += fmt.Sprintf(" | balance %s available %s", cr(a.Balance), cr(a.Balance-a.Reserved))
	if a.Period > 0 {
		out += fmt.Sprintf(" quota %s+%s overage %s+%s", cr(a.QUsed), cr(a.QRes), cr(a.OUsed), cr(a.ORes))
	}
	return strings.TrimSpace(out)
}
