package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// testKeySite routes test traffic three ways: /sim simulates (the
// default), /fwd forwards to the same upstream with X-Meter-Test, and
// /sandbox sends test keys to a sandbox upstream by {http.meter.mode}.
const testKeySite = `
http://{SITE} {
	handle /sim {
		meter {
			per_page 1
			route sim
			test_limit 3/day
		}
		reverse_proxy {LIVE}
	}
	handle /fwd {
		meter {
			per_page 1
			route fwd
			test forward
		}
		reverse_proxy {LIVE}
	}
	handle /sandbox {
		meter {
			per_page 1
			route sandbox
			test forward
		}
		@test vars {http.meter.mode} test
		handle @test {
			reverse_proxy {SANDBOX}
		}
		handle {
			reverse_proxy {LIVE}
		}
	}
}
`

// Test keys are a sandbox: by default priced and answered by the gateway,
// never forwarded; forwarded only where the route says so, with the
// gateway's money headers alone; bounded per account and day.
func TestTestKeysAreASandbox(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		live, sandbox := newRecorder(t), newRecorder(t)
		g := startGateway(t, global+strings.NewReplacer("{LIVE}", live.hostPort(), "{SANDBOX}", sandbox.hostPort()).Replace(testKeySite))
		id := uniqueID("testkey")
		key := g.newAccount(id, 50, meter.ModeTest)

		// Simulated: a 470-page request is priced, answered, not forwarded.
		resp, raw := g.post("/sim", key, "application/pdf", pdftest.Pages(470))
		var sim struct {
			Test, Simulated, Affordable bool
			Total                       float64
			Pages                       int
			TestRequestsToday           int `json:"test_requests_today"`
			TestLimit                   int `json:"test_limit"`
			Route                       string
		}
		if err := json.Unmarshal(raw, &sim); err != nil || resp.StatusCode != 200 {
			t.Fatalf("simulated: %d %s", resp.StatusCode, raw)
		}
		if !sim.Test || !sim.Simulated || sim.Total != 470 || sim.Pages != 470 || sim.Affordable || sim.Route != "sim" ||
			sim.TestRequestsToday != 1 || sim.TestLimit != 3 {
			t.Fatalf("simulated answer: %s", raw)
		}
		assertMoney(t, resp, "470", "50")
		if resp.Header.Get(HeaderTest) != "true" || live.count() != 0 {
			t.Fatalf("test header %q, upstream reached %d times", resp.Header.Get(HeaderTest), live.count())
		}

		// The limit: 3 a day on /sim, counted across routes. Two more
		// pass; the fourth is refused before anything is measured.
		g.post("/sim", key, "application/pdf", pdftest.Pages(1))
		g.post("/sim", key, "application/pdf", pdftest.Pages(1))
		resp, raw = g.post("/sim", key, "application/pdf", pdftest.Pages(1))
		if code, d := errorCode(t, raw); resp.StatusCode != 429 || code != meter.ECodeTestLimitExceeded ||
			d["test_limit"] != float64(3) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("over the test limit: %d %s (Retry-After %q)", resp.StatusCode, raw, resp.Header.Get("Retry-After"))
		}
		assertMoney(t, resp, "0", "50")

		// Forwarded: the upstream is told, and its money headers never
		// reach the client (it sets X-Request-Cost: 777).
		resp, raw = g.post("/fwd", key, "application/pdf", pdftest.Pages(2), "X-Meter-Test", "false")
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"ok": true`) {
			t.Fatalf("forwarded: %d %s", resp.StatusCode, raw)
		}
		if v := resp.Header.Values(HeaderCost); len(v) != 1 || v[0] != "2" {
			t.Fatalf("X-Request-Cost %q, want only the gateway's 2", v)
		}
		if v := resp.Header.Values(HeaderRemaining); len(v) != 1 || v[0] != "50" {
			t.Fatalf("X-Remaining-Credits %q, want only the gateway's 50", v)
		}
		if got := live.last(t); got.header.Get(UpstreamTest) != "true" || got.header.Get(UpstreamAccount) != id {
			t.Fatalf("forwarded test request headers: %v", got.header)
		}

		// Routed by mode: test keys to the sandbox, live keys to the live
		// upstream.
		before := live.count()
		resp, _ = g.post("/sandbox", key, "application/pdf", pdftest.Pages(1))
		if resp.StatusCode != 200 || sandbox.count() != 1 || live.count() != before {
			t.Fatalf("test key routed: %d, sandbox %d, live %d -> %d", resp.StatusCode, sandbox.count(), before, live.count())
		}
		assertMoney(t, resp, "1", "50")
		liveID := uniqueID("livekey")
		liveKey := g.newAccount(liveID, 10, meter.ModeLive)
		resp, _ = g.post("/sandbox", liveKey, "application/pdf", pdftest.Pages(1))
		if resp.StatusCode != 200 || sandbox.count() != 1 || live.count() != before+1 {
			t.Fatalf("live key routed: %d, sandbox %d, live %d -> %d", resp.StatusCode, sandbox.count(), before, live.count())
		}
		assertMoney(t, resp, "1", "9")

		g.assertBalance(id, 50, 0)
		if n := len(g.ledger(id)); n != 1 {
			t.Fatalf("test account has %d ledger entries, want only its purchase", n)
		}
		g.assertBalance(liveID, 9, 0)
	})
}
