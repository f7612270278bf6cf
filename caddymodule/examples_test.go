package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// The Caddyfiles of docs/examples run here as they are, but for the
// global block (the test's admin address and Redis), the site address and
// the upstream.

// exampleUpstream answers like the APIs of the examples: a generate or
// watermark request returns a PDF of X-Test-Pages pages (default: as many
// as it was sent); anything else returns JSON.
func exampleUpstream(t *testing.T) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.Contains(r.URL.Path, "/generate") || strings.Contains(r.URL.Path, "/watermark") {
			n, _ := strconv.Atoi(r.Header.Get("X-Test-Pages"))
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write(pdftest.Pages(n))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func startExample(t *testing.T, name string) *gateway {
	t.Helper()
	src, err := os.ReadFile("../docs/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for old, repl := range map[string]string{
		"meter {\n\t\tredis {$CREDITGATE_REDIS}": "admin {ADMIN}\n\tpersist_config off\n\tauto_https off\n\tmeter {\n\t\tredis {REDIS}",
		":8080 {":                                "http://{SITE} {",
		"localhost:9000":                         exampleUpstream(t),
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("%s: no %q to replace", name, old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	return startGateway(t, s)
}

// expect sends a request and checks its status and money headers.
func expect(t *testing.T, g *gateway, path, key, ct string, body []byte, status int, cost, remaining string, hdr ...string) {
	t.Helper()
	resp, raw := g.post(path, key, ct, body, hdr...)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: HTTP %d, want %d: %s", path, resp.StatusCode, status, raw)
	}
	assertMoney(t, resp, cost, remaining)
}

func setRates(t *testing.T, g *gateway, id string, rates map[string]any) {
	t.Helper()
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"rates": rates}, nil); code != 200 {
		t.Fatalf("PATCH rates: HTTP %d", code)
	}
}

var archD = [2]float64{2592, 1728} // 36 x 24 in, landscape

func TestExamplePlangrep(t *testing.T) {
	g := startExample(t, "plangrep.Caddyfile")
	key := g.newAccount("ex_plangrep", 100, meter.ModeLive)
	const path = "/api/open/v1/jobs"
	// Letter and A3 pages: A3 (11.7 in wide) does not fit 11x17 in.
	expect(t, g, path, key, "application/pdf", pdftest.Sized(pdftest.Letter, pdftest.A3, pdftest.Letter, archD), 200, "22", "78")
	mp, ct := multipartBody(t,
		[3]string{"sheet.pdf", "application/pdf", string(pdftest.Sized(pdftest.A3))},
		[3]string{"photo.png", "image/png", "\x89PNG\r\n\x1a\n"},
	)
	expect(t, g, path, key, ct, mp, 200, "11", "67")
	g.assertBalance("ex_plangrep", 67, 0)

	// An organization with its own rates (set before its key is first
	// used: the gateway caches a key's settings for key_cache_ttl).
	own := g.newAccount("ex_plangrep_own", 100, meter.ModeLive)
	setRates(t, g, "ex_plangrep_own", map[string]any{"drawing": 8, "document": 2})
	expect(t, g, path, own, "application/pdf", pdftest.Sized(archD, pdftest.Letter, pdftest.Letter), 200, "12", "88")
	g.assertBalance("ex_plangrep_own", 88, 0)
}

func TestExamplePDFGeneratorAPI(t *testing.T) {
	g := startExample(t, "pdfgeneratorapi.Caddyfile")
	key := g.newAccount("ex_pdfgen", 100, meter.ModeLive)
	tmpl := []byte(`{"template":{"id":1},"data":{"name":"x"}}`)
	// Generated PDFs: the returned pages; 10 (50 pages) reserved meanwhile.
	expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "2", "98", "X-Test-Pages", "7")
	expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "1", "97", "X-Test-Pages", "5")
	expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "10", "87", "X-Test-Pages", "60") // capped
	// Watermark: reserve the input's 11 pages (3 blocks); charged the output's.
	expect(t, g, "/api/v4/pdfservices/watermark", key, "application/pdf", pdftest.Pages(11), 200, "3", "84", "X-Test-Pages", "11")
	// Processing a PDF: its input pages.
	expect(t, g, "/api/v4/pdfservices/encrypt", key, "application/pdf", pdftest.Pages(6), 200, "2", "82")
	expect(t, g, "/api/v4/pdfservices/encrypt", key, "application/pdf", pdftest.Pages(5), 200, "1", "81")
	// Fixed per call: no page counting at all, even for a body that is no PDF.
	expect(t, g, "/api/v4/qrcode", key, "application/json", []byte(`{"text":"hi"}`), 200, "1", "80")
	expect(t, g, "/api/v4/einvoices", key, "application/xml", []byte(`<Invoice/>`), 200, "1", "79")
	g.assertBalance("ex_pdfgen", 79, 0)
}

