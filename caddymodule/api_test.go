package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

const apiSite = `
http://{SITE} {
	handle /v1/credits/* {
		meter_api
	}
	handle {
		route {
			meter {
				per_page 1
			}
			respond "done"
		}
	}
}
`

func (g *gateway) get(path, key string, out any) int {
	g.t.Helper()
	resp, raw := g.getRaw(path, key)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			g.t.Fatalf("GET %s: %q: %v", path, raw, err)
		}
	}
	return resp.StatusCode
}

func TestCustomerAPI(t *testing.T) {
	g := startGateway(t, globalBlock+apiSite)
	key := g.newAccount("api_a", 20, meter.ModeLive)
	other := g.newAccount("api_b", 7, meter.ModeLive)
	for i := 1; i <= 3; i++ {
		if resp, _ := g.post("/convert", key, "application/pdf", pdftest.Pages(i)); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}

	var bal meter.Account
	if code := g.get("/v1/credits/balance", key, &bal); code != 200 || bal.ID != "api_a" || bal.Balance != credits(14) || bal.Available != credits(14) {
		t.Fatalf("balance: %d %+v", code, bal)
	}
	if code := g.get("/v1/credits/balance", other, &bal); code != 200 || bal.ID != "api_b" || bal.Balance != credits(7) {
		t.Fatalf("other's balance: %d %+v", code, bal)
	}

	type page struct {
		Data       []meter.LedgerEntry
		HasMore    bool   `json:"has_more"`
		NextCursor string `json:"next_cursor"`
	}
	var p page
	if code := g.get("/v1/credits/transactions?limit=2", key, &p); code != 200 || len(p.Data) != 2 || !p.HasMore || p.NextCursor == "" {
		t.Fatalf("first page: %d %+v", code, p)
	}
	if p.Data[0].Amount != credits(-3) || p.Data[1].Amount != credits(-2) || p.Data[0].AccountID != "api_a" {
		t.Fatalf("first page entries %+v", p.Data)
	}
	var p2 page
	if code := g.get("/v1/credits/transactions?limit=2&cursor="+p.NextCursor, key, &p2); code != 200 || len(p2.Data) != 2 || p2.Data[0].Amount != credits(-1) || p2.Data[1].Type != meter.EntryPurchase {
		t.Fatalf("second page: %d %+v", code, p2)
	}
	var usage page
	if code := g.get("/v1/credits/transactions?type=purchase", key, &usage); code != 200 || len(usage.Data) != 1 || usage.HasMore {
		t.Fatalf("type filter: %d %+v", code, usage)
	}
	var none page
	if code := g.get("/v1/credits/transactions?date_to=2020-01-01", key, &none); code != 200 || len(none.Data) != 0 {
		t.Fatalf("date filter: %d %+v", code, none)
	}

	var rep struct {
		Data []struct {
			Route           string
			Requests, Pages int64
			Credits         meter.Credits
		}
		Total struct{ Credits meter.Credits }
	}
	if code := g.get("/v1/credits/usage", key, &rep); code != 200 || len(rep.Data) != 1 || rep.Data[0].Route != "/convert" ||
		rep.Data[0].Requests != 3 || rep.Data[0].Pages != 6 || rep.Data[0].Credits != credits(6) || rep.Total.Credits != credits(6) {
		t.Fatalf("usage: %d %+v", code, rep)
	}
	if code := g.get("/v1/credits/usage", other, &rep); code != 200 || len(rep.Data) != 0 {
		t.Fatalf("another account's usage: %d %+v", code, rep)
	}
	if code := g.get("/v1/credits/usage?period=someday", key, nil); code != 400 {
		t.Fatalf("bad period: %d", code)
	}
	if bal.TotalUsed != 0 {
		t.Fatalf("other's totals %+v", bal)
	}
	g.get("/v1/credits/balance", key, &bal)
	if bal.TotalPurchased != credits(20) || bal.TotalUsed != credits(6) {
		t.Fatalf("totals %+v", bal)
	}

	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if code := g.adminDo("PATCH", "/meter/accounts/api_a", map[string]any{"webhook_url": "http://127.0.0.1:1/hook", "webhook_secret": secret}, nil); code != 200 {
		t.Fatalf("PATCH webhook: %d", code)
	}
	var raw map[string]any
	g.get("/v1/credits/balance", key, &raw)
	if js, _ := json.Marshal(raw); strings.Contains(string(js), secret) || !strings.Contains(string(js), "(set)") {
		t.Fatalf("the customer API shows the webhook secret: %s", js)
	}

	for _, bad := range []string{"?limit=101", "?limit=0", "?type=gift", "?date_from=yesterday"} {
		var e map[string]any
		if code := g.get("/v1/credits/transactions"+bad, key, &e); code != 400 {
			t.Errorf("%s: HTTP %d %v", bad, code, e)
		}
	}
	var e map[string]any
	if code := g.get("/v1/credits/balance", "", &e); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	if code := g.get("/v1/credits/nope", key, &e); code != 404 {
		t.Fatalf("unknown endpoint: %d", code)
	}
}
