package rollup_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/rollup"
)

var ctx = context.Background()

type store interface {
	meter.Store
	meter.RollupStore
}

// stores runs f on a fresh embedded store and on a fresh prefix of one
// real redis-server.
func stores(t *testing.T, f func(t *testing.T, s store)) {
	t.Run("bolt", func(t *testing.T) {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "meter.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.New(t)
		cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { cl.Close() })
		f(t, redisstore.New(cl, redisstore.Options{}))
	})
}

func cr(n int) meter.Credits { return meter.Credits(n) * meter.Scale }

var rids atomic.Int64

// spend charges amount on route through Reserve and Commit, as the
// gateway does, in the account's current period.
func spend(t *testing.T, s meter.Store, id, route string, amount meter.Credits, pages int) {
	t.Helper()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Settings.PeriodAt(time.Now(), a.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	rid := fmt.Sprintf("r%d", rids.Add(1))
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: time.Minute, Period: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount, Route: route, Pages: pages}); err != nil {
		t.Fatal(err)
	}
}

// allSorted pages through an index, limit ids a page.
func allSorted(t *testing.T, s meter.RollupStore, by string, limit int) []string {
	t.Helper()
	var out []string
	for after, pages := "", 0; ; pages++ {
		ids, next, asOf, err := s.SortedAccounts(ctx, by, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if asOf.IsZero() {
			t.Fatal("the index has no time")
		}
		if len(ids) > limit {
			t.Fatalf("a page of %d ids, limit %d", len(ids), limit)
		}
		out = append(out, ids...)
		if next == "" {
			return out
		}
		after = next
	}
}

// seriesSum sums every account's series as the API returns it.
func seriesSum(t *testing.T, s meter.Store, ids []string, g string, from, to time.Time) map[string]meter.UsagePoint {
	t.Helper()
	out := map[string]meter.UsagePoint{}
	for _, id := range ids {
		pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: g, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		addPoints(out, pts)
	}
	return out
}

func addPoints(m map[string]meter.UsagePoint, pts []meter.UsagePoint) {
	for _, p := range pts {
		k := p.Start.UTC().Format(time.RFC3339) + " " + p.Route
		q := m[k]
		q.Start, q.Route = p.Start.UTC(), p.Route
		q.Requests += p.Requests
		q.Pages += p.Pages
		q.Credits += p.Credits
		m[k] = q
	}
}

func checkTotals(t *testing.T, s store, ids []string) {
	t.Helper()
	now := time.Now()
	for _, g := range []string{meter.GranularityDay, meter.GranularityHour} {
		from, to := meter.Bucket(now, g).Add(-48*time.Hour), now.Add(2*time.Hour)
		tot, err := s.Totals(ctx, g, from, to)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]meter.UsagePoint{}
		addPoints(got, tot.Points)
		want := seriesSum(t, s, ids, g, from, to)
		if fmt.Sprint(sortedPoints(got)) != fmt.Sprint(sortedPoints(want)) {
			t.Errorf("%s totals\n got %v\nwant %v", g, sortedPoints(got), sortedPoints(want))
		}
		if len(want) == 0 {
			t.Errorf("%s: no usage to compare", g)
		}
	}
}

func sortedPoints(m map[string]meter.UsagePoint) []string {
	var out []string
	for k, p := range m {
		out = append(out, fmt.Sprintf("%s=%d/%d/%d", k, p.Requests, p.Pages, p.Credits))
	}
	sort.Strings(out)
	return out
}

