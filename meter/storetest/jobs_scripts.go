package storetest

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// The money of meter.JobStore, as scripts the store runs step by step
// beside the model (model_script.go). Each was a hand-computed case of
// jobs.go; its numbers are in meter/ledger's TestJobs
// (jobs_table_test.go), under the same name.

// blocked is balance 10, a job "a" of rate 4 a page and estimate 6, 3
// pages reported: 2 charged (the hold's 6 and 2 of the balance), 1 owed.
var blocked = []sstep{create("a", 6, rates{"page": c(4)}), report("a", pages{"page": 3})}

func then(first []sstep, more ...sstep) []sstep { return append(append([]sstep{}, first...), more...) }

var jobScripts = []script{
	{name: "create holds the estimate", balance: 10, steps: []sstep{
		create("a", 6, rates{"page": c(1)}), holdOther(3), holdOther(2)}},
	{name: "an estimate of 0 holds nothing", steps: []sstep{create("a", 0, rates{"page": c(1)})}},
	{name: "insufficient credits: a refused job's id is free", balance: 10, steps: []sstep{
		holdOther(4), create("a", 7, rates{"page": c(1)}), create("a", 6, rates{"page": c(1)})}},
	{name: "refused like Reserve: quota exceeded", quota: 10, steps: []sstep{
		holdOther(12), create("a", 12, rates{"page": c(1)}), create("b", 10, rates{"page": c(1)})}},
	{name: "refused like Reserve: insufficient credits beyond the quota", balance: 1, quota: 10, steps: []sstep{
		holdOther(12), create("a", 12, rates{"page": c(1)}), create("b", 11, rates{"page": c(1)})}},
	{name: "refused like Reserve: overage limit reached", balance: 2, overageCap: 5, steps: []sstep{
		holdOther(8), create("a", 8, rates{"page": c(1)}), create("b", 7, rates{"page": c(1)})}},
	{name: "a job uses quota first", balance: 5, quota: 10, steps: []sstep{
		create("a", 12, rates{"page": c(1)}), report("a", pages{"page": 11}), report("a", pages{"page": 14}),
		finish("a", pages{"page": 15}, 0, meter.JobCompleted)}},
	{name: "a job does not take another's quota", balance: 1, quota: 6, steps: []sstep{
		create("a", 2, rates{"page": c(1)}), create("b", 4, rates{"page": c(2), "scan": c(0.5)}),
		report("b", pages{"page": 2, "scan": 3}), report("a", pages{"page": 2})}},
	{name: "a job reaches into the overage", balance: 2, overageCap: 5, steps: []sstep{
		create("a", 7, rates{"page": c(1)}), report("a", pages{"page": 3}), cancel("a")}},
	{name: "reports are cumulative", balance: 20, steps: []sstep{
		create("a", 10, rates{"page": c(1)}), report("a", pages{"page": 3}), report("a", pages{"page": 3}),
		report("a", pages{"page": 2}), report("a", nil), failing("a", pages{"page": 5}, 2),
		failing("a", pages{"page": 5}, 1), failing("a", pages{"page": 5}, 4), failing("a", pages{"page": 5}, 3)}},
	{name: "charges take the hold, then what is available", balance: 10, steps: []sstep{
		create("a", 4, rates{"page": c(1)}), report("a", pages{"page": 3}), report("a", pages{"page": 6}),
		report("a", pages{"page": 8})}},
	{name: "page classes", balance: 50, steps: []sstep{
		create("a", 20, rates{"drawing": c(8), "document": c(0.5)}), report("a", pages{"drawing": 1, "document": 4}),
		report("a", pages{"drawing": 1, "document": 5}), report("a", pages{"drawing": 2})}},
	{name: "a class of rate 0 is always covered", steps: []sstep{
		create("a", 0, rates{"free": 0, "page": c(1)}), report("a", pages{"free": 5}),
		report("a", pages{"free": 7, "page": 1})}},
	{name: "completion releases the rest and freezes the job", balance: 20, steps: []sstep{
		create("a", 10, rates{"page": c(1)}), report("a", pages{"page": 4}),
		finish("a", pages{"page": 6}, 1, meter.JobCompleted), finish("a", pages{"page": 6}, 1, meter.JobCompleted),
		finish("a", pages{"page": 7}, 1, meter.JobCompleted), failing("a", pages{"page": 6}, 1),
		finish("a", pages{"page": 6}, 1, meter.JobFailed), finish("a", pages{"page": 6}, 2, meter.JobCompleted),
		finish("a", pages{"page": 5}, 1, meter.JobCompleted), resume("a"), cancel("a")}},
	{name: "a failed job pays for its done pages", balance: 10, steps: []sstep{
		create("a", 5, rates{"page": c(1)}), finish("a", pages{"page": 2}, 3, meter.JobFailed),
		report("a", pages{"page": 3}), finish("a", pages{"page": 2}, 3, meter.JobFailed)}},
	{name: "a job completed with no pages charges nothing", balance: 10, steps: []sstep{
		create("a", 5, rates{"page": c(1)}), finish("a", nil, 0, meter.JobCompleted)}},
	{name: "cancel releases the hold and keeps the charges", balance: 10, steps: []sstep{
		create("a", 6, rates{"page": c(1)}), report("a", pages{"page": 2}), cancel("a"), cancel("a"),
		report("a", pages{"page": 3}), resume("a")}},
	{name: "a completed or failed job cannot be canceled", balance: 10, steps: []sstep{
		create("a", 2, rates{"page": c(1)}), finish("a", pages{"page": 1}, 0, meter.JobCompleted), cancel("a"),
		create("b", 2, rates{"page": c(1)}), finish("b", pages{"page": 1}, 0, meter.JobFailed), cancel("b")}},
	{name: "a blocked job is resumed once paid, and no page is charged twice or skipped", balance: 10, steps: then(blocked,
		failing("a", pages{"page": 5}, 1), resume("a"), buy(20), resume("a"), resume("a"), report("a", pages{"page": 6}),
		finish("a", pages{"page": 6}, 1, meter.JobCompleted))},
	{name: "pages are charged whole", balance: 10, steps: []sstep{
		create("a", 0, rates{"page": c(3)}), report("a", pages{"page": 4})}},
	{name: "classes are charged in name order", balance: 10, steps: []sstep{
		create("a", 0, rates{"drawing": c(4), "document": c(3)}), report("a", pages{"drawing": 2, "document": 2})}},
	{name: "a class that cannot be paid leaves the budget to the next", balance: 6, steps: []sstep{
		create("a", 0, rates{"alpha": c(4), "beta": c(1)}), report("a", pages{"alpha": 2, "beta": 2})}},
	{name: "blocking releases what is left of the hold", balance: 10, steps: []sstep{
		create("a", 10, rates{"page": c(4)}), report("a", pages{"page": 3})}},
	{name: "a page dearer than hold and balance: nothing charged", balance: 25, steps: []sstep{
		create("a", 20, rates{"page": c(30)}), report("a", pages{"page": 1}), resume("a")}},
	{name: "a job with nothing to spend blocks at once", steps: []sstep{
		create("a", 0, rates{"page": c(1)}), report("a", pages{"page": 1})}},
	{name: "resume holds a page at the highest rate", balance: 10, steps: []sstep{
		create("a", 2, rates{"document": c(1), "drawing": c(8)}), report("a", pages{"document": 12}), buy(9), resume("a"),
		buy(1), resume("a"), report("a", pages{"document": 12, "drawing": 1}), report("a", pages{"drawing": 2})}},
	{name: "a final report while blocked is applied by resume", balance: 10, steps: []sstep{
		create("a", 4, rates{"page": c(4)}), finish("a", pages{"page": 4}, 0, meter.JobCompleted), resume("a"), buy(6),
		resume("a"), finish("a", pages{"page": 4}, 0, meter.JobCompleted), report("a", pages{"page": 5}), resume("a")}},
	{name: "a failure reported while blocked is applied by resume", balance: 10, steps: then(blocked,
		finish("a", pages{"page": 4}, 2, meter.JobFailed), buy(6), resume("a"))},
	{name: "a blocked job can be canceled: its owed pages are never charged", balance: 10, steps: then(blocked,
		cancel("a"), buy(20), resume("a"), cancel("a"))},
	{name: "resume pays from the quota, then the balance", quota: 10, steps: []sstep{
		create("a", 0, rates{"page": c(4)}), report("a", pages{"page": 3}), resume("a"), buy(5), resume("a"), buy(1),
		resume("a")}},
	{name: "a job blocks at the overage cap and resumes from the balance", balance: 2, overageCap: 3, steps: []sstep{
		create("a", 0, rates{"page": c(1)}), report("a", pages{"page": 6}), resume("a"), buy(10), resume("a")}},
	{name: "each blocking records one job.blocked event", balance: 5, steps: []sstep{
		create("a", 0, rates{"page": c(2)}), report("a", pages{"page": 3}), report("a", pages{"page": 4}), resume("a"),
		buy(10), resume("a"), report("a", pages{"page": 10})}},
	{name: "a job's charge crosses the low-balance threshold", balance: 10, lowBelow: 5, steps: []sstep{
		create("a", 4, rates{"page": c(1)}), report("a", pages{"page": 6})}},
	{name: "a job's charge exhausts the quota", balance: 5, quota: 10, steps: []sstep{
		create("a", 0, rates{"page": c(1)}), report("a", pages{"page": 10})}},
}

// testScripts runs the scripts of jobs, of the pools of a period
// (quota_scripts.go), of settles (settle_scripts.go), of threshold events
// (events_scripts.go) and of refunds (refund_scripts.go) side by side: some
// sleep past a TTL.
func testScripts(t *testing.T, s meter.Store) {
	for _, g := range []struct {
		name    string
		scripts []script
	}{{"Jobs", jobScripts}, {"Quota", quotaScripts}, {"Settle", settleScripts}, {"Events", eventScripts},
		{"Refunds", refundScripts}} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			runScripts(t, s, g.scripts)
		})
	}
}
