package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The assertions of the job cases (jobs.go, jobs_expiry.go,
// jobs_concurrent.go) and scripts (model_script.go).

// jobWant is a job's state as a case states it.
type jobWant struct {
	Status            string
	Reserved, Debited meter.Credits
	Pages, Reported   pages
	Failed            int
	// Final is checked while the job is running or blocked.
	Final string
}

// nonzero drops the zero counts of a map, so that a class with no pages
// may be absent or 0.
func nonzero(m pages) pages {
	out := pages{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// checkJob asserts a job's state and the invariants of every job: Debited
// is the charged pages times the rates, no class is charged beyond what
// was reported, FinishedAt is set exactly when the job is finished.
func checkJob(t testing.TB, what string, j meter.Job, w jobWant) {
	t.Helper()
	if j.Status != w.Status || j.Reserved != w.Reserved || j.Debited != w.Debited || j.Failed != w.Failed ||
		!reflect.DeepEqual(nonzero(j.Pages), nonzero(w.Pages)) || !reflect.DeepEqual(nonzero(j.Reported), nonzero(w.Reported)) {
		t.Errorf("%s: job %s: status %s reserved %s debited %s pages %v reported %v failed %d;\n"+
			"want status %s reserved %s debited %s pages %v reported %v failed %d",
			what, j.ID, j.Status, j.Reserved, j.Debited, j.Pages, j.Reported, j.Failed,
			w.Status, w.Reserved, w.Debited, w.Pages, w.Reported, w.Failed)
	}
	if !j.Finished() && j.Final != w.Final {
		t.Errorf("%s: job %s: final %q, want %q", what, j.ID, j.Final, w.Final)
	}
	checkJobInvariants(t, what, j)
}

func checkJobInvariants(t testing.TB, what string, j meter.Job) {
	t.Helper()
	var cost meter.Credits
	for cl, n := range j.Pages {
		if n > j.Reported[cl] {
			t.Errorf("%s: job %s: %d %s pages charged, %d reported", what, j.ID, n, cl, j.Reported[cl])
		}
		if _, ok := j.Rates[cl]; !ok && n != 0 {
			t.Errorf("%s: job %s: pages of class %q, which has no rate", what, j.ID, cl)
		}
		cost += meter.Credits(n) * j.Rates[cl]
	}
	if cost != j.Debited {
		t.Errorf("%s: job %s: debited %s, its pages %v at %v cost %s", what, j.ID, j.Debited, j.Pages, j.Rates, cost)
	}
	if j.Reserved < 0 || (j.Finished() || j.Status == meter.JobBlocked) && j.Reserved != 0 {
		t.Errorf("%s: job %s is %s and holds %s", what, j.ID, j.Status, j.Reserved)
	}
	if j.Finished() == j.FinishedAt.IsZero() {
		t.Errorf("%s: job %s is %s, finished at %v", what, j.ID, j.Status, j.FinishedAt)
	}
}

// checkResult asserts what a call charged and the account after it. A
// call that charged something names its entry; one that did not, none.
func checkResult(t testing.TB, what string, r meter.JobResult, charged, balance, available meter.Credits) {
	t.Helper()
	if r.Charged != charged || r.Balance != balance || r.Available != available || (charged != 0) != (r.EntryID != "") {
		t.Errorf("%s: charged %s entry %q balance %s available %s; want charged %s, balance %s, available %s",
			what, r.Charged, r.EntryID, r.Balance, r.Available, charged, balance, available)
	}
}

// sameJob fails unless two reads of a job agree on every field.
func sameJob(t testing.TB, what string, got, want meter.Job) {
	t.Helper()
	norm := func(j meter.Job) meter.Job {
		j.Pages, j.Reported = nonzero(j.Pages), nonzero(j.Reported)
		if len(j.Rates) == 0 {
			j.Rates = nil
		}
		for _, tm := range []*time.Time{&j.CreatedAt, &j.UpdatedAt, &j.ExpiresAt, &j.FinishedAt} {
			*tm = tm.Round(0).UTC()
		}
		return j
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// jobEntries returns a job's usage entries, oldest first.
func jobEntries(t testing.TB, s meter.Store, acct, job string) []meter.LedgerEntry {
	t.Helper()
	var out []meter.LedgerEntry
	for _, e := range oldestFirst(t, s, acct) {
		if e.ReservationID == job {
			if e.JobID != job {
				t.Errorf("job usage entry %s has job_id %q, want %q", e.ID, e.JobID, job)
			}
			out = append(out, e)
		}
	}
	return out
}

// charged is what a usage entry took from every pool.
func charged(e meter.LedgerEntry) meter.Credits { return e.Quota - e.Amount }

// logLedger logs an account's ledger, to explain a failure.
func logLedger(t testing.TB, s meter.Store, acct string) {
	t.Helper()
	for _, e := range oldestFirst(t, s, acct) {
		t.Logf("%s %-8s amount %8s quota %8s overage %8s after %8s pages %3d %s %s", e.ID, e.Type, e.Amount, e.Quota,
			e.Overage, e.BalanceAfter, e.Pages, e.Route, e.ReservationID)
	}
}

// sameDetails compares error details, times by Equal.
func sameDetails(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		if tv, isTime := v.(time.Time); isTime {
			if tw, ok := w.(time.Time); !ok || !tv.Equal(tw) {
				return false
			}
		} else if !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}

// near reports whether a is within d of b.
func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }
