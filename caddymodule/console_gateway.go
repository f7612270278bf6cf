package caddymodule

import (
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/creditgate/creditgate/meter"
)

// countRow is one labelled counter of this process's metrics.
type countRow struct {
	Outcome, Code string
	Count         int64
}

// topRow is one account of the gateway page's top accounts.
type topRow struct {
	ID      string
	Credits meter.Credits
}

// gatewayPage shows the store-wide rollup (gatewayPageRollup); on a store
// without one, it sums the daily series of a page of accounts (GatewayScan of
// them, in id order, from ?cursor=): credits and requests per route per
// day and the top accounts; and this process's refusals by code and
// webhook deliveries, from its Prometheus counters.
func (c *Console) gatewayPage(w http.ResponseWriter, r *http.Request) {
	if rs, ok := rollupOf(c.app.Store()); ok {
		c.gatewayPageRollup(w, r, rs)
		return
	}
	ctx, cancel := c.storeCtx(r)
	defer cancel()
	s := c.app.Store()
	cursor := r.URL.Query().Get("cursor")
	g, n := chartPeriod(r)
	var ids []string
	for after := cursor; len(ids) < c.GatewayScan; {
		n := min(1000, c.GatewayScan-len(ids))
		more, err := s.ListAccounts(ctx, after, n)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		ids = append(ids, more...)
		if len(more) < n {
			break
		}
		after = more[len(more)-1]
	}
	chart, err := c.usageChart(ctx, s, ids, g, n)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	top := topAccounts(chart)
	nextPage := ""
	if len(ids) == c.GatewayScan {
		nextPage = ids[len(ids)-1]
	}
	requests, webhooks := metricRows(meterMetrics.requests, "outcome", "code"), metricRows(meterMetrics.webhooks, "type", "result")
	var refusals []countRow
	for _, row := range requests {
		if row.Code != "" {
			refusals = append(refusals, row)
		}
	}
	c.render(w, http.StatusOK, "gateway.html", map[string]any{
		"P": c.Prefix, "Title": "Gateway", "Chart": chart, "Top": top, "Scanned": len(ids),
		"Cursor": cursor, "Next": nextPage, "PeriodDays": periodDays, "PeriodHours": periodHours,
		"Requests": requests, "Refusals": refusals, "Webhooks": webhooks,
	})
}

// topAccounts are the ten accounts with the most credits in a chart.
func topAccounts(d chartData) []topRow {
	rows := make([]topRow, 0, len(d.ByAccount))
	for id, sum := range d.ByAccount {
		if sum > 0 {
			rows = append(rows, topRow{id, sum})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Credits != rows[j].Credits {
			return rows[i].Credits > rows[j].Credits
		}
		return rows[i].ID < rows[j].ID
	})
	return rows[:min(10, len(rows))]
}

// metricRows reads a counter vector of this process by two of its labels
// (nil before the first config registers it).
func metricRows(v *prometheus.CounterVec, first, second string) []countRow {
	if v == nil {
		return nil
	}
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	var rows []countRow
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil || d.Counter == nil {
			continue
		}
		row := countRow{Count: int64(d.Counter.GetValue())}
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case first:
				row.Outcome = l.GetValue()
			case second:
				row.Code = l.GetValue()
			}
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Outcome != rows[j].Outcome {
			return rows[i].Outcome < rows[j].Outcome
		}
		return rows[i].Code < rows[j].Code
	})
	return rows
}
