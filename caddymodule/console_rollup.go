package caddymodule

import (
	"context"
	"net/http"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/rollup"
)

// The store-wide rollup behind the console's sorted accounts and gateway
// totals (see meter/rollup). Every gateway with a console runs a runner;
// the store's lease lets one at a time build the rollup. Every gateway,
// console or not, adds the refusals it answered. The default interval is 30 s; a meter_console's
// rollup_interval sets it (the shortest of the config's consoles).

// refusalTally counts the refusals this process answered since its last
// flush to the store. It is process-wide, as the Prometheus counters
// beside it: a process runs one config's app at a time.
var refusalTally rollup.Tally

// rollupOf is the store's rollup side, behind the app's wrappers.
func rollupOf(s meter.Store) (rollup.Store, bool) { return meter.StoreAs[rollup.Store](s) }

// startRollup runs the rollup until ctx ends, if the store has one.
func (a *App) startRollup(ctx context.Context) {
	s, ok := rollupOf(a.store)
	if !ok {
		return
	}
	every := 30 * time.Second
	for i, c := range a.consoles {
		if d := time.Duration(c.RollupInterval); d > 0 && (i == 0 || d < every) {
			every = d
		}
	}
	log := a.logger
	if log == nil {
		log = zap.NewNop()
	}
	a.rollup = rollup.New(rollup.Options{Store: s, Interval: every, Tally: &refusalTally,
		FlushOnly: len(a.consoles) == 0,
		OnError:   func(err error) { log.Warn("console rollup", zap.Error(err)) }})
	a.workers.Go(func() { a.rollup.Loop(ctx) })
}

// sortedRows reads a page of the store-wide index by (balance, usage,
// activity) after cursor, each row read live; nil rows and ok false when
// the store has no rollup.
func (c *Console) sortedRows(ctx context.Context, by, cursor string) (rows []accountRow, next string, asOf time.Time, ok bool, err error) {
	s := c.app.Store()
	rs, ok := rollupOf(s)
	if !ok {
		return nil, "", time.Time{}, false, nil
	}
	ids, next, asOf, err := rs.SortedAccounts(ctx, by, cursor, c.PageSize)
	if err == nil && asOf.IsZero() && c.app.rollup != nil {
		// No run finished yet (a new store): build it now, once.
		if _, err = c.app.rollup.RunOnce(ctx); err == nil {
			ids, next, asOf, err = rs.SortedAccounts(ctx, by, cursor, c.PageSize)
		}
	}
	if err != nil {
		return nil, "", time.Time{}, true, err
	}
	for _, id := range ids {
		row, err := c.accountRow(ctx, s, id)
		if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
			continue
		}
		if err != nil {
			return nil, "", time.Time{}, true, err
		}
		rows = append(rows, row)
	}
	return rows, next, asOf, true, nil
}

// gatewayTotals is the gateway page's store-wide part: the totals of the
// chart's buckets, the top accounts by usage this period and the
// refusals by code of the chart's days.
type gatewayTotals struct {
	Chart    chartData
	Top      []accountRow
	Refusals []countRow
	AsOf     time.Time
}

func (c *Console) storeTotals(ctx context.Context, rs rollup.Store, g string, n int) (gatewayTotals, error) {
	d := newChart(g, n)
	from, to := d.Days[0], next(d.Days[len(d.Days)-1], g)
	// The top accounts first: on a store with no rollup yet, this builds it.
	top, _, _, _, err := c.sortedRows(ctx, meter.SortUsage, "")
	if err != nil {
		return gatewayTotals{}, err
	}
	t, err := rs.Totals(ctx, g, from, to)
	if err != nil {
		return gatewayTotals{}, err
	}
	d.add("", t.Points)
	out := gatewayTotals{Chart: d, AsOf: t.AsOf}
	for _, r := range top[:min(10, len(top))] {
		if r.PeriodCredits > 0 {
			out.Top = append(out.Top, r)
		}
	}
	counts, err := rs.Refusals(ctx, meter.Bucket(from, meter.GranularityDay), to)
	if err != nil {
		return out, err
	}
	for code, n := range counts {
		out.Refusals = append(out.Refusals, countRow{Code: code, Count: n})
	}
	sort.Slice(out.Refusals, func(i, j int) bool { return out.Refusals[i].Code < out.Refusals[j].Code })
	return out, nil
}

// gatewayPageRollup renders the gateway page from the rollup.
func (c *Console) gatewayPageRollup(w http.ResponseWriter, r *http.Request, rs rollup.Store) {
	ctx, cancel := c.storeCtx(r)
	defer cancel()
	g, n := chartPeriod(r)
	t, err := c.storeTotals(ctx, rs, g, n)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "gateway.html", map[string]any{
		"P": c.Prefix, "Title": "Gateway", "Chart": t.Chart, "TopRows": t.Top, "AsOf": t.AsOf, "Rollup": true,
		"PeriodDays": periodDays, "PeriodHours": periodHours, "Refusals": t.Refusals,
		"Requests": metricRows(meterMetrics.requests, "outcome", "code"),
		"Webhooks": metricRows(meterMetrics.webhooks, "type", "result"),
	})
}

// addRefunds fills an account chart's refunds from its refund entries in
// the chart's buckets (read from the ledger: the series count charges
// only), at most 10,000 entries.
func addRefunds(ctx context.Context, s meter.Store, id string, d *chartData) error {
	from, to := d.Days[0], next(d.Days[len(d.Days)-1], d.Granularity)
	q := meter.LedgerQuery{AccountID: id, Type: meter.EntryRefund, From: from, To: to, Limit: 1000}
	for range 10 {
		es, err := s.Ledger(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range es {
			if i, ok := d.index[meter.Bucket(e.CreatedAt, d.Granularity).Unix()]; ok {
				d.Refunds[i] += e.Amount
				d.RefundTotal += e.Amount
			}
		}
		if len(es) < q.Limit {
			break
		}
		q.Before = es[len(es)-1].ID
	}
	return nil
}

// Unwrap lets rollupOf see the store behind the timing wrapper.
func (s timedStore) Unwrap() meter.Store { return s.Store }