func TestExampleDocExtract(t *testing.T) {
	g := startExample(t, "docextract.Caddyfile")
	key := g.newAccount("ex_docextract", 100, meter.ModeLive)
	remaining := 100
	for _, tt := range []struct{ pages, cost int }{{1, 1}, {2, 2}, {5, 2}, {6, 3}, {10, 3}, {11, 5}, {20, 5}, {21, 8}} {
		remaining -= tt.cost
		expect(t, g, "/v1/extract", key, "application/pdf", pdftest.Pages(tt.pages), 200, strconv.Itoa(tt.cost), strconv.Itoa(remaining))
	}
	// Three documents in one request are priced each: 1 + 3 + 8.
	mp, ct := multipartBody(t,
		[3]string{"receipt.pdf", "application/pdf", string(pdftest.Pages(1))},
		[3]string{"contract.pdf", "application/pdf", string(pdftest.Pages(7))},
		[3]string{"report.pdf", "application/pdf", string(pdftest.Pages(30))},
	)
	remaining -= 12
	expect(t, g, "/v1/extract", key, ct, mp, 200, "12", strconv.Itoa(remaining))
	g.assertBalance("ex_docextract", float64(remaining), 0)
}

func TestExamplePSPDFKit(t *testing.T) {
	g := startExample(t, "pspdfkit.Caddyfile")
	key := g.newAccount("ex_pspdfkit", 100, meter.ModeLive)
	analyze, err := os.ReadFile("../meter/pricing/testdata/pspdfkit_analyze.json")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, g, "/build", key, "application/json", analyze, 200, "11.5", "88.5")
	expect(t, g, "/analyze_build", key, "application/json", analyze, 200, "0", "88.5")
	// One OCR'd image: image conversion 0.5 + OCR 2.
	one := `{"parts":[{"file":"scan","content_type":"image/jpeg","actions":[{"type":"ocr","language":"english"}]}]}`
	expect(t, g, "/build", key, "application/json", []byte(one), 200, "2.5", "86")
	// Nothing priced is used: missing fields count 0.
	expect(t, g, "/build", key, "application/json", []byte(`{"parts":[{"file":"document"}]}`), 200, "0", "86")
	// Not JSON: refused, nothing forwarded or charged.
	resp, raw := g.post("/build", key, "application/json", []byte(`{"parts":[`))
	if code, _ := errorCode(t, raw); resp.StatusCode != 400 || code != meter.ECodeBadRequest {
		t.Fatalf("invalid JSON: HTTP %d %s", resp.StatusCode, raw)
	}
	resp, raw = g.post("/build", key, "text/plain", analyze)
	if code, _ := errorCode(t, raw); resp.StatusCode != 400 || code != meter.ECodeBadRequest {
		t.Fatalf("JSON sent as text/plain: HTTP %d %s", resp.StatusCode, raw)
	}
	g.assertBalance("ex_pspdfkit", 86, 0)
}

func TestExampleBlueClerk(t *testing.T) {
	g := startExample(t, "blueclerk.Caddyfile")
	key := g.newAccount("ex_blueclerk", 10, meter.ModeLive)
	plan := pdftest.Sized(archD, archD, archD)
	for i := 9; i >= 0; i-- {
		expect(t, g, "/api/builder/plans/scan", key, "application/pdf", plan, 200, "1", strconv.Itoa(i))
	}
	resp, raw := g.post("/api/builder/plans/scan", key, "application/pdf", plan)
	if code, _ := errorCode(t, raw); resp.StatusCode != http.StatusPaymentRequired || code != meter.ECodeInsufficientCredits {
		t.Fatalf("11th scan: HTTP %d %s", resp.StatusCode, raw)
	}
	g.assertBalance("ex_blueclerk", 0, 0)
}

// The guide's Caddyfile (docs/jobs.md) is docs/examples/plangrep-jobs.Caddyfile
// and adapts, with each handler where the guide says.
func TestExampleJobsGuide(t *testing.T) {
	src, err := os.ReadFile("../docs/examples/plangrep-jobs.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../docs/jobs.md")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src[strings.IndexByte(string(src), '\n')+1:])
	if !strings.Contains(string(guide), "```caddyfile\n"+body+"```") {
		t.Fatal("docs/jobs.md's Caddyfile differs from docs/examples/plangrep-jobs.Caddyfile")
	}
	t.Setenv("CREDITGATE_REDIS", "redis://127.0.0.1:6379/0")
	m, err := adapt(t, string(src))
	if err != nil {
		t.Fatal(err)
	}
	h := find(m, "meter")
	if job, _ := h["job"].(map[string]any); job["upstream_id"] != "json $.jobId" || job["declared_bytes"] != "$.files[*].sizeBytes" {
		t.Fatalf("meter handler %v", h)
	}
	for _, action := range []string{"status", "resume", "billing", "progress"} {
		if !strings.Contains(fmt.Sprint(m), "action:"+action) {
			t.Errorf("no meter_job %s in the adapted config", action)
		}
	}
}
