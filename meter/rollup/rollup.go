// Package rollup keeps the store-wide views the console sorts and sums:
// every account in indexes by balance, usage this period and last
// activity, and the usage of all accounts per route and day (and hour).
// One gateway at a time (a lease in the store) reads every account in
// batches every Interval and publishes the indexes whole; the day totals
// are recomputed only for the buckets since its previous run, so a run
// reads a day or two of each account's series. Gateways also add the
// refusals they answered, by day and code, now and then. Nothing here
// runs on the request path: the per-request store steps are unchanged.
package rollup

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// LeaseName is the lease that lets one runner at a time build the rollup.
const LeaseName = "rollup"

// Store is what a Runner reads and writes.
type Store interface {
	ListAccounts(ctx context.Context, after string, limit int) ([]string, error)
	meter.RollupStore
}

// Options configure a Runner. Store is required.
type Options struct {
	Store Store
	// Owner names this runner in the lease. Default: random.
	Owner string
	// Interval between runs. Default 30s.
	Interval time.Duration
	// Batch is how many accounts one store call reads. Default 500.
	Batch int
	// BackfillDays is how many days of series the first run sums (no
	// totals yet). Default 365.
	BackfillDays int
	// Now is the gateway's clock. Default time.Now.
	Now func() time.Time
	// Tally, when set, is flushed to the store before each run.
	Tally *Tally
	// OnError hears what a background run could not do. Default: nothing.
	OnError func(error)
	// FlushOnly makes Loop flush the tally without building the rollup:
	// a gateway with no console adds its refusals and leaves the reads
	// of every account to the gateways that show them.
	FlushOnly bool
}

// Runner builds the rollup.
type Runner struct{ o Options }

// margin re-reads a little before the previous run's start: usage is
// bucketed on the store's clock, runs start on the gateway's.
const margin = 5 * time.Minute