// TestRollupSortsAllAccountsAndSumsTheirSeries: the indexes hold every
// account in the exact order, paged past the batch and page sizes, and
// the totals equal the sum of every account's series, after a first run
// and after an incremental one.
func TestRollupSortsAllAccountsAndSumsTheirSeries(t *testing.T) {
	stores(t, func(t *testing.T, s store) {
		balances := []int{5, 40, 12, 40, 0, 33, 7, 100, 12, 1, 64, 40, 9}
		var ids []string
		for i, b := range balances {
			id := fmt.Sprintf("acct-%02d", i)
			if _, err := s.CreateAccount(ctx, id, cr(b)+cr(10)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		// Usage on some: 10 credits each leaves the balance above.
		spend(t, s, "acct-03", "convert", cr(10), 2)
		spend(t, s, "acct-07", "ocr", cr(4), 1)
		spend(t, s, "acct-07", "ocr", cr(6), 1)
		spend(t, s, "acct-11", "convert", cr(3), 3)
		spend(t, s, "acct-11", "ocr", cr(7), 1)

		r := rollup.New(rollup.Options{Store: s, Batch: 4})
		ran, err := r.RunOnce(ctx)
		if err != nil || !ran {
			t.Fatalf("RunOnce: %v, %v", ran, err)
		}
		checkOrders(t, s, ids)
		checkTotals(t, s, ids)

		// An incremental run: only the new usage's buckets change.
		spend(t, s, "acct-00", "convert", cr(2), 1)
		spend(t, s, "acct-12", "scan", cr(1), 1)
		if _, err := s.Grant(ctx, meter.Grant{AccountID: "acct-04", Amount: cr(500), Type: meter.EntryPurchase}); err != nil {
			t.Fatal(err)
		}
		if ran, err := r.RunOnce(ctx); err != nil || !ran {
			t.Fatalf("second RunOnce: %v, %v", ran, err)
		}
		checkOrders(t, s, ids)
		checkTotals(t, s, ids)
		if got := allSorted(t, s, meter.SortBalance, 5)[0]; got != "acct-04" {
			t.Errorf("after a grant of 500, the largest balance is %s", got)
		}
	})
}

// checkOrders compares each index with the accounts' values as the API
// reads them, sorted largest or newest first, ties by id.
func checkOrders(t *testing.T, s store, ids []string) {
	t.Helper()
	type row struct {
		id       string
		bal, use meter.Credits
		last     time.Time
	}
	var rows []row
	for _, id := range ids {
		a, err := s.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := meter.Summarize(ctx, s, id, meter.SummaryQuery{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{id, a.Balance, sum.PeriodCredits, sum.LastActivity})
	}
	for _, by := range meter.IndexSorts {
		less := map[string]func(a, b row) bool{
			meter.SortBalance:  func(a, b row) bool { return a.bal > b.bal },
			meter.SortUsage:    func(a, b row) bool { return a.use > b.use },
			meter.SortActivity: func(a, b row) bool { return a.last.After(b.last) },
		}[by]
		sort.SliceStable(rows, func(i, j int) bool {
			if less(rows[i], rows[j]) {
				return true
			}
			if less(rows[j], rows[i]) {
				return false
			}
			return rows[i].id < rows[j].id
		})
		var want []string
		for _, r := range rows {
			want = append(want, r.id)
		}
		if got := allSorted(t, s, by, 5); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("by %s:\n got %v\nwant %v", by, got, want)
		}
	}
}

// overlap wraps a store and fails the test when two runs stage at once.
type overlap struct {
	store
	t      *testing.T
	mu     sync.Mutex
	active map[string]bool
	runs   atomic.Int64
}

func (o *overlap) ListAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	time.Sleep(2 * time.Millisecond) // let the runners overlap if they can
	return o.store.ListAccounts(ctx, after, limit)
}

func (o *overlap) StageIndex(ctx context.Context, run string, rows []meter.AccountSummary) error {
	o.mu.Lock()
	o.active[run] = true
	if len(o.active) > 1 {
		o.t.Errorf("two runs at once: %v", o.active)
	}
	o.mu.Unlock()
	return o.store.StageIndex(ctx, run, rows)
}

func (o *overlap) PublishIndex(ctx context.Context, run string, asOf time.Time) error {
	o.mu.Lock()
	delete(o.active, run)
	o.mu.Unlock()
	o.runs.Add(1)
	return o.store.PublishIndex(ctx, run, asOf)
}

// TestRollupLeaseOneRunnerAtATime: two runners on one store, started
// together again and again: never two runs at once, and the one that
// finds the lease taken does nothing.
func TestRollupLeaseOneRunnerAtATime(t *testing.T) {
	stores(t, func(t *testing.T, s store) {
		for i := range 20 {
			if _, err := s.CreateAccount(ctx, fmt.Sprintf("l-%02d", i), cr(i)); err != nil {
				t.Fatal(err)
			}
		}
		o := &overlap{store: s, t: t, active: map[string]bool{}}
		a := rollup.New(rollup.Options{Store: o, Owner: "a", Batch: 3})
		b := rollup.New(rollup.Options{Store: o, Owner: "b", Batch: 3})
		var ranA, ranB int
		for range 10 {
			var wg sync.WaitGroup
			var okA, okB bool
			wg.Add(2)
			go func() { defer wg.Done(); okA, _ = a.RunOnce(ctx) }()
			go func() { defer wg.Done(); okB, _ = b.RunOnce(ctx) }()
			wg.Wait()
			if okA {
				ranA++
			}
			if okB {
				ranB++
			}
		}
		if int64(ranA+ranB) != o.runs.Load() || ranA+ranB < 10 {
			t.Errorf("runs: a %d, b %d, published %d", ranA, ranB, o.runs.Load())
		}
		// A held lease keeps the other out until released.
		if held, err := s.AcquireLease(ctx, rollup.LeaseName, "c", time.Minute); err != nil || !held {
			t.Fatalf("c: %v %v", held, err)
		}
		if ran, err := a.RunOnce(ctx); err != nil || ran {
			t.Errorf("a ran while c held the lease: %v %v", ran, err)
		}
		if err := s.ReleaseLease(ctx, rollup.LeaseName, "a"); err != nil { // not a's: a no-op
			t.Fatal(err)
		}
		if ran, _ := a.RunOnce(ctx); ran {
			t.Error("a released c's lease")
		}
		if err := s.ReleaseLease(ctx, rollup.LeaseName, "c"); err != nil {
			t.Fatal(err)
		}
		if ran, err := a.RunOnce(ctx); err != nil || !ran {
			t.Errorf("a after c released: %v %v", ran, err)
		}
	})
}

// TestRefusalsFromTwoGateways: each gateway's tally adds to the same
// day's counts in the store.
func TestRefusalsFromTwoGateways(t *testing.T) {
	stores(t, func(t *testing.T, s store) {
		var g1, g2 rollup.Tally
		for range 3 {
			g1.Add("insufficient_credits")
		}
		g2.Add("insufficient_credits")
		g2.Add("invalid_api_key")
		now := time.Now()
		for _, g := range []*rollup.Tally{&g1, &g2, &g1} { // a second flush adds nothing
			if err := g.Flush(ctx, s, now); err != nil {
				t.Fatal(err)
			}
		}
		day := meter.Bucket(now, meter.GranularityDay)
		got, err := s.Refusals(ctx, day, day.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "map[insufficient_credits:4 invalid_api_key:1]" {
			t.Errorf("refusals %v", got)
		}
		if got, _ := s.Refusals(ctx, day.AddDate(0, 0, -3), day); len(got) != 0 {
			t.Errorf("refusals of earlier days %v", got)
		}
		// A failed flush keeps its counts for the next.
		g1.Add("quota_exceeded")
		if err := g1.Flush(ctx, failing{s}, now); err == nil {
			t.Fatal("the failing store took the refusals")
		}
		g1.Add("quota_exceeded")
		if err := g1.Flush(ctx, s, now); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Refusals(ctx, day, day.AddDate(0, 0, 1)); got["quota_exceeded"] != 2 {
			t.Errorf("after a failed flush: %v", got)
		}
	})
}

// TestClaimOnce: the first claim acts, the others see its outcome; a
// dropped claim lets a retry act.
func TestClaimOnce(t *testing.T) {
	stores(t, func(t *testing.T, s store) {
		v, ok, err := s.ClaimOnce(ctx, "k1", time.Minute)
		if err != nil || !ok || v != "" {
			t.Fatalf("first claim: %q %v %v", v, ok, err)
		}
		if v, ok, _ := s.ClaimOnce(ctx, "k1", time.Minute); ok || v != "" {
			t.Fatalf("claim under way: %q %v", v, ok)
		}
		if err := s.SetOnce(ctx, "k1", "key_abc", time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := s.ClaimOnce(ctx, "k1", time.Minute); ok || v != "key_abc" {
			t.Fatalf("claim after the outcome: %q %v", v, ok)
		}
		if _, ok, _ := s.ClaimOnce(ctx, "k2", time.Minute); !ok {
			t.Fatal("k2")
		}
		if err := s.DropOnce(ctx, "k2"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.ClaimOnce(ctx, "k2", time.Minute); !ok {
			t.Fatal("k2 after drop")
		}
	})
}

// failing is a store whose refusal writes fail.
type failing struct{ meter.RollupStore }

func (failing) AddRefusals(context.Context, time.Time, map[string]int64) error {
	return meter.Unavailable(fmt.Errorf("down"))
}
