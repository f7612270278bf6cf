package caddymodule

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// trustedSite has a path through every meter handler that can reach the
// upstream: a metered route, a job route, meter_job status and resume, and
// meter_api (which never forwards).
const trustedSite = `
http://{SITE} {
	handle /v1/convert {
		meter {
			per_page 1
			route convert
		}
		reverse_proxy {UP}
	}
	handle /api/jobs {
		meter {
			per_page 1
			route jobs
			job {
				upstream_id json $.id
			}
		}
		reverse_proxy {UP}
	}
	@status path_regexp jobstatus ^/api/jobs/([^/]+)$
	handle @status {
		meter_job status {re.jobstatus.1}
		reverse_proxy {UP}
	}
	@resume path_regexp jobresume ^/api/jobs/([^/]+)/resume$
	handle @resume {
		meter_job resume {re.jobresume.1}
		reverse_proxy {UP}
	}
	handle /v1/credits/* {
		meter_api
	}
	handle {
		reverse_proxy {UP}
	}
}
`

// forged are X-Meter-* request headers a client sends to impersonate
// another account, a reservation or a job; the last is a name no list of
// the gateway's headers has.
var forged = [][2]string{
	{"X-Meter-Account", "victim"},
	{"X-Meter-Reservation", "rsv_forged"},
	{"x-meter-test", "false"},
	{"X-Meter-Job", "job_forged"},
	{"X-Meter-Job-Token", "forged"},
	{"X-METER-FUTURE-HEADER", "forged"},
}

func forgedPairs() []string {
	var hdr []string
	for _, f := range forged {
		hdr = append(hdr, f[0], f[1])
	}
	return hdr
}

// assertNoForged fails if a forged value (or the unknown X-Meter-* name)
// reached the upstream, and checks the account the gateway vouched for
// ("-": not checked).
func assertNoForged(t *testing.T, what string, got recorded, account string) {
	t.Helper()
	for name, vals := range got.header {
		if !isMeterHeader(name) {
			continue
		}
		for _, f := range forged {
			for _, v := range vals {
				if v == f[1] && strings.EqualFold(name, f[0]) || strings.EqualFold(name, "X-Meter-Future-Header") {
					t.Fatalf("%s: the upstream got the client's %s: %s", what, name, v)
				}
			}
		}
	}
	if a := got.header.Get(UpstreamAccount); account != "-" && a != account {
		t.Fatalf("%s: upstream got X-Meter-Account %q, want %q", what, a, account)
	}
}

// A client's X-Meter-* request headers never reach the upstream, on any
// path of any meter handler: metered, replayed, job submission, job status
// (own job, and another account's job, which is forwarded as unknown),
// resume, and routes without meter in front.
func TestForgedMeterHeadersNeverReachTheUpstream(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		rec := newRecorder(t)
		global = strings.Replace(global, "meter {", "meter {\n\t\tjob_secret 0123456789abcdef0123", 1)
		g := startGateway(t, global+strings.ReplaceAll(trustedSite, "{UP}", rec.hostPort()))
		victim := g.newAccount("victim", 100, meter.ModeLive)
		attacker := g.newAccount("attacker", 100, meter.ModeLive)
		hdr := forgedPairs()

		// The victim's job, whose status the attacker asks for.
		resp, raw := g.post("/api/jobs", victim, "application/pdf", pdftest.Pages(1))
		if resp.StatusCode != 202 {
			t.Fatalf("victim's job: %d %s", resp.StatusCode, raw)
		}
		resp, raw = g.post("/api/jobs", attacker, "application/pdf", pdftest.Pages(1), hdr...)
		if resp.StatusCode != 202 {
			t.Fatalf("attacker's job: %d %s", resp.StatusCode, raw)
		}
		assertNoForged(t, "job submission", rec.last(t), "attacker")

		resp, raw = g.do("GET", "/api/jobs/up-1", attacker, "", nil, hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("another account's job status: %d %s", resp.StatusCode, raw)
		}
		// Not the attacker's job: forwarded as a job creditgate does not
		// know, vouching for no account at all.
		assertNoForged(t, "another account's job status", rec.last(t), "")

		resp, raw = g.do("GET", "/api/jobs/up-2", attacker, "", nil, hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("own job status: %d %s", resp.StatusCode, raw)
		}
		assertNoForged(t, "own job status", rec.last(t), "attacker")

		before := rec.count()
		resp, raw = g.do("POST", "/api/jobs/up-2/resume", attacker, "", nil, hdr...)
		if rec.count() > before {
			assertNoForged(t, "resume", rec.last(t), "attacker")
		} else if resp.StatusCode < 400 {
			t.Fatalf("resume answered %d without the upstream: %s", resp.StatusCode, raw)
		}

		resp, _ = g.post("/v1/convert", attacker, "application/pdf", pdftest.Pages(2), append(hdr, "Idempotency-Key", "k1")...)
		assertMoney(t, resp, "2", "97")
		assertNoForged(t, "metered request", rec.last(t), "attacker")
		before = rec.count()
		g.post("/v1/convert", attacker, "application/pdf", pdftest.Pages(2), append(hdr, "Idempotency-Key", "k1")...)
		if rec.count() > before {
			assertNoForged(t, "idempotent retry", rec.last(t), "-")
		}

		before = rec.count()
		resp, raw = g.do("GET", "/v1/credits/balance", attacker, "", nil, hdr...)
		if resp.StatusCode != 200 || rec.count() != before {
			t.Fatalf("meter_api: %d %s, upstream calls %d -> %d", resp.StatusCode, raw, before, rec.count())
		}
		g.assertBalance("attacker", 98, 1) // 2 charged, 1 held by the job
		g.assertBalance("victim", 100, 1)
	})
}
