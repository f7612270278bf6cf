package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// The Caddyfiles of docs/examples run here as they are shipped, once on
// the embedded store (no CREDITGATE_REDIS: a newcomer's first try) and
// once on Redis (CREDITGATE_REDIS set), but for the test's admin address,
// the site addresses and the upstream.

// exampleUpstream answers like the APIs of the examples: a generate or
// watermark request returns a PDF of X-Test-Pages pages (default: as many
// as it was sent); a job submission names its job; anything else returns
// JSON.
type exampleUpstream struct {
	addr     string
	requests atomic.Int64
	jobToken atomic.Value // the X-Meter-Job-Token of the last submission
}

func newExampleUpstream(t *testing.T) *exampleUpstream {
	u := &exampleUpstream{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.Contains(r.URL.Path, "/generate") || strings.Contains(r.URL.Path, "/watermark") {
			n, _ := strconv.Atoi(r.Header.Get("X-Test-Pages"))
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write(pdftest.Pages(n))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/jobs") {
			u.jobToken.Store(r.Header.Get("X-Meter-Job-Token"))
			fmt.Fprint(w, `{"jobId":"up-1"}`)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	u.addr = strings.TrimPrefix(s.URL, "http://")
	return u
}

// example is an example's gateway, its upstream and its progress listener
// (plangrep-jobs.Caddyfile's :8081).
type example struct {
	*gateway
	up       *exampleUpstream
	progress string
}

// exampleStores runs f on the embedded store and on Redis, choosing only
// by CREDITGATE_REDIS as a user would, and checks that each run used the
// store it should have.
func exampleStores(t *testing.T, f func(t *testing.T)) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			data := t.TempDir()
			t.Setenv("XDG_DATA_HOME", data)
			t.Setenv("CREDITGATE_REDIS", testRedisURL(t))
			if store == "embedded" {
				os.Unsetenv("CREDITGATE_REDIS") // t.Setenv restores it
			}
			f(t)
			_, err := os.Stat(filepath.Join(data, "caddy", "creditgate", "meter.db"))
			if (store == "embedded") != (err == nil) {
				t.Errorf("%s run: embedded store file: %v", store, err)
			}
		})
	}
}

func startExample(t *testing.T, name string) *example {
	t.Helper()
	src, err := os.ReadFile("../docs/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	ex := &example{up: newExampleUpstream(t), progress: freeAddr(t)}
	s := string(src)
	repl := map[string]string{
		"{\n\tmeter {\n\t\tredis {$CREDITGATE_REDIS:off}": "{\n\tadmin {ADMIN}\n\tpersist_config off\n\tmeter {\n\t\tredis {$CREDITGATE_REDIS:off}",
		":8080 {":        "http://{SITE} {",
		"localhost:9000": ex.up.addr,
	}
	if strings.Contains(s, ":8081 {") {
		repl[":8081 {"] = "http://" + ex.progress + " {"
		repl["127.0.0.1:8081"] = ex.progress
	}
	for old, new := range repl {
		if !strings.Contains(s, old) {
			t.Fatalf("%s: no %q to replace", name, old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	ex.gateway = startGatewayRedis(t, s, "")
	return ex
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
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "plangrep.Caddyfile").gateway
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
	})
}

func TestExamplePDFGeneratorAPI(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "pdfgeneratorapi.Caddyfile").gateway
		key := g.newAccount("ex_pdfgen", 100, meter.ModeLive)
		tmpl := []byte(`{"template":{"id":1},"data":{"name":"x"}}`)
		// Generated PDFs: "credits are calculated based on the number of
		// pages in the generated PDF"; 10 (50 pages) reserved meanwhile, an
		// estimate: 60 pages cost 12.
		expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "2", "98", "X-Test-Pages", "7")
		expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "1", "97", "X-Test-Pages", "5")
		expect(t, g, "/api/v4/documents/generate", key, "application/json", tmpl, 200, "12", "85", "X-Test-Pages", "60")
		// Watermark: reserve the input's 11 pages (3 blocks); charged the output's.
		expect(t, g, "/api/v4/pdfservices/watermark", key, "application/pdf", pdftest.Pages(11), 200, "3", "82", "X-Test-Pages", "11")
		// Processing a PDF: its input pages.
		expect(t, g, "/api/v4/pdfservices/encrypt", key, "application/pdf", pdftest.Pages(6), 200, "2", "80")
		expect(t, g, "/api/v4/pdfservices/encrypt", key, "application/pdf", pdftest.Pages(5), 200, "1", "79")
		// Fixed per call: no page counting at all, even for a body that is no PDF.
		expect(t, g, "/api/v4/qrcode", key, "application/json", []byte(`{"text":"hi"}`), 200, "1", "78")
		expect(t, g, "/api/v4/einvoices", key, "application/xml", []byte(`<Invoice/>`), 200, "1", "77")
		g.assertBalance("ex_pdfgen", 77, 0)

		// An account with 3 credits cannot hold the estimate (10) but is
		// served a 5-page document, which costs 1.
		small := g.newAccount("ex_pdfgen_small", 3, meter.ModeLive)
		expect(t, g, "/api/v4/documents/generate", small, "application/json", tmpl, 200, "1", "2", "X-Test-Pages", "5")
		g.assertBalance("ex_pdfgen_small", 2, 0)
	})
}

func TestExampleDocExtract(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "docextract.Caddyfile").gateway
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
	})
}

