package caddymodule

import (
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// `meter` followed by `respond` in one block: Caddy orders handlers by
// directive, so respond used to run first and answer every request
// unmetered. Now meter runs first: no key is 401, a key pays.
func TestMeterBeforeRespondInOneBlock(t *testing.T) {
	g := startGateway(t, globalBlock+`
http://{SITE} {
	meter {
		per_page 1
	}
	respond "ok"
}
`)
	resp, raw := g.post("/v1/convert", "", "application/pdf", pdftest.Pages(2))
	if code, _ := errorCode(t, raw); resp.StatusCode != 401 || code != meter.ECodeInvalidAPIKey {
		t.Fatalf("without a key: %d %s", resp.StatusCode, raw)
	}
	key := g.newAccount("order_respond", 10, meter.ModeLive)
	resp, raw = g.post("/v1/convert", key, "application/pdf", pdftest.Pages(2))
	if resp.StatusCode != 200 || string(raw) != "ok" {
		t.Fatalf("with a key: %d %s", resp.StatusCode, raw)
	}
	assertMoney(t, resp, "2", "8")
	g.assertBalance("order_respond", 8, 0)
}
