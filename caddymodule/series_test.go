package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// The usage over time of the admin API and meter_api is what the requests
// were charged, in today's bucket, and sums to the ledger's usage.
func TestUsageSeriesEndpoints(t *testing.T) {
	for name, global := range storeBlocks(t) {
		t.Run(name, func(t *testing.T) {
			g, _ := startConsole(t, global)
			key := g.newAccount("acme", 100, meter.ModeLive)
			for _, n := range []int{3, 2, 4} {
				if resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(n)); resp.StatusCode != 200 {
					t.Fatalf("request: %d", resp.StatusCode)
				}
			}
			g.assertBalance("acme", 91, 0)
			today := meter.Bucket(g.ledger("acme")[0].CreatedAt, meter.GranularityDay) // the store's day
			var rep seriesReport
			if code := g.adminDo("GET", "/meter/accounts/acme/usage?granularity=day&from="+today.AddDate(0, 0, -6).Format("2006-01-02")+"&to="+today.Format("2006-01-02"), nil, &rep); code != 200 {
				t.Fatalf("admin series: %d", code)
			}
			if len(rep.Buckets) != 7 || rep.Total.Credits != credits(9) || rep.Total.Requests != 3 || rep.Total.Pages != 9 {
				t.Fatalf("admin series: %+v", rep)
			}
			if last := rep.Buckets[6]; !last.Start.Equal(today) || last.Credits != credits(9) {
				t.Errorf("today's bucket %+v", last)
			}
			if len(rep.Data) != 1 || rep.Data[0].Route != "convert" || rep.Data[0].Credits != credits(9) {
				t.Errorf("data %+v", rep.Data)
			}

			// The customer's own call, by hour (default: the last 24 hours).
			resp, raw := g.getRaw("/credits/usage?granularity=hour", key)
			var own seriesReport
			if resp.StatusCode != 200 || json.Unmarshal(raw, &own) != nil {
				t.Fatalf("meter_api series: %d %s", resp.StatusCode, raw)
			}
			if len(own.Buckets) != 24 || own.Total.Credits != credits(9) || own.Total.Requests != 3 {
				t.Errorf("meter_api series: %d buckets, total %+v", len(own.Buckets), own.Total)
			}
			for path, want := range map[string]string{
				"/credits/usage?granularity=week":                               "granularity",
				"/credits/usage?granularity=hour&from=2026-01-01&to=2026-02-01": "at most 7 days",
				"/credits/usage?granularity=day&from=2026-03-01&to=2026-02-01":  "from before to",
				"/credits/usage?granularity=day&from=yesterday":                 "invalid date",
			} {
				resp, raw := g.getRaw(path, key)
				code, e := errorCode(t, raw)
				if resp.StatusCode != 400 || code != meter.ECodeInvalid || !strings.Contains(e["message"].(string), want) {
					t.Errorf("%s: %d %s", path, resp.StatusCode, raw)
				}
			}
		})
	}
}
