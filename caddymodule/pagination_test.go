package caddymodule

import (
	"fmt"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// offsetPage is a transactions page as a DocExtract client reads it.
type offsetPage struct {
	Transactions []meter.LedgerEntry
	Data         []meter.LedgerEntry
	Total        int
	Limit        int
	Offset       int
	NextCursor   string `json:"next_cursor"`
}

// DocExtract: "GET /v1/credits/transactions?limit=50" answers
// {"transactions", "total", "limit", "offset"}; "offset: Results offset for
// pagination". A client paging a 250-entry ledger by offset sees every
// entry exactly once, newest first, with total 250 on every page, through
// meter_api and the admin API, on both stores.
func TestSeedDocExtractOffsetPagination(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		g := startGateway(t, global+apiSite)
		id := "page_" + uniqueID("a")
		key := g.newAccount(id, 100, meter.ModeLive) // entry 1: the purchase
		for i := 0; i < 199; i++ {
			if code := g.adminDo("POST", "/meter/accounts/"+id+"/credits", map[string]any{"amount": 1, "description": fmt.Sprint("grant ", i)}, nil); code != 201 {
				t.Fatalf("grant %d: HTTP %d", i, code)
			}
		}
		for i := 0; i < 50; i++ {
			if resp, raw := g.post("/convert", key, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, raw)
			}
		}
		g.assertBalance(id, 249, 0)

		// The cursor walk is the reference order.
		var ref []string
		for cursor := ""; ; {
			var p offsetPage
			if code := g.get("/v1/credits/transactions?limit=100&cursor="+cursor, key, &p); code != 200 {
				t.Fatalf("cursor page: HTTP %d", code)
			}
			for _, e := range p.Data {
				ref = append(ref, e.ID)
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(ref) != 250 {
			t.Fatalf("cursor walk: %d entries, want 250", len(ref))
		}

		walk := func(name string, limit int, get func(offset int) (int, offsetPage)) {
			var got []string
			for offset := 0; ; offset += limit {
				code, p := get(offset)
				if code != 200 || p.Total != 250 || p.Limit != limit || p.Offset != offset || len(p.Transactions) != len(p.Data) {
					t.Fatalf("%s offset %d: HTTP %d total %d limit %d offset %d", name, offset, code, p.Total, p.Limit, p.Offset)
				}
				for _, e := range p.Transactions {
					got = append(got, e.ID)
				}
				if offset+limit >= p.Total {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(ref) {
				t.Fatalf("%s: offset walk of %d entries differs from the cursor walk", name, len(got))
			}
		}
		walk("meter_api", 50, func(offset int) (int, offsetPage) {
			var p offsetPage
			code := g.get(fmt.Sprintf("/v1/credits/transactions?limit=50&offset=%d", offset), key, &p)
			return code, p
		})
		walk("admin", 100, func(offset int) (int, offsetPage) {
			var p offsetPage
			code := g.adminDo("GET", fmt.Sprintf("/meter/accounts/%s/transactions?limit=100&offset=%d", id, offset), nil, &p)
			return code, p
		})

		var p offsetPage
		if code := g.get("/v1/credits/transactions?type=usage&limit=20&offset=40", key, &p); code != 200 || p.Total != 50 || len(p.Transactions) != 10 {
			t.Fatalf("usage page: HTTP %d total %d, %d entries", code, p.Total, len(p.Transactions))
		}
		if code := g.get("/v1/credits/transactions?offset=250", key, &p); code != 200 || p.Total != 250 || len(p.Transactions) != 0 {
			t.Fatalf("past the end: HTTP %d total %d, %d entries", code, p.Total, len(p.Transactions))
		}
		for _, bad := range []string{"-1", "10001", "x"} {
			resp, raw := g.getRaw("/v1/credits/transactions?offset="+bad, key)
			if code, _ := errorCode(t, raw); resp.StatusCode != 400 || code != meter.ECodeInvalid {
				t.Fatalf("offset %s: HTTP %d %s", bad, resp.StatusCode, raw)
			}
		}
	})
}

// docs/examples/docextract.Caddyfile as shipped: a DocExtract client
// pages its transactions by limit and offset at /v1/credits/transactions.
func TestExampleDocExtractOffsetPaging(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "docextract.Caddyfile").gateway
		key := g.newAccount("ex_docextract_pages", 100, meter.ModeLive)
		for i := 0; i < 11; i++ {
			expect(t, g, "/v1/extract", key, "application/pdf", pdftest.Pages(1), 200, "1", fmt.Sprint(99-i))
		}
		seen := map[string]bool{}
		for offset := 0; offset < 12; offset += 5 {
			var p offsetPage
			if code := g.get(fmt.Sprintf("/v1/credits/transactions?limit=5&offset=%d", offset), key, &p); code != 200 ||
				p.Total != 12 || p.Limit != 5 || p.Offset != offset || len(p.Transactions) != min(5, 12-offset) {
				t.Fatalf("offset %d: HTTP %d %+v", offset, code, p)
			}
			for _, e := range p.Transactions {
				if seen[e.ID] {
					t.Fatalf("entry %s twice", e.ID)
				}
				seen[e.ID] = true
			}
		}
		if len(seen) != 12 {
			t.Fatalf("%d entries seen, want 12", len(seen))
		}
	})
}
