package caddymodule

import (
	"encoding/json"
	"html/template"
	"strconv"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func itoa(n int) string { return strconv.Itoa(n) }

// consoleFuncs are the templates' helpers.
var consoleFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"day": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	// pct is the part of a bar: used of limit, 0 to 100.
	"pct": func(used, limit meter.Credits) int {
		if limit <= 0 || used <= 0 {
			return 0
		}
		return int(min(100, used*100/limit))
	},
	"neg":  func(c meter.Credits) bool { return c < 0 },
	"itoa": itoa,
	"mulf": func(f float64) float64 { return f * 100 },
	"list": func(s ...string) []string { return s },
	// formkey is a new idempotency key for each form on a page.
	"formkey": newFormKey,
	// chartJSON is a chart's data for console.js: buckets as Unix seconds,
	// credits per route as numbers of credits.
	"chartJSON": func(d chartData) (template.JS, error) {
		x := make([]int64, len(d.Days))
		for i, t := range d.Days {
			x[i] = t.Unix()
		}
		series := make([]map[string]any, len(d.Routes))
		for i, r := range d.Routes {
			ys := make([]float64, len(d.Days))
			for j, v := range d.Credits[i] {
				ys[j] = float64(v) / meter.Scale
			}
			series[i] = map[string]any{"route": r, "credits": ys}
		}
		step := 86400
		if d.Granularity == meter.GranularityHour {
			step = 3600
		}
		refunds := make([]float64, len(d.Refunds))
		for i, v := range d.Refunds {
			refunds[i] = float64(v) / meter.Scale
		}
		b, err := json.Marshal(map[string]any{"x": x, "step": step, "series": series, "requests": d.Requests,
			"pages": d.Pages, "refunds": refunds, "refund_total": float64(d.RefundTotal) / meter.Scale})
		return template.JS(b), err
	},
	"balanceJSON": func(es []meter.LedgerEntry) (template.JS, error) {
		x, y := []int64{}, []float64{}
		for i := len(es) - 1; i >= 0; i-- {
			x = append(x, es[i].CreatedAt.Unix())
			y = append(y, float64(es[i].BalanceAfter)/meter.Scale)
		}
		b, err := json.Marshal(map[string]any{"x": x, "balance": y})
		return template.JS(b), err
	},
}