// New returns a Runner with defaults filled in.
func New(o Options) *Runner {
	if o.Owner == "" {
		o.Owner = "gw-" + rand.Text()[:12]
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.BackfillDays <= 0 {
		o.BackfillDays = 365
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Runner{o: o}
}

// ErrLeaseLost ends a run whose lease another runner took (it ran longer
// than the lease and failed to extend it): nothing of it is published.
var ErrLeaseLost = errors.New("rollup: lease lost during the run")

// RunOnce builds and publishes the rollup if no other runner holds the
// lease; ran says whether it did.
func (r *Runner) RunOnce(ctx context.Context) (ran bool, err error) {
	s := r.o.Store
	ttl := max(3*r.o.Interval, time.Minute)
	held, err := s.AcquireLease(ctx, LeaseName, r.o.Owner, ttl)
	if err != nil || !held {
		return false, err
	}
	defer func() { _ = s.ReleaseLease(context.WithoutCancel(ctx), LeaseName, r.o.Owner) }()
	start := r.o.Now().UTC()
	q := meter.SummaryQuery{Now: start}
	dayTo := meter.Bucket(start, meter.GranularityDay).AddDate(0, 0, 1)
	hourTo := meter.Bucket(start, meter.GranularityHour).Add(time.Hour)
	q.DaysFrom, err = r.since(ctx, meter.GranularityDay, start, dayTo.AddDate(0, 0, -r.o.BackfillDays))
	if err != nil {
		return false, err
	}
	q.HoursFrom, err = r.since(ctx, meter.GranularityHour, start, hourTo.Add(-meter.HourlyDays*24*time.Hour))
	if err != nil {
		return false, err
	}
	run := r.o.Owner + "." + strconv.FormatInt(start.UnixNano(), 36)
	days, hours := newSum(), newSum()
	for after := ""; ; {
		ids, err := s.ListAccounts(ctx, after, r.o.Batch)
		if err != nil {
			return false, err
		}
		sums, err := s.AccountSummaries(ctx, ids, q)
		if err != nil {
			return false, err
		}
		if err := s.StageIndex(ctx, run, sums); err != nil {
			return false, err
		}
		for _, a := range sums {
			days.add(a.Days)
			hours.add(a.Hours)
		}
		if len(ids) < r.o.Batch {
			break
		}
		after = ids[len(ids)-1]
		if held, err := s.AcquireLease(ctx, LeaseName, r.o.Owner, ttl); err != nil {
			return false, err
		} else if !held {
			return false, ErrLeaseLost
		}
	}
	if err := s.PublishIndex(ctx, run, start); err != nil {
		return false, err
	}
	if err := s.WriteTotals(ctx, meter.GranularityDay, q.DaysFrom, dayTo, days.points(), start); err != nil {
		return false, err
	}
	return true, s.WriteTotals(ctx, meter.GranularityHour, q.HoursFrom, hourTo, hours.points(), start)
}

// since is where a run's buckets of g start: the bucket of the previous
// run's start (less a margin), or oldest when none ran.
func (r *Runner) since(ctx context.Context, g string, now, oldest time.Time) (time.Time, error) {
	t, err := r.o.Store.Totals(ctx, g, now, now.Add(time.Second))
	if err != nil {
		return time.Time{}, err
	}
	if t.AsOf.IsZero() {
		return oldest, nil
	}
	from := meter.Bucket(t.AsOf.Add(-margin), g)
	if from.Before(oldest) {
		from = oldest
	}
	return from, nil
}

// Loop flushes the tally and runs every Interval until ctx ends.
func (r *Runner) Loop(ctx context.Context) {
	tick := time.NewTicker(r.o.Interval)
	defer tick.Stop()
	for {
		if r.o.Tally != nil {
			if err := r.o.Tally.Flush(ctx, r.o.Store, r.o.Now()); err != nil && r.o.OnError != nil {
				r.o.OnError(err)
			}
		}
		if !r.o.FlushOnly {
			if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil && r.o.OnError != nil {
				r.o.OnError(err)
			}
		}
		select {
		case <-ctx.Done():
			if r.o.Tally != nil {
				_ = r.o.Tally.Flush(context.WithoutCancel(ctx), r.o.Store, r.o.Now())
			}
			return
		case <-tick.C:
		}
	}
}

// sum adds series points by bucket and route.
type sum struct {
	m     map[[2]string]*meter.UsagePoint
	order []*meter.UsagePoint
}

func newSum() *sum { return &sum{m: map[[2]string]*meter.UsagePoint{}} }

func (s *sum) add(pts []meter.UsagePoint) {
	for _, p := range pts {
		k := [2]string{strconv.FormatInt(p.Start.Unix(), 10), p.Route}
		t := s.m[k]
		if t == nil {
			t = &meter.UsagePoint{Start: p.Start, Route: p.Route}
			s.m[k] = t
			s.order = append(s.order, t)
		}
		t.Requests += p.Requests
		t.Pages += p.Pages
		t.Credits += p.Credits
	}
}

func (s *sum) points() []meter.UsagePoint {
	out := make([]meter.UsagePoint, len(s.order))
	for i, p := range s.order {
		out[i] = *p
	}
	return out
}

// Tally counts this process's refusals by code until a Flush adds them
// to the store: one write per interval, whatever the traffic. Add takes
// no lock (a flood of refusals must not queue on one), one counter per
// code.
type Tally struct {
	m sync.Map // code -> *atomic.Int64
}

// Add counts one refusal.
func (t *Tally) Add(code string) {
	v, ok := t.m.Load(code)
	if !ok {
		v, _ = t.m.LoadOrStore(code, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Flush adds the counts to now's day in the store; counts it could not
// write are kept for the next Flush. A write whose answer was lost may
// count twice: refusals are a count to watch, not money.
func (t *Tally) Flush(ctx context.Context, s meter.RollupStore, now time.Time) error {
	counts := map[string]int64{}
	t.m.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Swap(0); n != 0 {
			counts[k.(string)] = n
		}
		return true
	})
	if len(counts) == 0 {
		return nil
	}
	err := s.AddRefusals(ctx, now, counts)
	if err != nil {
		for code, n := range counts {
			v, _ := t.m.LoadOrStore(code, new(atomic.Int64))
			v.(*atomic.Int64).Add(n)
		}
	}
	return err
}
