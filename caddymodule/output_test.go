package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// outputConfig prices generated PDFs as the PDF Generator API does: 1
// credit per started block of 5 pages of the output, an estimate of 100
// pages (20 credits) reserved. /gen accepts a hold of 1 block when the
// account cannot hold the estimate; /strict does not.
const outputConfig = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	meter {
		redis {$CREDITGATE_REDIS:off}
	}
}
http://{SITE} {
	route /gen/* {
		meter {
			route generate
			blocks 5 1 output reserve 100 at_least 1
		}
		reverse_proxy {UPSTREAM}
	}
	route /strict/* {
		meter {
			route generate_strict
			blocks 5 1 output reserve 100
		}
		reverse_proxy {UPSTREAM}
	}
	route /input/* {
		meter {
			route watermark
			blocks 5 1 output reserve input
		}
		reverse_proxy {UPSTREAM}
	}
}
`

func startOutput(t *testing.T) (*gateway, *exampleUpstream) {
	up := newExampleUpstream(t)
	return startGatewayRedis(t, strings.ReplaceAll(outputConfig, "{UPSTREAM}", up.addr), ""), up
}

var tmplBody = []byte(`{"template":{"id":1},"data":{"name":"x"}}`)

// PDF Generator API: "credits are calculated based on the number of pages
// in the generated PDF". The reserve is an estimate, not a ceiling: a
// 134-page output with 100 pages reserved is charged 27 credits, not 20.
func TestOutputChargesTheRealCount(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, _ := startOutput(t)
		key := g.newAccount("out_real", 100, meter.ModeLive)
		expect(t, g, "/strict/generate", key, "application/json", tmplBody, 200, "27", "73", "X-Test-Pages", "134")
		expect(t, g, "/strict/generate", key, "application/json", tmplBody, 200, "2", "71", "X-Test-Pages", "7")
		g.assertBalance("out_real", 71, 0)
		l := g.ledger("out_real")
		// The usage entries record the pages produced.
		if l[1].Amount != -credits(27) || l[1].Shortfall != 0 || l[1].Pages != 134 || l[0].Amount != -credits(2) || l[0].Pages != 7 {
			t.Errorf("ledger %+v", l)
		}
	})
}

// An estimate of 0 is no free pass on an uncapped route: a `reserve
// input` route sent no document quotes 0, and the pages the upstream
// produces are charged all the same (it was forwarded as a zero-cost
// request, never settled).
func TestOutputZeroEstimateIsCharged(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, up := startOutput(t)
		key := g.newAccount("out_zero", 10, meter.ModeLive)
		expect(t, g, "/input/generate", key, "", nil, 200, "2", "8", "X-Test-Pages", "7")
		g.assertBalance("out_zero", 8, 0)
		if l := g.ledger("out_zero"); l[0].Amount != -credits(2) || l[0].Pages != 7 {
			t.Errorf("ledger %+v", l)
		}
		if up.requests.Load() != 1 {
			t.Errorf("upstream reached %d times, want 1", up.requests.Load())
		}
	})
}

// An account whose credits cover the smallest charge but not the
// estimate is served where the route allows it (at_least): 3 credits, a
// 5-page generation costing 1. Where it does not, 402 before the upstream.
func TestOutputAtLeast(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, up := startOutput(t)
		key := g.newAccount("out_min", 3, meter.ModeLive)
		resp, raw := g.post("/strict/generate", key, "application/json", tmplBody, "X-Test-Pages", "5")
		if code, _ := errorCode(t, raw); resp.StatusCode != 402 || code != meter.ECodeInsufficientCredits {
			t.Fatalf("strict route: HTTP %d %s", resp.StatusCode, raw)
		}
		if up.requests.Load() != 0 {
			t.Fatal("a refused request reached the upstream")
		}
		expect(t, g, "/gen/generate", key, "application/json", tmplBody, 200, "1", "2", "X-Test-Pages", "5")
		g.assertBalance("out_min", 2, 0)
		// The dry run shows the estimate, says it is one, and the minimum.
		resp, raw = g.post("/gen/generate", key, "application/json", tmplBody, HeaderDryRun, "true")
		var dr struct {
			Total      meter.Credits  `json:"total"`
			Estimate   bool           `json:"estimate"`
			Minimum    *meter.Credits `json:"minimum"`
			Affordable bool           `json:"affordable"`
			Lines      []struct {
				Estimate bool   `json:"estimate"`
				Source   string `json:"source"`
			} `json:"lines"`
		}
		if err := json.Unmarshal(raw, &dr); err != nil || resp.StatusCode != 200 {
			t.Fatalf("dry run: HTTP %d %s", resp.StatusCode, raw)
		}
		if dr.Total != credits(20) || !dr.Estimate || dr.Minimum == nil || *dr.Minimum != credits(1) || !dr.Affordable ||
			!dr.Lines[0].Estimate || !strings.Contains(dr.Lines[0].Source, "estimate: 100 output pages") {
			t.Errorf("dry run %s", raw)
		}
		if up.requests.Load() != 1 {
			t.Errorf("upstream reached %d times, want 1", up.requests.Load())
		}
	})
}

// What the account cannot pay of a real count is never given away: it is
// charged all the same (the balance goes below zero), recorded as the
// ledger entry's shortfall with a credits.shortfall event, and the
// account's requests are refused with 402 credits_owed, before the
// upstream, until it buys credits.
func TestOutputShortfall(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g, up := startOutput(t)
		key := g.newAccount("out_short", 3, meter.ModeLive)
		expect(t, g, "/gen/generate", key, "application/json", tmplBody, 200, "27", "-24", "X-Test-Pages", "134")
		g.assertBalance("out_short", -24, 0)
		l := g.ledger("out_short")
		if l[0].Type != meter.EntryUsage || l[0].Amount != -credits(27) || l[0].Shortfall != credits(24) {
			t.Errorf("usage entry %+v", l[0])
		}
		n := up.requests.Load()
		for _, path := range []string{"/gen/generate", "/strict/generate"} {
			resp, raw := g.post(path, key, "application/json", tmplBody, "X-Test-Pages", "1")
			code, e := errorCode(t, raw)
			if resp.StatusCode != 402 || code != meter.ECodeCreditsOwed || e["owed"] != 24.0 {
				t.Fatalf("%s while owing: HTTP %d %s", path, resp.StatusCode, raw)
			}
			assertMoney(t, resp, "20", "-24")
		}
		if up.requests.Load() != n {
			t.Fatal("a refused request reached the upstream")
		}
		if code := g.adminDo("POST", "/meter/accounts/out_short/credits", map[string]any{"amount": 30}, nil); code != 201 {
			t.Fatalf("purchase: HTTP %d", code)
		}
		expect(t, g, "/gen/generate", key, "application/json", tmplBody, 200, "1", "5", "X-Test-Pages", "3")
		g.assertBalance("out_short", 5, 0)
	})
}

// The shortfall of an output-priced request is delivered as a signed
// credits.shortfall webhook.
func TestOutputShortfallWebhook(t *testing.T) {
	id := uniqueID("out_wh")
	r := newReceiver(t, id)
	up := newExampleUpstream(t)
	site := `
http://{SITE} {
	route /gen/* {
		meter {
			blocks 5 1 output reserve 100 at_least 1
		}
		reverse_proxy ` + up.addr + `
	}
}
`
	g := startGateway(t, strings.ReplaceAll(webhookGlobal, "{HOOK}", r.URL)+site)
	key := g.newAccount(id, 3, meter.ModeLive)
	expect(t, g, "/gen/generate", key, "application/json", tmplBody, 200, "27", "-24", "X-Test-Pages", "134")
	ds := r.waitFor("shortfall", func(ds []delivery) bool { return len(ds) >= 1 })
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(ds), ds)
	}
	if p := ds[0].Payload; p.Type != meter.EventShortfall || p.Data["shortfall"] != 24.0 || p.Data["balance"] != -24.0 {
		t.Fatalf("payload %+v", p)
	}
}