func TestExamplePSPDFKit(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "pspdfkit.Caddyfile").gateway
		key := g.newAccount("ex_pspdfkit", 100, meter.ModeLive)
		analyze, err := os.ReadFile("../meter/pricing/testdata/pspdfkit_analyze.json")
		if err != nil {
			t.Fatal(err)
		}
		expectPSPDFKit(t, g, "/build", key, "application/json", analyze, 200, "11.5", "88.5")
		expectPSPDFKit(t, g, "/analyze_build", key, "application/json", analyze, 200, "0", "88.5")
		// One OCR'd image: image conversion 0.5 + OCR 2.
		one := `{"parts":[{"file":"scan","content_type":"image/jpeg","actions":[{"type":"ocr","language":"english"}]}]}`
		expectPSPDFKit(t, g, "/build", key, "application/json", []byte(one), 200, "2.5", "86")
		// Nothing priced is used: missing fields count 0.
		expectPSPDFKit(t, g, "/build", key, "application/json", []byte(`{"parts":[{"file":"document"}]}`), 200, "0", "86")
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
	})
}

// BlueClerk (the seed blueclerk-scan-quota.txt): 10 free scans a month,
// then 429 quota_exceeded naming the reset date, the scanner never called.
func TestExampleBlueClerk(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "blueclerk.Caddyfile")
		// As the example's header sets up a builder account: "10 free scans
		// per month - Default for all builder accounts", with no PATCH.
		key := g.newAccount("ex_blueclerk", 0, meter.ModeLive)
		reset := nextMonthUTC()
		plan := pdftest.Sized(archD, archD, archD)
		for i := 9; i >= 0; i-- {
			resp, raw := g.post("/api/builder/plans/scan", key, "application/pdf", plan)
			if resp.StatusCode != 200 || resp.Header.Get(HeaderQuotaRemaining) != strconv.Itoa(i) {
				t.Fatalf("scan %d: HTTP %d, %s %q: %s", 10-i, resp.StatusCode, HeaderQuotaRemaining, resp.Header.Get(HeaderQuotaRemaining), raw)
			}
			assertMoney(t, resp, "1", "0")
		}
		before := g.up.requests.Load()
		resp, raw := g.post("/api/builder/plans/scan", key, "application/pdf", plan)
		code, e := errorCode(t, raw)
		want := fmt.Sprintf("You've used all 10 AI scans of this period. Your quota resets on %s.", reset.Format("2006-01-02"))
		if resp.StatusCode != http.StatusTooManyRequests || code != meter.ECodeQuotaExceeded || e["message"] != want {
			t.Fatalf("11th scan: HTTP %d %s, want 429 %s %q", resp.StatusCode, raw, meter.ECodeQuotaExceeded, want)
		}
		if e["resets_at"] != reset.Format(time.RFC3339) || resp.Header.Get("Retry-After") == "" || resp.Header.Get(HeaderQuotaReset) != reset.Format(time.RFC3339) {
			t.Fatalf("11th scan: resets_at %v, Retry-After %q, %s %q", e["resets_at"], resp.Header.Get("Retry-After"), HeaderQuotaReset, resp.Header.Get(HeaderQuotaReset))
		}
		if g.up.requests.Load() != before {
			t.Fatal("the refused scan reached the scanner")
		}
		g.assertBalance("ex_blueclerk", 0, 0)
		var quota meter.Credits
		for _, en := range g.ledger("ex_blueclerk") {
			quota += en.Quota
		}
		if quota != credits(10) {
			t.Fatalf("ledger: %s taken from the quota, want 10", quota)
		}
		// "Platform admins can manually increase your scan cap": the
		// account's own quota wins over its plan's, at once.
		if code := g.adminDo("PATCH", "/meter/accounts/ex_blueclerk", map[string]any{"monthly_quota": 100}, nil); code != 200 {
			t.Fatalf("PATCH quota: HTTP %d", code)
		}
		resp, raw = g.post("/api/builder/plans/scan", key, "application/pdf", plan)
		if resp.StatusCode != 200 || resp.Header.Get(HeaderQuotaRemaining) != "89" {
			t.Fatalf("scan after the raise: HTTP %d %q %s", resp.StatusCode, resp.Header.Get(HeaderQuotaRemaining), raw)
		}
		g.assertBalance("ex_blueclerk", 0, 0)
	})
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

// The jobs guide's Caddyfile runs: a submission holds its estimate, the
// upstream's final report on the loopback progress listener charges the
// pages done.
func TestExamplePlangrepJobs(t *testing.T) {
	exampleStores(t, func(t *testing.T) {
		g := startExample(t, "plangrep-jobs.Caddyfile")
		key := g.newAccount("ex_jobs", 100, meter.ModeLive)
		resp, raw := g.post("/api/open/v1/jobs", key, "application/pdf", pdftest.Sized(pdftest.Letter, pdftest.Letter, archD))
		if resp.StatusCode != 200 || resp.Header.Get(HeaderReserved) != "12" {
			t.Fatalf("submission: HTTP %d, %s %q: %s", resp.StatusCode, HeaderReserved, resp.Header.Get(HeaderReserved), raw)
		}
		assertMoney(t, resp, "0", "88")
		g.assertBalance("ex_jobs", 100, 12)
		token, _ := g.up.jobToken.Load().(string)
		req, _ := http.NewRequest("POST", "http://"+g.progress+"/meter/progress",
			strings.NewReader(`{"pages": {"drawing": 1, "document": 2}, "status": "completed"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		presp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(presp.Body)
		presp.Body.Close()
		if presp.StatusCode != 200 || presp.Header.Get(HeaderCost) != "12" {
			t.Fatalf("progress: HTTP %d, %s %q: %s", presp.StatusCode, HeaderCost, presp.Header.Get(HeaderCost), body)
		}
		g.assertBalance("ex_jobs", 88, 0)
	})
}
