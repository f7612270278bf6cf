package storetest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// jobCounts are the cumulative counts of one job's upstream: they only
// grow, so a report of them read at any time is a true cumulative report,
// however late it arrives.
type jobCounts struct {
	done   map[string]*atomic.Int64
	failed atomic.Int64
}

func newJobCounts(r rates) *jobCounts {
	jc := &jobCounts{done: map[string]*atomic.Int64{}}
	for cl := range r {
		jc.done[cl] = new(atomic.Int64)
	}
	return jc
}

func (jc *jobCounts) snapshot() pages {
	p := pages{}
	for cl, n := range jc.done {
		p[cl] = int(n.Load())
	}
	return p
}

// raceJobs reports on jobs from several goroutines each (one more page of
// a random class, then the counts so far), while other goroutines reserve
// and commit or void ordinary requests, grant credits now and then and
// resume the jobs, and a watcher checks the account. It returns the final
// counts of each job.
func raceJobs(t *testing.T, s meter.Store, acct string, p meter.Period, jobs []meter.JobRequest,
	watch func(a meter.Account) error) []*jobCounts {
	counts := make([]*jobCounts, len(jobs))
	for i, j := range jobs {
		counts[i] = newJobCounts(j.Rates)
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := s.Account(ctx, acct)
			if err == nil {
				err = watch(a)
			}
			if err != nil {
				t.Errorf("account %+v: %v", a, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for i, j := range jobs {
		classes := meter.Job{Rates: j.Rates}.Classes()
		for range 3 {
			wg.Go(func() {
				for range 12 {
					jc := counts[i]
					jc.done[classes[rand.IntN(len(classes))]].Add(1)
					if rand.IntN(4) == 0 {
						jc.failed.Add(1)
					}
					r := meter.JobReport{AccountID: acct, JobID: j.ID, Done: jc.snapshot(), Failed: int(jc.failed.Load()),
						RequestID: newID("rq"), Period: p}
					if _, err := s.ReportJob(ctx, r); err != nil {
						t.Errorf("ReportJob(%s): %v", j.ID, err)
						return
					}
				}
			})
		}
	}
	for range 3 {
		wg.Go(func() {
			for range 10 {
				rid := newRID()
				amount := c(0.5) * meter.Credits(1+rand.IntN(3))
				if _, err := reserveIn(s, acct, rid, amount, p, time.Minute); err != nil {
					switch meter.ErrorCode(err) {
					case meter.ECodeInsufficientCredits, meter.ECodeQuotaExceeded, meter.ECodeOverageLimitReached:
					default:
						t.Error(err)
					}
					continue
				}
				var err error
				if rand.IntN(3) == 0 {
					_, err = s.Void(ctx, acct, rid)
				} else {
					_, err = s.Commit(ctx, meter.CommitRequest{AccountID: acct, ReservationID: rid,
						Amount: meter.Credits(rand.Int64N(int64(amount) + 1)), Route: "/convert", Pages: 1})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 6 {
			time.Sleep(3 * time.Millisecond)
			if _, err := s.Grant(ctx, meter.Grant{AccountID: acct, Amount: c(2), Type: meter.EntryPurchase}); err != nil {
				t.Error(err)
			}
			for _, j := range jobs {
				if _, err := s.ResumeJob(ctx, acct, j.ID, p, ""); err != nil &&
					meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
					t.Errorf("ResumeJob(%s): %v", j.ID, err)
				}
			}
		}
	})
	wg.Wait()
	close(stop)
	<-watched
	return counts
}

// settleJobs checks each job after a race, then pays for what is owed and
// completes it with its final counts: every page reported is charged
// exactly once.
func settleJobs(t *testing.T, s meter.Store, acct string, p meter.Period, jobs []meter.JobRequest, counts []*jobCounts) {
	t.Helper()
	var held meter.Credits
	for i, r := range jobs {
		j := mustJob(t, s, acct, r.ID)
		checkJobInvariants(t, "after the race", j)
		want := counts[i].snapshot()
		if !reflect.DeepEqual(nonzero(j.Reported), nonzero(want)) || j.Failed != int(counts[i].failed.Load()) ||
			(j.Status != meter.JobRunning && j.Status != meter.JobBlocked) {
			t.Errorf("after the race: job %+v; reported %v, %d failed", j, want, counts[i].failed.Load())
		}
		var sum meter.Credits
		n := 0
		for _, e := range jobEntries(t, s, acct, r.ID) {
			sum += charged(e)
			n += e.Pages
		}
		if sum != j.Debited || n != j.SuccessfulPages() {
			t.Errorf("after the race: job %s debited %s for %d pages; its entries %s for %d", j.ID, j.Debited, j.SuccessfulPages(), sum, n)
		}
		held += j.Reserved
	}
	a, err := s.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	// Every request was committed or voided: what is reserved is the jobs'.
	if a.Reserved+a.Quota.Reserved != held {
		t.Errorf("after the race: reserved %s + quota %s; the jobs hold %s", a.Reserved, a.Quota.Reserved, held)
	}
	checkInvariant(t, oldestFirst(t, s, acct), a.Balance)

	grant(t, s, acct, c(1000), meter.EntryPurchase, "")
	var pagesAll int64
	var debited meter.Credits
	for i, r := range jobs {
		final := meter.JobReport{AccountID: acct, JobID: r.ID, Done: counts[i].snapshot(),
			Failed: int(counts[i].failed.Load()), Final: meter.JobCompleted, Period: p}
		res := mustReport(t, s, final)
		if res.Job.Status == meter.JobBlocked {
			res = mustResumeIn(t, s, acct, r.ID, p)
		}
		j := res.Job
		var cost meter.Credits
		for cl, n := range final.Done {
			cost += meter.Credits(n) * r.Rates[cl]
		}
		checkJob(t, "settled", j, jobWant{Status: meter.JobCompleted, Debited: cost, Pages: final.Done,
			Reported: final.Done, Failed: final.Failed})
		var sum meter.Credits
		n := 0
		for _, e := range jobEntries(t, s, acct, r.ID) {
			sum += charged(e)
			n += e.Pages
		}
		if sum != cost || n != j.SuccessfulPages() {
			t.Errorf("settled: job %s: entries charged %s for %d pages; want %s for %d", j.ID, sum, n, cost, j.SuccessfulPages())
		}
		pagesAll += int64(n)
		debited += cost
	}
	a, err = s.Account(ctx, acct)
	if err != nil || a.Reserved != 0 || a.Quota.Reserved != 0 || a.Overage.Reserved != 0 {
		t.Errorf("settled: account %+v, %v", a, err)
	}
	es := oldestFirst(t, s, acct)
	checkInvariant(t, es, a.Balance)
	var used meter.Credits
	for _, e := range es {
		if e.Type == meter.EntryUsage {
			used += charged(e)
		}
	}
	if a.TotalUsed != used {
		t.Errorf("settled: total used %s; the ledger's usage %s", a.TotalUsed, used)
	}
	us, err := s.Usage(ctx, acct, p)
	if err != nil {
		t.Fatal(err)
	}
	var routed meter.Credits
	for _, u := range us {
		routed += u.Credits
		if u.Route == jobRoute && (u.Pages != pagesAll || u.Credits != debited) {
			t.Errorf("settled: usage of %s %+v; the jobs charged %s for %d pages", jobRoute, u, debited, pagesAll)
		}
	}
	if routed != used {
		t.Errorf("settled: usage by route %+v sums to %s; the ledger's usage %s", us, routed, used)
	}
}

func testJobsConcurrent(t *testing.T, s meter.Store) {
	t.Run("two jobs and requests share a small balance", func(t *testing.T) {
		id := newAccount(t, s, c(30))
		jobs := []meter.JobRequest{
			jobReq(id, c(5), rates{"page": c(1)}),
			jobReq(id, c(6), rates{"document": c(0.5), "drawing": c(3)}),
		}
		for _, r := range jobs {
			mustCreateJob(t, s, r)
		}
		counts := raceJobs(t, s, id, meter.Period{}, jobs, func(a meter.Account) error {
			if a.Balance < 0 || a.Reserved < 0 || a.Available < 0 {
				return fmt.Errorf("below zero")
			}
			return nil
		})
		settleJobs(t, s, id, meter.Period{}, jobs, counts)
	})

	t.Run("two jobs and requests share quota, balance and overage", func(t *testing.T) {
		id := quotaAccount(t, s, c(3), c(6), c(4))
		p := month(0)
		jobs := []meter.JobRequest{
			jobReq(id, c(2), rates{"page": c(1)}),
			jobReq(id, c(4), rates{"page": c(2), "scan": c(0.5)}),
		}
		for _, r := range jobs {
			r.Period = p
			mustCreateJob(t, s, r)
		}
		counts := raceJobs(t, s, id, p, jobs, func(a meter.Account) error {
			if a.Quota.Used+a.Quota.Reserved > c(6) || a.Overage.Used+a.Overage.Reserved > c(4) ||
				a.Available < -c(4) || a.Balance < -c(4) || a.Reserved < 0 || a.Quota.Reserved < 0 {
				return fmt.Errorf("beyond the pools")
			}
			return nil
		})
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var quota, overage meter.Credits
		for _, e := range oldestFirst(t, s, id) {
			quota, overage = quota+e.Quota, overage+e.Overage
		}
		if a.Quota.Used != quota || a.Overage.Used != overage || a.Quota.Used > c(6) || a.Overage.Used > c(4) {
			t.Errorf("quota %+v overage %+v; the ledger's %s, %s", a.Quota, a.Overage, quota, overage)
		}
		if t.Failed() {
			logLedger(t, s, id)
		}
		settleJobs(t, s, id, p, jobs, counts)
	})
}
