package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// assertNoForgedHeaders checks that no money header of the upstream's
// reached the client.
func assertNoForgedHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, h := range []string{HeaderCost, HeaderRemaining, HeaderQuotaRemaining, HeaderQuotaReset, HeaderReplayed} {
		for _, v := range resp.Header.Values(h) {
			if v == "777" {
				t.Errorf("%s: the upstream's %q reached the client (%q)", h, v, resp.Header.Values(h))
			}
		}
	}
}

// Every response the upstream sends through the gateway carries the
// gateway's money headers only.
func TestUpstreamCannotSetMoneyHeaders(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		g, _ := startIdem(t, global)
		key := g.newAccount("idem_forge", 10, meter.ModeLive)
		resp, _ := g.post("/v1/convert/x", key, "application/pdf", pdftest.Pages(3))
		assertMoney(t, resp, "3", "7")
		assertNoForgedHeaders(t, resp)
		resp, _ = g.post("/v1/convert/fail", key, "application/pdf", pdftest.Pages(3))
		assertMoney(t, resp, "0", "7")
		assertNoForgedHeaders(t, resp)
		resp, _ = g.post("/v1/convert/x", key, "text/plain", []byte("no pages: free"))
		assertMoney(t, resp, "0", "7")
		assertNoForgedHeaders(t, resp)
	})
}

func TestMoneyWriterStripsTheUpstreamsHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	mw := newMoneyWriter(rec, defaultMoneyNames, func(h http.Header) { defaultMoneyNames.set(h, credits(5), credits(10)) })
	mw.Header().Set(HeaderCost, "777")
	mw.Header().Set(HeaderQuotaRemaining, "777")
	mw.Header().Set("X-Other", "kept")
	mw.WriteHeader(http.StatusOK)
	mw.Write([]byte("body"))
	if got := rec.Result().Header; got.Get(HeaderCost) != "5" || got.Get(HeaderRemaining) != "10" ||
		got.Get(HeaderQuotaRemaining) != "" || got.Get("X-Other") != "kept" || len(got.Values(HeaderCost)) != 1 {
		t.Fatalf("headers %v", got)
	}
}
