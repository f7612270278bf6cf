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

// DocExtract: a usage transaction carries "job_id": "job_xyz789...". The
// usage entries of a job's charges name the job (creditgate's id, and the
// upstream's when it was known at the charge) and the request that
// reported the pages, on both stores.
func TestSeedDocExtractJobUsageEntriesCarryJobID(t *testing.T) {
	t.Setenv("CG_TEST_JOB_SECRET", "a-test-secret-of-some-length")
	eachStore(t, func(t *testing.T, global string) {
		id := uniqueID("job_wire")
		u := newJobUpstream(t)
		g, _ := startJobGateway(t, u, "1m", strings.Replace(global, "meter {", "meter {\n\t\tjob_secret {env.CG_TEST_JOB_SECRET}", 1))
		key := g.newAccount(id, 100, meter.ModeLive)
		resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(1, 2), "X-Test-Plan", "drawing,document,document")
		if resp.StatusCode != 202 {
			t.Fatalf("submit: %d %s", resp.StatusCode, raw)
		}
		jobID := resp.Header.Get(HeaderJob)
		u.waitState(t, "up-1", "completed")
		g.assertBalance(id, 88, 0)
		var sum meter.Credits
		n := 0
		for _, e := range g.ledger(id) {
			if e.Type != meter.EntryUsage {
				continue
			}
			n++
			sum -= e.Amount
			if e.JobID != jobID || e.ReservationID != jobID || e.RequestID == "" ||
				(e.UpstreamJobID != "" && e.UpstreamJobID != "up-1") {
				t.Errorf("usage entry %+v: want job_id %s, a request id, upstream_job_id up-1 or none", e, jobID)
			}
		}
		if n == 0 || sum != credits(12) {
			t.Fatalf("%d usage entries summing %s, want 12", n, sum)
		}
		// As a key holder reads them.
		var page struct{ Transactions []map[string]any }
		if code := g.adminDo("GET", "/meter/accounts/"+id+"/transactions?type=usage", nil, &page); code != 200 ||
			len(page.Transactions) != n || page.Transactions[0]["job_id"] != jobID {
			t.Fatalf("transactions: HTTP %d %v", code, page.Transactions)
		}
	})
}

// The charge a resume makes (the owed pages of a blocked job) is a usage
// entry with the job's ids and the resume request's id, on both stores.
func TestJobResumeChargeCarriesJobAndRequestID(t *testing.T) {
	t.Setenv("CG_TEST_JOB_SECRET", "a-test-secret-of-some-length")
	eachStore(t, func(t *testing.T, global string) {
		id := uniqueID("job_wire_resume")
		u := newJobUpstream(t)
		g, _ := startJobGateway(t, u, "1m", strings.Replace(global, "meter {", "meter {\n\t\tjob_secret {env.CG_TEST_JOB_SECRET}", 1))
		key := g.newAccount(id, 25, meter.ModeLive)
		decl := []byte(`{"files": [{"name": "a.pdf", "size": 100000}]}`)
		resp, raw := g.post("/api/jobs", key, "application/json", decl, "X-Test-Plan", "drawing,drawing,drawing,drawing,drawing")
		if resp.StatusCode != 202 {
			t.Fatalf("submit: %d %s", resp.StatusCode, raw)
		}
		jobID := resp.Header.Get(HeaderJob)
		u.waitState(t, "up-1", "blocked")
		if code := g.adminDo("POST", "/meter/accounts/"+id+"/credits", map[string]any{"amount": 100}, nil); code != 201 {
			t.Fatalf("top-up: %d", code)
		}
		before := map[string]bool{}
		for _, e := range g.ledger(id) {
			before[e.ID] = true
		}
		if resp, raw := g.post("/api/jobs/up-1/resume", key, "", nil); resp.StatusCode != 200 {
			t.Fatalf("resume: %d %s", resp.StatusCode, raw)
		}
		// Newest first: the oldest new usage entry is the resume's charge
		// of the owed drawing; the upstream's later reports follow.
		var fresh []meter.LedgerEntry
		for _, e := range g.ledger(id) {
			if !before[e.ID] && e.Type == meter.EntryUsage {
				fresh = append(fresh, e)
			}
		}
		if len(fresh) == 0 {
			t.Fatal("the resume charged nothing")
		}
		if e := fresh[len(fresh)-1]; e.JobID != jobID || e.UpstreamJobID != "up-1" || e.RequestID == "" || e.Pages != 1 || e.Amount+e.Quota != -credits(10) {
			t.Fatalf("resume charge %+v: want the owed drawing (10) with job_id %s, upstream_job_id up-1 and a request id", e, jobID)
		}
		for _, e := range fresh {
			if e.JobID != jobID || e.RequestID == "" {
				t.Errorf("job entry %+v", e)
			}
		}
	})
}
