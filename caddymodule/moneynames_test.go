package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// Custom names of the money headers: the global option names them for
// every route, a handler may rename its own.
const namedMoneySite = `
http://{SITE} {
	handle /convert {
		meter {
			route convert
			per_page 1
		}
		reverse_proxy {UPSTREAM}
	}
	handle /own {
		meter {
			route own
			per_page 1
			cost_header X-Own-Cost
		}
		reverse_proxy {UPSTREAM}
	}
	handle /quote {
		meter_quote convert
	}
}
`

const (
	namedCost      = "X-Pspdfkit-Request-Cost"
	namedRemaining = "X-Credits-Left"
)

func withMoneyNames(global string) string {
	return strings.Replace(global, "meter {", "meter {\n\t\tcost_header x-pspdfkit-request-cost\n\t\tremaining_header X-Credits-Left", 1)
}

// assertNamedMoney checks the money headers under their configured names,
// and that none is sent under the defaults.
func assertNamedMoney(t *testing.T, what string, resp *http.Response, costName, cost, remaining string) {
	t.Helper()
	if got := resp.Header.Values(costName); len(got) != 1 || got[0] != cost {
		t.Errorf("%s: %s = %q, want %q", what, costName, got, cost)
	}
	if remaining != "" {
		if got := resp.Header.Values(namedRemaining); len(got) != 1 || got[0] != remaining {
			t.Errorf("%s: %s = %q, want %q", what, namedRemaining, got, remaining)
		}
	}
	for _, h := range []string{HeaderCost, HeaderRemaining} {
		if v := resp.Header.Values(h); len(v) != 0 {
			t.Errorf("%s: %s sent under its default name: %q", what, h, v)
		}
	}
}

// The money headers carry the configured names on every path: a charge,
// a failure of the upstream, a refusal, a dry run, a quote, a test key,
// a replay, a job submission; an upstream's values under those names
// never reach the client. Both stores.
func TestMoneyHeaderNamesOnEveryPath(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The upstream forges every money header, under either name.
			for _, h := range []string{namedCost, namedRemaining, HeaderCost, HeaderRemaining, "X-Own-Cost"} {
				w.Header().Set(h, "777")
			}
			if strings.HasSuffix(r.URL.Path, "/fail") {
				w.WriteHeader(500)
			}
		}))
		defer up.Close()
		site := strings.ReplaceAll(namedMoneySite, "{UPSTREAM}", strings.TrimPrefix(up.URL, "http://"))
		g := startGateway(t, withMoneyNames(global)+site)
		key := g.newAccount("money_names", 10, meter.ModeLive)
		test := g.newAccount("money_names_test", 0, meter.ModeTest)

		resp, _ := g.post("/convert", key, "application/pdf", pdftest.Pages(3))
		assertNamedMoney(t, "charge", resp, namedCost, "3", "7")
		resp, _ = g.post("/own", key, "application/pdf", pdftest.Pages(1))
		assertNamedMoney(t, "the handler's own name", resp, "X-Own-Cost", "1", "6")
		resp, _ = g.post("/convert", key, "application/pdf", pdftest.Pages(20))
		assertNamedMoney(t, "refusal", resp, namedCost, "20", "6")
		resp, _ = g.post("/convert", key, "application/pdf", pdftest.Pages(2), HeaderDryRun, "true")
		assertNamedMoney(t, "dry run", resp, namedCost, "0", "6")
		resp, _ = g.post("/quote", key, "application/pdf", pdftest.Pages(2))
		assertNamedMoney(t, "quote", resp, namedCost, "0", "6")
		resp, _ = g.post("/convert", test, "application/pdf", pdftest.Pages(2))
		assertNamedMoney(t, "test key", resp, namedCost, "2", "")
		resp, _ = g.post("/convert", key, "application/pdf", pdftest.Pages(1), HeaderIdempotencyKey, "names-1")
		assertNamedMoney(t, "first of an idempotent pair", resp, namedCost, "1", "5")
		resp, _ = g.post("/convert", key, "application/pdf", pdftest.Pages(1), HeaderIdempotencyKey, "names-1")
		if resp.Header.Get(HeaderReplayed) != "true" {
			t.Fatalf("not a replay: %v", resp.Header)
		}
		assertNamedMoney(t, "replay", resp, namedCost, "1", "5")
		g.assertBalance("money_names", 5, 0)
	})
}

// A job submission answers with the configured names too.
func TestMoneyHeaderNamesOnJobs(t *testing.T) {
	t.Setenv("CG_TEST_JOB_SECRET", "a-test-secret-of-some-length")
	eachStore(t, func(t *testing.T, global string) {
		u := newJobUpstream(t)
		g, _ := startJobGateway(t, u, "1m", strings.Replace(withMoneyNames(global), "meter {", "meter {\n\t\tjob_secret {env.CG_TEST_JOB_SECRET}", 1))
		key := g.newAccount("money_names_job", 100, meter.ModeLive)
		resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(0, 2), "X-Test-Plan", "document,document")
		if resp.StatusCode != 202 {
			t.Fatalf("submit: %d %s", resp.StatusCode, raw)
		}
		assertNamedMoney(t, "job submission", resp, namedCost, "0", "98")
		u.waitState(t, "up-1", "completed")
		g.assertBalance("money_names_job", 98, 0)
	})
}

func TestMoneyHeaderNamesCaddyfile(t *testing.T) {
	m, err := adapt(t, "{\n\tmeter {\n\t\tcost_header X-A\n\t\tremaining_header X-B\n\t}\n}\n:8080 {\n\tmeter {\n\t\tper_page 1\n\t\tcost_header X-C\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	if h := find(m, "meter"); h["cost_header"] != "X-C" {
		t.Fatalf("handler: %v", h)
	}
	for _, tt := range []struct{ in, want string }{
		{"cost_header", "cost_header needs a value"},
		{"cost_header a b", `takes one value`},
		{"cost_header X:Y", `is not a header name`},
		{"remaining_header Content-Type", `not the gateway's to rename into`},
		{"cost_header X-Meter-Cost", `X-Meter-* headers are the gateway's own`},
		{"cost_header Idempotent-Replayed", `not the gateway's to rename into`},
	} {
		for _, where := range []string{"{\n\tmeter {\n\t\t" + tt.in + "\n\t}\n}\n", ":8080 {\n\tmeter {\n\t\tper_page 1\n\t\t" + tt.in + "\n\t}\n}"} {
			if _, err := adapt(t, where); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q: %v, want %q", where, err, tt.want)
			}
		}
	}
}
