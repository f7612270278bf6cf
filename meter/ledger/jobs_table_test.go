package ledger

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// The arithmetic of meter.JobStore's cases (meter/storetest's
// jobs_scripts.go runs the same steps, by the same names, on every store
// beside the model), on the model alone: see simCase.
func TestJobs(t *testing.T) { runSim(t, jobCases) }

// A simCase is an account (with a quota or an overage cap: in period 1)
// and steps (see accountSim.do), each with what it must do: "refused
// <code> <details>", "held <x>", or "charged <x> (usage <amount> quota
// <q> overage <o> after <balance>) <events>"; then, for a job's step,
// "| <status> held <x> debited <x> pages <class:n,...> owed <x> failed
// <n> final <status>"; then "| balance <b> available <a>" and, in a
// period, "quota <used>+<held> overage <used>+<held>". The ledger (the
// initial balance, purchases and usage entries) sums to the balance after
// every step.
type simCase struct {
	name                                 string
	balance, quota, overageCap, lowBelow float64
	steps                                [][2]string
}

func runSim(t *testing.T, cases []simCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Account{} // as a store creates one: the initial credits are a purchase, then the settings
			if tc.balance > 0 {
				if _, _, err := a.Grant(meter.EntryPurchase, k(tc.balance)); err != nil {
					t.Fatal(err)
				}
			}
			a.QuotaLimit, a.OverageCap = k(tc.quota), k(tc.overageCap)
			a.SetThreshold(k(tc.lowBelow))
			s := &accountSim{a: a, jobs: map[string]*simJob{}, holds: map[string]*simHold{}, sum: a.Balance}
			if tc.quota+tc.overageCap != 0 {
				s.month = 1
			}
			for i, st := range tc.steps {
				err := s.do(st[0])
				name := ""
				if f := strings.Fields(st[0]); len(f) > 1 && s.jobs[f[1]] != nil {
					name = f[1]
				}
				if got := s.state(name, err); got != st[1] {
					t.Errorf("step %d %q:\n got %s\nwant %s", i, st[0], got, st[1])
				}
				if s.sum != a.Balance {
					t.Errorf("step %d %q: the ledger sums to %d, balance %d", i, st[0], s.sum, a.Balance)
				}
			}
		})
	}
}

