package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// DocExtract: "Configure a webhook to receive low balance alerts:
// {"event": "credits.low_balance", "data": {"current_balance": 50,
// "threshold": 100, "org_id": "org_xyz789...", "timestamp":
// "2024-11-23T10:00:00Z"}}". The delivery carries those names next to
// Standard Webhooks' type and data.balance, and its signature verifies
// (the receiver refuses any that does not).
func TestSeedDocExtractLowBalanceWebhookFields(t *testing.T) {
	for _, store := range []string{"redis", "embedded"} {
		t.Run(store, func(t *testing.T) {
			id := uniqueID("wh_seed")
			r := newReceiver(t, id)
			global := strings.ReplaceAll(webhookGlobal, "{HOOK}", r.URL)
			if store == "embedded" {
				global = strings.Replace(global, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1)
			}
			g := startGateway(t, global+minimalSite)
			key := g.newAccount(id, 10, meter.ModeLive)
			if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"low_balance_threshold": 5}, nil); code != 200 {
				t.Fatalf("PATCH: %d", code)
			}
			if resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(6)); resp.StatusCode != 200 {
				t.Fatalf("request: %d %s", resp.StatusCode, raw)
			}
			ds := r.waitFor("low balance", func(ds []delivery) bool { return len(ds) >= 1 })
			if len(ds) != 1 || ds[0].Status != 200 {
				t.Fatalf("deliveries %+v, want one accepted", ds)
			}
			p := ds[0].Payload
			if p.Type != meter.EventLowBalance || p.Event != meter.EventLowBalance {
				t.Fatalf("type %q event %q", p.Type, p.Event)
			}
			d := p.Data
			if d["current_balance"] != 4.0 || d["balance"] != 4.0 || d["threshold"] != 5.0 ||
				d["org_id"] != id || d["account"] != id {
				t.Fatalf("data %v", d)
			}
			ts, ok := d["timestamp"].(string)
			if !ok || ts != p.Timestamp {
				t.Fatalf("data.timestamp %v, top-level %q", d["timestamp"], p.Timestamp)
			}
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Fatalf("data.timestamp %q: %v", ts, err)
			}
		})
	}
}
