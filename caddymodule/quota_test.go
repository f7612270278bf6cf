package caddymodule

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

func nextMonthUTC() time.Time {
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// A quota-only account (the BlueClerk seed: 10 free scans a month, then a
// clear refusal until the quota resets).
func TestQuotaOnlyAccount(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_quota", 0, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/e2e_quota", map[string]any{"monthly_quota": 3, "quota_unit": "scans"}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	reset := nextMonthUTC()
	for i, left := range []string{"2", "1", "0"} {
		resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1))
		if resp.StatusCode != 200 {
			t.Fatalf("scan %d: %d %s", i+1, resp.StatusCode, raw)
		}
		assertMoney(t, resp, "1", "0")
		if resp.Header.Get(HeaderQuotaRemaining) != left || resp.Header.Get(HeaderQuotaReset) != reset.Format(time.RFC3339) {
			t.Fatalf("scan %d: quota headers %q %q", i+1, resp.Header.Get(HeaderQuotaRemaining), resp.Header.Get(HeaderQuotaReset))
		}
	}
	before := u.requests.Load()
	resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1))
	if resp.StatusCode != 429 {
		t.Fatalf("4th scan: %d %s", resp.StatusCode, raw)
	}
	code, e := errorCode(t, raw)
	want := fmt.Sprintf("You've used all 3 scans of this period. Your quota resets on %s.", reset.Format("2006-01-02"))
	if code != meter.ECodeQuotaExceeded || e["message"] != want {
		t.Fatalf("refusal %s, want message %q", raw, want)
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if secs := int(time.Until(reset).Seconds()); err != nil || retry < secs-5 || retry > secs+5 {
		t.Fatalf("Retry-After %q, want about %d", resp.Header.Get("Retry-After"), secs)
	}
	if resp.Header.Get(HeaderQuotaRemaining) != "0" || u.requests.Load() != before {
		t.Fatalf("refusal headers %v or the upstream was called", resp.Header)
	}
	g.assertBalance("e2e_quota", 0, 0)
	usage := 0
	for _, en := range g.ledger("e2e_quota") {
		if en.Type == meter.EntryUsage {
			usage++
			if en.Amount != 0 || en.Quota != credits(1) {
				t.Fatalf("usage entry %+v: want the quota part only", en)
			}
		}
	}
	if usage != 3 {
		t.Fatalf("%d usage entries, want 3", usage)
	}
}

// Quota first, then the prepaid balance, then the overage cap; raising the
// cap lets the account go on; refunds give back what a request took.
func TestQuotaBalanceOverageAndRefunds(t *testing.T) {
	g, _ := startPerPage(t)
	key := g.newAccount("e2e_pools", 2, meter.ModeLive)
	g.adminDo("PATCH", "/meter/accounts/e2e_pools", map[string]any{"monthly_quota": 2, "overage_cap": 2}, nil)

	steps := []struct {
		status    int
		remaining string // X-Remaining-Credits: balance - reserved
		balance   float64
	}{
		{200, "2", 2}, {200, "2", 2}, // quota
		{200, "1", 1}, {200, "0", 0}, // balance
		{200, "-1", -1}, {200, "-2", -2}, // overage
		{402, "-2", -2},
	}
	for i, s := range steps {
		resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1))
		if resp.StatusCode != s.status || resp.Header.Get(HeaderRemaining) != s.remaining {
			t.Fatalf("request %d: %d remaining %q, want %d %q: %s", i+1, resp.StatusCode, resp.Header.Get(HeaderRemaining), s.status, s.remaining, raw)
		}
		if s.status == 402 {
			if code, _ := errorCode(t, raw); code != meter.ECodeOverageLimitReached {
				t.Fatalf("request %d: code %s", i+1, code)
			}
		}
		g.assertBalance("e2e_pools", s.balance, 0)
	}
	g.adminDo("PATCH", "/meter/accounts/e2e_pools", map[string]any{"overage_cap": 3}, nil)
	if resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1)); resp.StatusCode != 200 {
		t.Fatalf("after raising the cap: %d %s", resp.StatusCode, raw)
	}
	var bal meter.Account
	g.adminDo("GET", "/meter/accounts/e2e_pools", nil, &bal)
	if bal.Balance != credits(-3) || bal.Quota.Used != credits(2) || bal.Quota.Remaining != 0 || bal.Overage.Used != credits(3) || bal.Overage.Remaining != 0 {
		t.Fatalf("account after overage: %+v", bal)
	}

	// Refund the newest usage entry (1 credit of overage) once.
	usage := g.ledger("e2e_pools")[0]
	if usage.Type != meter.EntryUsage || usage.Amount != credits(-1) || usage.Overage != credits(1) {
		t.Fatalf("newest entry %+v", usage)
	}
	var refund meter.LedgerEntry
	if code := g.adminDo("POST", "/meter/accounts/e2e_pools/refunds", map[string]any{"entry_id": usage.ID}, &refund); code != 201 ||
		refund.Type != meter.EntryRefund || refund.Amount != credits(1) || refund.RefundOf != usage.ID || refund.BalanceAfter != credits(-2) {
		t.Fatalf("refund: %d %+v", code, refund)
	}
	var e map[string]any
	if code := g.adminDo("POST", "/meter/accounts/e2e_pools/refunds", map[string]any{"entry_id": usage.ID}, &e); code != 409 {
		t.Fatalf("second refund: %d %v", code, e)
	}
	g.assertBalance("e2e_pools", -2, 0)

	var rep struct {
		Data []struct {
			Route    string
			Requests int64
			Pages    int64
			Credits  meter.Credits
			Share    float64
		}
		Total struct{ Requests, Pages int64 }
	}
	if code := g.adminDo("GET", "/meter/accounts/e2e_pools/usage", nil, &rep); code != 200 || len(rep.Data) != 1 ||
		rep.Data[0].Route != "convert" || rep.Data[0].Requests != 7 || rep.Data[0].Pages != 7 || rep.Data[0].Credits != credits(7) || rep.Data[0].Share != 1 {
		raw, _ := json.Marshal(rep)
		t.Fatalf("usage: %d %s", code, raw)
	}
}