var jobCases = []simCase{
	{"create holds the estimate", 10, 0, 0, 0, [][2]string{
		{"create a 6 page=1", "held 6 | running held 6 debited 0 | balance 10 available 4"},
		{"hold 3", "held 3 | balance 10 available 1"},
		{"hold 2", "refused insufficient_credits available 1 required 2 | balance 10 available 1"},
	}},
	{"an estimate of 0 holds nothing", 0, 0, 0, 0, [][2]string{
		{"create a 0 page=1", "held 0 | running held 0 debited 0 | balance 0 available 0"},
	}},
	{"insufficient credits: a refused job's id is free", 10, 0, 0, 0, [][2]string{
		{"hold 4", "held 4 | balance 10 available 6"},
		{"create a 7 page=1", "refused insufficient_credits available 6 required 7 | balance 10 available 6"},
		{"create a 6 page=1", "held 6 | running held 6 debited 0 | balance 10 available 0"},
	}},
	{"refused like Reserve: quota exceeded", 0, 10, 0, 0, [][2]string{
		{"hold 12", "refused quota_exceeded limit 10 used 0 | balance 0 available 0 quota 0+0 overage 0+0"},
		{"create a 12 page=1", "refused quota_exceeded limit 10 used 0 | balance 0 available 0 quota 0+0 overage 0+0"},
		{"create b 10 page=1", "held 10 | running held 10 debited 0 | balance 0 available 0 quota 0+10 overage 0+0"},
	}},
	{"refused like Reserve: insufficient credits beyond the quota", 1, 10, 0, 0, [][2]string{
		{"hold 12", "refused insufficient_credits available 1 required 12 | balance 1 available 1 quota 0+0 overage 0+0"},
		{"create a 12 page=1", "refused insufficient_credits available 1 required 12 | balance 1 available 1 quota 0+0 overage 0+0"},
		{"create b 11 page=1", "held 11 | running held 11 debited 0 | balance 1 available 0 quota 0+10 overage 0+0"},
	}},
	{"refused like Reserve: overage limit reached", 2, 0, 5, 0, [][2]string{
		{"hold 8", "refused overage_limit_reached available 2 cap 5 required 8 | balance 2 available 2 quota 0+0 overage 0+0"},
		{"create a 8 page=1", "refused overage_limit_reached available 2 cap 5 required 8 | balance 2 available 2 quota 0+0 overage 0+0"},
		{"create b 7 page=1", "held 7 | running held 7 debited 0 | balance 2 available -5 quota 0+0 overage 0+5"},
	}},
	{"a job uses quota first", 5, 10, 0, 0, [][2]string{
		{"create a 12 page=1", "held 12 | running held 12 debited 0 | balance 5 available 3 quota 0+10 overage 0+0"},
		{"report a page=11", "charged 11 (usage -1 quota 10 overage 0 after 4) quota.exhausted[used 10 of 10] | running held 1 debited 11 pages page:11 | balance 4 available 3 quota 10+0 overage 0+0"},
		{"report a page=14", "charged 3 (usage -3 quota 0 overage 0 after 1) | running held 0 debited 14 pages page:14 | balance 1 available 1 quota 10+0 overage 0+0"},
		{"report a page=15 final=completed", "charged 1 (usage -1 quota 0 overage 0 after 0) | completed held 0 debited 15 pages page:15 | balance 0 available 0 quota 10+0 overage 0+0"},
	}},
	{"a job does not take another's quota", 1, 6, 0, 0, [][2]string{
		{"create a 2 page=1", "held 2 | running held 2 debited 0 | balance 1 available 1 quota 0+2 overage 0+0"},
		{"create b 4 page=2 scan=0.5", "held 4 | running held 4 debited 0 | balance 1 available 1 quota 0+6 overage 0+0"},
		{"report b page=2 scan=3", "charged 5 (usage -1 quota 4 overage 0 after 0) job.blocked | blocked_insufficient_credits held 0 debited 5 pages page:2,scan:2 owed 0.5 | balance 0 available 0 quota 4+2 overage 0+0"},
		{"report a page=2", "charged 2 (usage 0 quota 2 overage 0 after 0) quota.exhausted[used 6 of 6] | running held 0 debited 2 pages page:2 | balance 0 available 0 quota 6+0 overage 0+0"},
	}},
	{"a job reaches into the overage", 2, 0, 5, 0, [][2]string{
		{"create a 7 page=1", "held 7 | running held 7 debited 0 | balance 2 available -5 quota 0+0 overage 0+5"},
		{"report a page=3", "charged 3 (usage -3 quota 0 overage 1 after -1) | running held 4 debited 3 pages page:3 | balance -1 available -5 quota 0+0 overage 1+4"},
		{"cancel a", "| canceled held 0 debited 3 pages page:3 | balance -1 available -1 quota 0+0 overage 1+0"},
	}},
	{"reports are cumulative", 20, 0, 0, 0, [][2]string{
		{"create a 10 page=1", "held 10 | running held 10 debited 0 | balance 20 available 10"},
		{"report a page=3", "charged 3 (usage -3 quota 0 overage 0 after 17) | running held 7 debited 3 pages page:3 | balance 17 available 10"},
		{"report a page=3", "charged 0 | running held 7 debited 3 pages page:3 | balance 17 available 10"},
		{"report a page=2", "charged 0 | running held 7 debited 3 pages page:3 | balance 17 available 10"},
		{"report a", "charged 0 | running held 7 debited 3 pages page:3 | balance 17 available 10"},
		{"report a page=5 failed=2", "charged 2 (usage -2 quota 0 overage 0 after 15) | running held 5 debited 5 pages page:5 failed 2 | balance 15 available 10"},
		{"report a page=5 failed=1", "charged 0 | running held 5 debited 5 pages page:5 failed 2 | balance 15 available 10"},
		{"report a page=5 failed=4", "charged 0 | running held 5 debited 5 pages page:5 failed 4 | balance 15 available 10"},
		{"report a page=5 failed=3", "charged 0 | running held 5 debited 5 pages page:5 failed 4 | balance 15 available 10"},
	}},
	{"charges take the hold, then what is available", 10, 0, 0, 0, [][2]string{
		{"create a 4 page=1", "held 4 | running held 4 debited 0 | balance 10 available 6"},
		{"report a page=3", "charged 3 (usage -3 quota 0 overage 0 after 7) | running held 1 debited 3 pages page:3 | balance 7 available 6"},
		{"report a page=6", "charged 3 (usage -3 quota 0 overage 0 after 4) | running held 0 debited 6 pages page:6 | balance 4 available 4"},
		{"report a page=8", "charged 2 (usage -2 quota 0 overage 0 after 2) | running held 0 debited 8 pages page:8 | balance 2 available 2"},
	}},
	{"page classes", 50, 0, 0, 0, [][2]string{
		{"create a 20 drawing=8 document=0.5", "held 20 | running held 20 debited 0 | balance 50 available 30"},
		{"report a drawing=1 document=4", "charged 10 (usage -10 quota 0 overage 0 after 40) | running held 10 debited 10 pages document:4,drawing:1 | balance 40 available 30"},
		{"report a drawing=1 document=5", "charged 0.5 (usage -0.5 quota 0 overage 0 after 39.5) | running held 9.5 debited 10.5 pages document:5,drawing:1 | balance 39.5 available 30"},
		{"report a drawing=2", "charged 8 (usage -8 quota 0 overage 0 after 31.5) | running held 1.5 debited 18.5 pages document:5,drawing:2 | balance 31.5 available 30"},
	}},
	{"a class of rate 0 is always covered", 0, 0, 0, 0, [][2]string{
		{"create a 0 free=0 page=1", "held 0 | running held 0 debited 0 | balance 0 available 0"},
		{"report a free=5", "charged 0 | running held 0 debited 0 pages free:5 | balance 0 available 0"},
		{"report a free=7 page=1", "charged 0 job.blocked | blocked_insufficient_credits held 0 debited 0 pages free:7 owed 1 | balance 0 available 0"},
	}},
	{"completion releases the rest and freezes the job", 20, 0, 0, 0, [][2]string{
		{"create a 10 page=1", "held 10 | running held 10 debited 0 | balance 20 available 10"},
		{"report a page=4", "charged 4 (usage -4 quota 0 overage 0 after 16) | running held 6 debited 4 pages page:4 | balance 16 available 10"},
		{"report a page=6 failed=1 final=completed", "charged 2 (usage -2 quota 0 overage 0 after 14) | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=6 failed=1 final=completed", "| completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=7 failed=1 final=completed", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=6 failed=1", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=6 failed=1 final=failed", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=6 failed=2 final=completed", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"report a page=5 failed=1 final=completed", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"resume a", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
		{"cancel a", "refused job_finished | completed held 0 debited 6 pages page:6 failed 1 | balance 14 available 14"},
	}},
	{"a failed job pays for its done pages", 10, 0, 0, 0, [][2]string{
		{"create a 5 page=1", "held 5 | running held 5 debited 0 | balance 10 available 5"},
		{"report a page=2 failed=3 final=failed", "charged 2 (usage -2 quota 0 overage 0 after 8) | failed held 0 debited 2 pages page:2 failed 3 | balance 8 available 8"},
		{"report a page=3", "refused job_finished | failed held 0 debited 2 pages page:2 failed 3 | balance 8 available 8"},
		{"report a page=2 failed=3 final=failed", "| failed held 0 debited 2 pages page:2 failed 3 | balance 8 available 8"},
	}},
	{"a job completed with no pages charges nothing", 10, 0, 0, 0, [][2]string{
		{"create a 5 page=1", "held 5 | running held 5 debited 0 | balance 10 available 5"},
		{"report a final=completed", "charged 0 | completed held 0 debited 0 | balance 10 available 10"},
	}},
	{"cancel releases the hold and keeps the charges", 10, 0, 0, 0, [][2]string{
		{"create a 6 page=1", "held 6 | running held 6 debited 0 | balance 10 available 4"},
		{"report a page=2", "charged 2 (usage -2 quota 0 overage 0 after 8) | running held 4 debited 2 pages page:2 | balance 8 available 4"},
		{"cancel a", "| canceled held 0 debited 2 pages page:2 | balance 8 available 8"},
		{"cancel a", "| canceled held 0 debited 2 pages page:2 | balance 8 available 8"},
		{"report a page=3", "refused job_finished | canceled held 0 debited 2 pages page:2 | balance 8 available 8"},
		{"resume a", "refused job_finished | canceled held 0 debited 2 pages page:2 | balance 8 available 8"},
	}},
	{"a completed or failed job cannot be canceled", 10, 0, 0, 0, [][2]string{
		{"create a 2 page=1", "held 2 | running held 2 debited 0 | balance 10 available 8"},
		{"report a page=1 final=completed", "charged 1 (usage -1 quota 0 overage 0 after 9) | completed held 0 debited 1 pages page:1 | balance 9 available 9"},
		{"cancel a", "refused job_finished | completed held 0 debited 1 pages page:1 | balance 9 available 9"},
		{"create b 2 page=1", "held 2 | running held 2 debited 0 | balance 9 available 7"},
		{"report b page=1 final=failed", "charged 1 (usage -1 quota 0 overage 0 after 8) | failed held 0 debited 1 pages page:1 | balance 8 available 8"},
		{"cancel b", "refused job_finished | failed held 0 debited 1 pages page:1 | balance 8 available 8"},
	}},
	{"a blocked job is resumed once paid, and no page is charged twice or skipped", 10, 0, 0, 0, [][2]string{
		{"create a 6 page=4", "held 6 | running held 6 debited 0 | balance 10 available 4"},
		{"report a page=3", "charged 8 (usage -8 quota 0 overage 0 after 2) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 2 available 2"},
		{"report a page=5 failed=1", "| blocked_insufficient_credits held 0 debited 8 pages page:2 owed 12 failed 1 | balance 2 available 2"},
		{"resume a", "refused insufficient_credits available 2 required 16 | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 12 failed 1 | balance 2 available 2"},
		{"buy 20", "| balance 22 available 22"},
		{"resume a", "charged 12 (usage -12 quota 0 overage 0 after 10) | running held 4 debited 20 pages page:5 failed 1 | balance 10 available 6"},
		{"resume a", "| running held 4 debited 20 pages page:5 failed 1 | balance 10 available 6"},
		{"report a page=6 failed=1", "charged 4 (usage -4 quota 0 overage 0 after 6) | running held 0 debited 24 pages page:6 failed 1 | balance 6 available 6"},
		{"report a page=6 failed=1 final=completed", "charged 0 | completed held 0 debited 24 pages page:6 failed 1 | balance 6 available 6"},
	}},
	{"pages are charged whole", 10, 0, 0, 0, [][2]string{
		{"create a 0 page=3", "held 0 | running held 0 debited 0 | balance 10 available 10"},
		{"report a page=4", "charged 9 (usage -9 quota 0 overage 0 after 1) job.blocked | blocked_insufficient_credits held 0 debited 9 pages page:3 owed 3 | balance 1 available 1"},
	}},
	{"classes are charged in name order", 10, 0, 0, 0, [][2]string{
		{"create a 0 drawing=4 document=3", "held 0 | running held 0 debited 0 | balance 10 available 10"},
		{"report a drawing=2 document=2", "charged 10 (usage -10 quota 0 overage 0 after 0) job.blocked | blocked_insufficient_credits held 0 debited 10 pages document:2,drawing:1 owed 4 | balance 0 available 0"},
	}},
	{"a class that cannot be paid leaves the budget to the next", 6, 0, 0, 0, [][2]string{
		{"create a 0 alpha=4 beta=1", "held 0 | running held 0 debited 0 | balance 6 available 6"},
		{"report a alpha=2 beta=2", "charged 6 (usage -6 quota 0 overage 0 after 0) job.blocked | blocked_insufficient_credits held 0 debited 6 pages alpha:1,beta:2 owed 4 | balance 0 available 0"},
	}},
	{"blocking releases what is left of the hold", 10, 0, 0, 0, [][2]string{
		{"create a 10 page=4", "held 10 | running held 10 debited 0 | balance 10 available 0"},
		{"report a page=3", "charged 8 (usage -8 quota 0 overage 0 after 2) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 2 available 2"},
	}},
	{"a page dearer than hold and balance: nothing charged", 25, 0, 0, 0, [][2]string{
		{"create a 20 page=30", "held 20 | running held 20 debited 0 | balance 25 available 5"},
		{"report a page=1", "charged 0 job.blocked | blocked_insufficient_credits held 0 debited 0 owed 30 | balance 25 available 25"},
		{"resume a", "refused insufficient_credits available 25 required 60 | blocked_insufficient_credits held 0 debited 0 owed 30 | balance 25 available 25"},
	}},
	{"a job with nothing to spend blocks at once", 0, 0, 0, 0, [][2]string{
		{"create a 0 page=1", "held 0 | running held 0 debited 0 | balance 0 available 0"},
		{"report a page=1", "charged 0 job.blocked | blocked_insufficient_credits held 0 debited 0 owed 1 | balance 0 available 0"},
	}},
	{"resume holds a page at the highest rate", 10, 0, 0, 0, [][2]string{
		{"create a 2 document=1 drawing=8", "held 2 | running held 2 debited 0 | balance 10 available 8"},
		{"report a document=12", "charged 10 (usage -10 quota 0 overage 0 after 0) job.blocked | blocked_insufficient_credits held 0 debited 10 pages document:10 owed 2 | balance 0 available 0"},
		{"buy 9", "| balance 9 available 9"},
		{"resume a", "refused insufficient_credits available 9 required 10 | blocked_insufficient_credits held 0 debited 10 pages document:10 owed 2 | balance 9 available 9"},
		{"buy 1", "| balance 10 available 10"},
		{"resume a", "charged 2 (usage -2 quota 0 overage 0 after 8) | running held 8 debited 12 pages document:12 | balance 8 available 0"},
		{"report a document=12 drawing=1", "charged 8 (usage -8 quota 0 overage 0 after 0) | running held 0 debited 20 pages document:12,drawing:1 | balance 0 available 0"},
		{"report a drawing=2", "charged 0 job.blocked | blocked_insufficient_credits held 0 debited 20 pages document:12,drawing:1 owed 8 | balance 0 available 0"},
	}},
	{"a final report while blocked is applied by resume", 10, 0, 0, 0, [][2]string{
		{"create a 4 page=4", "held 4 | running held 4 debited 0 | balance 10 available 6"},
		{"report a page=4 final=completed", "charged 8 (usage -8 quota 0 overage 0 after 2) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 8 final completed | balance 2 available 2"},
		{"resume a", "refused insufficient_credits available 2 required 8 | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 8 final completed | balance 2 available 2"},
		{"buy 6", "| balance 8 available 8"},
		{"resume a", "charged 8 (usage -8 quota 0 overage 0 after 0) | completed held 0 debited 16 pages page:4 | balance 0 available 0"},
		{"report a page=4 final=completed", "| completed held 0 debited 16 pages page:4 | balance 0 available 0"},
		{"report a page=5", "refused job_finished | completed held 0 debited 16 pages page:4 | balance 0 available 0"},
		{"resume a", "refused job_finished | completed held 0 debited 16 pages page:4 | balance 0 available 0"},
	}},
	{"a failure reported while blocked is applied by resume", 10, 0, 0, 0, [][2]string{
		{"create a 6 page=4", "held 6 | running held 6 debited 0 | balance 10 available 4"},
		{"report a page=3", "charged 8 (usage -8 quota 0 overage 0 after 2) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 2 available 2"},
		{"report a page=4 failed=2 final=failed", "| blocked_insufficient_credits held 0 debited 8 pages page:2 owed 8 failed 2 final failed | balance 2 available 2"},
		{"buy 6", "| balance 8 available 8"},
		{"resume a", "charged 8 (usage -8 quota 0 overage 0 after 0) | failed held 0 debited 16 pages page:4 failed 2 | balance 0 available 0"},
	}},
	{"a blocked job can be canceled: its owed pages are never charged", 10, 0, 0, 0, [][2]string{
		{"create a 6 page=4", "held 6 | running held 6 debited 0 | balance 10 available 4"},
		{"report a page=3", "charged 8 (usage -8 quota 0 overage 0 after 2) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 2 available 2"},
		{"cancel a", "| canceled held 0 debited 8 pages page:2 owed 4 | balance 2 available 2"},
		{"buy 20", "| balance 22 available 22"},
		{"resume a", "refused job_finished | canceled held 0 debited 8 pages page:2 owed 4 | balance 22 available 22"},
		{"cancel a", "| canceled held 0 debited 8 pages page:2 owed 4 | balance 22 available 22"},
	}},
	{"resume pays from the quota, then the balance", 0, 10, 0, 0, [][2]string{
		{"create a 0 page=4", "held 0 | running held 0 debited 0 | balance 0 available 0 quota 0+0 overage 0+0"},
		{"report a page=3", "charged 8 (usage 0 quota 8 overage 0 after 0) job.blocked | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 0 available 0 quota 8+0 overage 0+0"},
		{"resume a", "refused insufficient_credits available 2 required 8 | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 0 available 0 quota 8+0 overage 0+0"},
		{"buy 5", "| balance 5 available 5 quota 8+0 overage 0+0"},
		{"resume a", "refused insufficient_credits available 7 required 8 | blocked_insufficient_credits held 0 debited 8 pages page:2 owed 4 | balance 5 available 5 quota 8+0 overage 0+0"},
		{"buy 1", "| balance 6 available 6 quota 8+0 overage 0+0"},
		{"resume a", "charged 4 (usage -2 quota 2 overage 0 after 4) quota.exhausted[used 10 of 10] | running held 4 debited 12 pages page:3 | balance 4 available 0 quota 10+0 overage 0+0"},
	}},
	{"a job blocks at the overage cap and resumes from the balance", 2, 0, 3, 0, [][2]string{
		{"create a 0 page=1", "held 0 | running held 0 debited 0 | balance 2 available 2 quota 0+0 overage 0+0"},
		{"report a page=6", "charged 5 (usage -5 quota 0 overage 3 after -3) overage.limit_reached[used 3 of 3] job.blocked | blocked_insufficient_credits held 0 debited 5 pages page:5 owed 1 | balance -3 available -3 quota 0+0 overage 3+0"},
		{"resume a", "refused insufficient_credits available 0 required 2 | blocked_insufficient_credits held 0 debited 5 pages page:5 owed 1 | balance -3 available -3 quota 0+0 overage 3+0"},
		{"buy 10", "| balance 7 available 7 quota 0+0 overage 3+0"},
		{"resume a", "charged 1 (usage -1 quota 0 overage 0 after 6) | running held 1 debited 6 pages page:6 | balance 6 available 5 quota 0+0 overage 3+0"},
	}},
	{"each blocking records one job.blocked event", 5, 0, 0, 0, [][2]string{
		{"create a 0 page=2", "held 0 | running held 0 debited 0 | balance 5 available 5"},
		{"report a page=3", "charged 4 (usage -4 quota 0 overage 0 after 1) job.blocked | blocked_insufficient_credits held 0 debited 4 pages page:2 owed 2 | balance 1 available 1"},
		{"report a page=4", "| blocked_insufficient_credits held 0 debited 4 pages page:2 owed 4 | balance 1 available 1"},
		{"resume a", "refused insufficient_credits available 1 required 6 | blocked_insufficient_credits held 0 debited 4 pages page:2 owed 4 | balance 1 available 1"},
		{"buy 10", "| balance 11 available 11"},
		{"resume a", "charged 4 (usage -4 quota 0 overage 0 after 7) | running held 2 debited 8 pages page:4 | balance 7 available 5"},
		{"report a page=10", "charged 6 (usage -6 quota 0 overage 0 after 1) job.blocked | blocked_insufficient_credits held 0 debited 14 pages page:7 owed 6 | balance 1 available 1"},
	}},
	{"a job's charge crosses the low-balance threshold", 10, 0, 0, 5, [][2]string{
		{"create a 4 page=1", "held 4 | running held 4 debited 0 | balance 10 available 6"},
		{"report a page=6", "charged 6 (usage -6 quota 0 overage 0 after 4) credits.low_balance[below 5] | running held 0 debited 6 pages page:6 | balance 4 available 4"},
	}},
	{"a job's charge exhausts the quota", 5, 10, 0, 0, [][2]string{
		{"create a 0 page=1", "held 0 | running held 0 debited 0 | balance 5 available 5 quota 0+0 overage 0+0"},
		{"report a page=10", "charged 10 (usage 0 quota 10 overage 0 after 5) quota.exhausted[used 10 of 10] | running held 0 debited 10 pages page:10 | balance 5 available 5 quota 10+0 overage 0+0"},
	}},
}
