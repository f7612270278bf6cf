package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// jobUpstream is an asynchronous document API: POST /api/jobs answers 202
// and processes the job's pages in the background, one at a time,
// reporting cumulative progress to the gateway with the job's token and
// obeying its answer (continue, pause until resumed, stop). The pages'
// outcomes come from the submission's X-Test-Plan header: drawing,
// document or fail per page.
type jobUpstream struct {
	*httptest.Server
	t     *testing.T
	delay time.Duration

	mu   sync.Mutex
	seq  int
	jobs map[string]*upJob
	// down makes progress reports fail (a gateway restart), retried.
	reports int
	// ended is closed when the test ends: the jobs' goroutines, which
	// outlive it, stop without reporting to a finished test.
	ended chan struct{}
}

type upJob struct {
	id, meterJob, token, progress string
	plan                          []string
	next                          int
	done                          map[string]int
	failed                        int
	state                         string // running, blocked, completed, stopped
	resume                        chan struct{}
	answers                       []map[string]any
	lastCode                      int
}

func newJobUpstream(t *testing.T) *jobUpstream {
	u := &jobUpstream{t: t, jobs: map[string]*upJob{}, delay: 5 * time.Millisecond, ended: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() { close(u.ended); u.Close() })
	return u
}

func (u *jobUpstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/projects":
		w.WriteHeader(201)
		fmt.Fprint(w, `{"projectId": "p-1", "name": "tower"}`)
	case r.Method == "POST" && r.URL.Path == "/api/jobs":
		if r.Header.Get("X-Test-Fail") != "" {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error": "queue full"}`)
			return
		}
		u.mu.Lock()
		u.seq++
		j := &upJob{id: fmt.Sprintf("up-%d", u.seq), meterJob: r.Header.Get(UpstreamJob),
			token: r.Header.Get(UpstreamJobToken), progress: r.Header.Get(UpstreamJobProgress),
			plan: strings.Split(r.Header.Get("X-Test-Plan"), ","), done: map[string]int{},
			state: "running", resume: make(chan struct{}, 1)}
		u.jobs[j.id] = j
		u.mu.Unlock()
		if j.token == "" || j.meterJob == "" || j.progress == "" || r.Header.Get(UpstreamReservation) != meter.JobHoldPrefix+j.meterJob {
			u.t.Errorf("submission without job headers: %v", r.Header)
		}
		go u.process(j)
		w.WriteHeader(202)
		fmt.Fprintf(w, `{"id": %q, "status": "queued"}`, j.id)
	case len(parts) == 4 && parts[3] == "resume" && r.Method == "POST":
		j := u.job(parts[2])
		if j == nil {
			w.WriteHeader(404)
			return
		}
		select {
		case j.resume <- struct{}{}:
		default:
		}
		fmt.Fprintf(w, `{"id": %q, "status": "running"}`, j.id)
	case len(parts) == 3 && r.Method == "GET":
		j := u.job(parts[2])
		if j == nil {
			w.WriteHeader(404)
			return
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		fmt.Fprintf(w, `{"id": %q, "status": %q, "pagesDone": %d}`, j.id, j.state, j.next)
	default:
		w.WriteHeader(404)
	}
}

func (u *jobUpstream) job(id string) *upJob {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.jobs[id]
}

// process works through the plan, reporting after each page.
func (u *jobUpstream) process(j *upJob) {
	for {
		u.mu.Lock()
		finished := j.next >= len(j.plan)
		if !finished {
			switch page := j.plan[j.next]; page {
			case "fail":
				j.failed++
			default:
				j.done[page]++
			}
			j.next++
		}
		rep := map[string]any{"pages": copyCounts(j.done), "failed_pages": j.failed}
		if finished {
			rep["status"] = "completed"
		}
		u.mu.Unlock()
		time.Sleep(u.delay)
		action := u.report(j, rep)
		switch action {
		case "stop":
			u.setState(j, map[bool]string{true: "completed", false: "stopped"}[finished])
			return
		case "pause":
			u.setState(j, "blocked")
			select {
			case <-j.resume:
				u.setState(j, "running")
				if finished {
					continue // report the final state again
				}
			case <-time.After(20 * time.Second):
				u.setState(j, "stopped")
				return
			case <-u.ended:
				return
			}
		}
		if finished && action == "continue" {
			u.t.Errorf("job %s: a completed report answered continue", j.id)
			return
		}
	}
}

func (u *jobUpstream) setState(j *upJob, s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	j.state = s
}

func copyCounts(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// report posts one progress report, retrying while the gateway is away,
// and returns its action.
func (u *jobUpstream) report(j *upJob, rep map[string]any) string {
	body, _ := json.Marshal(rep)
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest("POST", j.progress, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+j.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 500 {
			if resp != nil {
				resp.Body.Close()
			}
			if attempt > 400 {
				u.t.Errorf("job %s: progress reports failing: %v", j.id, err)
				return "stop"
			}
			select {
			case <-u.ended:
				return "stop" // the gateway went with the test
			case <-time.After(25 * time.Millisecond):
			}
			continue
		}
		var ans map[string]any
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(raw, &ans)
		u.mu.Lock()
		u.reports++
		j.answers = append(j.answers, ans)
		j.lastCode = resp.StatusCode
		u.mu.Unlock()
		action := resp.Header.Get(HeaderJobAction)
		if a, _ := ans["action"].(string); resp.StatusCode == 200 && a != action {
			u.t.Errorf("job %s: action %q in the body, %q in the header", j.id, a, action)
		}
		return action
	}
}

// waitState waits for an upstream job to reach a state.
func (u *jobUpstream) waitState(t *testing.T, id, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		s := u.jobs[id].state
		u.mu.Unlock()
		if s == state {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t.Fatalf("upstream job %s is %s, want %s; answers %v", id, u.jobs[id].state, state, u.jobs[id].answers)
}

// jobSite is a Plangrep-like API: {UP} is the job upstream, {TTL} the
// job TTL.
const jobSite = `
http://{SITE} {
	handle /internal/progress {
		meter_job progress
	}
	@status path_regexp jobstatus ^/api/jobs/([^/]+)$
	handle @status {
		meter_job status {re.jobstatus.1} {
			billing billing camel
		}
		reverse_proxy {UP}
	}
	@resume path_regexp jobresume ^/api/jobs/([^/]+)/resume$
	handle @resume {
		meter_job resume {re.jobresume.1}
		reverse_proxy {UP}
	}
	@billing path_regexp jobbilling ^/api/jobs/([^/]+)/billing$
	handle @billing {
		meter_job billing {re.jobbilling.1}
	}
	handle /api/jobs {
		meter {
			route jobs
			per_page {
				drawing  10 larger_than 11x17in
				document 1
			}
			job {
				ttl {TTL}
				upstream_id json $.id
				declared_bytes $.files[*].size
				pages_per_mb 10
				progress_url http://{SITE}/internal/progress
			}
			billing billing camel
		}
		reverse_proxy {UP}
	}
	handle /api/projects {
		meter {
			route projects
			per_call 5
			billing billing camel
		}
		reverse_proxy {UP}
	}
	handle /v1/account/* {
		meter_api {
			case camel
		}
	}
}
`

func startJobGateway(t *testing.T, u *jobUpstream, ttl string, global string) (*gateway, string) {
	src := global + strings.NewReplacer("{UP}", u.URL, "{TTL}", ttl).Replace(jobSite)
	return startGateway(t, src), src
}

const drawing, letter = 1224.0 * 2, 612.0 // 34 in, 8.5 in

// planPDF is a PDF of d drawing and n document pages.
func planPDF(d, n int) []byte {
	var sizes [][2]float64
	for i := 0; i < d; i++ {
		sizes = append(sizes, [2]float64{drawing, drawing / 1.4})
	}
	for i := 0; i < n; i++ {
		sizes = append(sizes, [2]float64{letter, 792})
	}
	return pdftest.Sized(sizes...)
}

func decodeJSON(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not JSON: %q", raw)
	}
	return m
}

// jobUsage sums the usage entries of a job in the ledger and checks each
// names it.
func (g *gateway) jobUsage(account, job string) (sum meter.Credits, pages int) {
	for _, e := range g.ledger(account) {
		if e.Type == meter.EntryUsage && e.ReservationID == job {
			sum -= e.Amount
			pages += e.Pages
			if e.Route != "jobs" {
				g.t.Errorf("job entry on route %q", e.Route)
			}
		}
	}
	return sum, pages
}

func TestJobCompletesChargingDonePagesOnly(t *testing.T) {
	id := uniqueID("job_done")
	u := newJobUpstream(t)
	t.Setenv("CG_TEST_JOB_SECRET", "a-test-secret-of-some-length")
	g, _ := startJobGateway(t, u, "1m", strings.Replace(globalBlock, "redis {REDIS}", "redis {REDIS}\n\t\tjob_secret {env.CG_TEST_JOB_SECRET}", 1))
	key := g.newAccount(id, 100, meter.ModeLive)

	// 2 drawings + 3 documents: 23 held. The upstream fails one document.
	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(2, 3),
		"X-Test-Plan", "drawing,document,drawing,fail,document")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	jobID := resp.Header.Get(HeaderJob)
	if !strings.HasPrefix(jobID, "job_") || resp.Header.Get(HeaderCost) != "0" ||
		resp.Header.Get(HeaderRemaining) != "77" || resp.Header.Get(HeaderReserved) != "23" {
		t.Fatalf("submission headers %v", resp.Header)
	}
	sub := decodeJSON(t, raw)
	b, _ := sub["billing"].(map[string]any)
	if sub["id"] != "up-1" || b["jobId"] != jobID || b["creditsReserved"] != 23.0 || b["creditsDebited"] != 0.0 ||
		b["drawingCreditsPerPage"] != 10.0 || b["documentCreditsPerPage"] != 1.0 || b["estimatedPages"] != 5.0 {
		t.Fatalf("submission answer %s", raw)
	}
	u.waitState(t, "up-1", "completed")

	g.assertBalance(id, 78, 0)
	if sum, pages := g.jobUsage(id, jobID); sum != credits(22) || pages != 4 {
		t.Fatalf("job usage %s over %d pages, want 22 over 4", sum, pages)
	}
	resp, raw = g.getRaw("/api/jobs/up-1", key)
	st := decodeJSON(t, raw)
	b, _ = st["billing"].(map[string]any)
	if resp.StatusCode != 200 || st["status"] != "completed" || st["pagesDone"] != 5.0 ||
		b["status"] != meter.JobCompleted || b["creditsDebited"] != 22.0 || b["creditsReserved"] != 0.0 ||
		b["drawingPageCount"] != 2.0 || b["documentPageCount"] != 2.0 || b["successfulPageCount"] != 4.0 ||
		b["failedPageCount"] != 1.0 || b["finishedAt"] == nil {
		t.Fatalf("status %d %s", resp.StatusCode, raw)
	}
	if resp.Header.Get("Content-Length") != fmt.Sprint(len(raw)) {
		t.Fatalf("Content-Length %s for %d bytes", resp.Header.Get("Content-Length"), len(raw))
	}
	// The billing record, by either id; frozen: a late report changes
	// nothing and is told to stop.
	for _, ref := range []string{"up-1", jobID} {
		resp, raw = g.getRaw("/api/jobs/"+ref+"/billing", key)
		rec := decodeJSON(t, raw)
		b, _ = rec["billing"].(map[string]any)
		if resp.StatusCode != 200 || rec["job_id"] != jobID || rec["upstream_id"] != "up-1" || b["credits_debited"] != 22.0 {
			t.Fatalf("billing %s: %d %s", ref, resp.StatusCode, raw)
		}
	}
	j := u.job("up-1")
	rep, _ := json.Marshal(map[string]any{"pages": map[string]int{"drawing": 9}})
	resp, raw = g.post("/internal/progress", j.token, "application/json", rep)
	if code, _ := errorCode(t, raw); resp.StatusCode != 409 || code != meter.ECodeJobFinished || resp.Header.Get(HeaderJobAction) != "stop" {
		t.Fatalf("late report: %d %s", resp.StatusCode, raw)
	}
	g.assertBalance(id, 78, 0)

	// Another account's key does not see the job's billing; its status
	// request goes upstream untouched (the upstream's own access rules).
	other := g.newAccount(uniqueID("job_other"), 5, meter.ModeLive)
	if resp, raw := g.getRaw("/api/jobs/up-1/billing", other); resp.StatusCode != 404 {
		t.Fatalf("another account read the job: %d %s", resp.StatusCode, raw)
	}
	resp, raw = g.getRaw("/api/jobs/up-1", other)
	if st := decodeJSON(t, raw); resp.StatusCode != 200 || st["billing"] != nil || st["id"] != "up-1" {
		t.Fatalf("status of another account's job: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := g.post("/api/jobs/up-1/resume", other, "", nil); resp.StatusCode != 404 {
		t.Fatalf("another account resumed the job: %d %s", resp.StatusCode, raw)
	}
}

func TestJobSubmissionRefusedOrFailedHoldsNothing(t *testing.T) {
	id := uniqueID("job_refused")
	u := newJobUpstream(t)
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 20, meter.ModeLive)

	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(3, 0), "X-Test-Plan", "drawing")
	if code, _ := errorCode(t, raw); resp.StatusCode != 402 || code != meter.ECodeInsufficientCredits || resp.Header.Get(HeaderCost) != "30" {
		t.Fatalf("over-estimate: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	resp, raw = g.post("/api/jobs", key, "application/pdf", planPDF(1, 0), "X-Test-Plan", "drawing", "X-Test-Fail", "1")
	if resp.StatusCode != 500 || resp.Header.Get(HeaderCost) != "0" || resp.Header.Get(HeaderRemaining) != "20" {
		t.Fatalf("upstream failure: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	g.assertBalance(id, 20, 0)
	if u.job("up-1") != nil {
		t.Fatal("the refused submission reached the upstream")
	}
	// A forged or altered token reports nothing.
	for _, tok := range []string{"", "cgjob_x.y", "nonsense"} {
		resp, raw = g.post("/internal/progress", tok, "application/json", []byte(`{"pages": {"drawing": 1}}`))
		if code, _ := errorCode(t, raw); resp.StatusCode != 401 || code != meter.ECodeInvalidAPIKey {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, raw)
		}
	}
}

func TestJobBlocksThenResumesAfterTopUp(t *testing.T) {
	id := uniqueID("job_block")
	r := newReceiver(t, id)
	u := newJobUpstream(t)
	g, _ := startJobGateway(t, u, "1m", strings.ReplaceAll(webhookGlobal, "{HOOK}", r.URL))
	key := g.newAccount(id, 25, meter.ModeLive)

	// Declared 100 KB: 1 page at the highest rate (10) held; 5 drawings
	// come: 10 from the hold, 10 from the balance, then 5 left: blocked
	// with one drawing owed.
	decl := []byte(`{"files": [{"name": "a.pdf", "size": 100000}]}`)
	resp, raw := g.post("/api/jobs", key, "application/json", decl, "X-Meter-Dry-Run", "true")
	dry := decodeJSON(t, raw)
	if job, _ := dry["job"].(map[string]any); resp.StatusCode != 200 || job["estimate"] != 10.0 || job["estimated_pages"] != 1.0 ||
		dry["affordable"] != true || u.job("up-1") != nil {
		t.Fatalf("dry run: %d %s", resp.StatusCode, raw)
	}
	resp, raw = g.post("/api/jobs", key, "application/json", decl, "X-Test-Plan", "drawing,drawing,drawing,drawing,drawing")
	if resp.StatusCode != 202 || resp.Header.Get(HeaderReserved) != "10" {
		t.Fatalf("submit: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	jobID := resp.Header.Get(HeaderJob)
	u.waitState(t, "up-1", "blocked")
	g.assertBalance(id, 5, 0)
	resp, raw = g.getRaw("/api/jobs/up-1/billing", key)
	b, _ := decodeJSON(t, raw)["billing"].(map[string]any)
	if resp.StatusCode != 200 || b["status"] != meter.JobBlocked || b["credits_debited"] != 20.0 || b["credits_owed"] != 10.0 || b["drawing_page_count"] != 2.0 {
		t.Fatalf("blocked billing %s", raw)
	}
	ds := r.waitFor("job.blocked", func(ds []delivery) bool {
		for _, d := range ds {
			if d.Payload.Type == meter.EventJobBlocked {
				return true
			}
		}
		return false
	})
	var blocked int
	for _, d := range ds {
		if d.Payload.Type == meter.EventJobBlocked {
			blocked++
			if d.Payload.Data["job_id"] != jobID || d.Payload.Data["upstream_job_id"] != "up-1" || d.Payload.Data["balance"] != 5.0 {
				t.Fatalf("job.blocked payload %+v", d.Payload)
			}
		}
	}
	if blocked != 1 {
		t.Fatalf("%d job.blocked deliveries: %+v", blocked, ds)
	}

	// A test key cannot resume (it would pay the owed pages), nor a
	// disabled account.
	var tk struct{ Key string }
	if code := g.adminDo("POST", "/meter/accounts/"+id+"/keys", map[string]any{"mode": "test"}, &tk); code != 201 {
		t.Fatalf("test key: %d", code)
	}
	resp, raw = g.post("/api/jobs/up-1/resume", tk.Key, "", nil)
	if code, _ := errorCode(t, raw); resp.StatusCode != 403 || code != meter.ECodeTestKeyNotAllowed {
		t.Fatalf("resume with a test key: %d %s", resp.StatusCode, raw)
	}
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"enabled": false}, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	resp, raw = g.post("/api/jobs/up-1/resume", key, "", nil)
	if code, _ := errorCode(t, raw); resp.StatusCode != 403 || code != meter.ECodeAccountDisabled {
		t.Fatalf("resume of a disabled account: %d %s", resp.StatusCode, raw)
	}
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"enabled": nil}, nil); code != 200 {
		t.Fatalf("enable: %d", code)
	}

	// Resuming without credits: owed 10 + one more drawing = 20 needed.
	resp, raw = g.post("/api/jobs/up-1/resume", key, "", nil)
	code, e := errorCode(t, raw)
	if resp.StatusCode != 402 || code != meter.ECodeInsufficientCredits || e["required"] != 20.0 || e["available"] != 5.0 {
		t.Fatalf("resume without credits: %d %s", resp.StatusCode, raw)
	}
	g.assertBalance(id, 5, 0)

	if code := g.adminDo("POST", "/meter/accounts/"+id+"/credits", map[string]any{"amount": 100}, nil); code != 200 && code != 201 {
		t.Fatalf("top-up: %d", code)
	}
	resp, raw = g.post("/api/jobs/up-1/resume", key, "", nil)
	if resp.StatusCode != 200 || resp.Header.Get(HeaderCost) != "10" {
		t.Fatalf("resume: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	u.waitState(t, "up-1", "completed")
	// 5 drawings, each charged once: 50 of 125.
	g.assertBalance(id, 75, 0)
	if sum, pages := g.jobUsage(id, jobID); sum != credits(50) || pages != 5 {
		t.Fatalf("job usage %s over %d pages, want 50 over 5", sum, pages)
	}
	resp, raw = g.getRaw("/api/jobs/"+jobID+"/billing", key)
	b, _ = decodeJSON(t, raw)["billing"].(map[string]any)
	if resp.StatusCode != 200 || b["status"] != meter.JobCompleted || b["credits_debited"] != 50.0 || b["drawing_page_count"] != 5.0 || b["credits_owed"] != nil {
		t.Fatalf("final billing %s", raw)
	}
}

func TestJobBlockedExpires(t *testing.T) {
	id := uniqueID("job_expire")
	u := newJobUpstream(t)
	g, _ := startJobGateway(t, u, "1s", globalBlock)
	key := g.newAccount(id, 15, meter.ModeLive)
	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(1, 0), "X-Test-Plan", "drawing,drawing,drawing")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	u.waitState(t, "up-1", "blocked")
	g.assertBalance(id, 5, 0)
	time.Sleep(1200 * time.Millisecond)
	resp, raw = g.getRaw("/api/jobs/up-1/billing", key)
	if rec := decodeJSON(t, raw); rec["status"] != meter.JobExpired {
		t.Fatalf("after the TTL: %d %s", resp.StatusCode, raw)
	}
	resp, raw = g.post("/api/jobs/up-1/resume", key, "", nil)
	if code, _ := errorCode(t, raw); resp.StatusCode != 410 || code != meter.ECodeJobExpired {
		t.Fatalf("resume of an expired job: %d %s", resp.StatusCode, raw)
	}
	j := u.job("up-1")
	rep, _ := json.Marshal(map[string]any{"pages": map[string]int{"drawing": 3}})
	resp, raw = g.post("/internal/progress", j.token, "application/json", rep)
	if code, _ := errorCode(t, raw); resp.StatusCode != 410 || code != meter.ECodeJobExpired || resp.Header.Get(HeaderJobAction) != "stop" {
		t.Fatalf("report to an expired job: %d %s", resp.StatusCode, raw)
	}
	g.assertBalance(id, 5, 0)
}

func TestJobSurvivesAGatewayRestart(t *testing.T) {
	id := uniqueID("job_restart")
	u := newJobUpstream(t)
	u.delay = 40 * time.Millisecond
	// The embedded store, and no job_secret: the secret is kept in the data
	// directory, so tokens stay valid across the restart.
	global := strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1)
	g, src := startJobGateway(t, u, "1m", global)
	key := g.newAccount(id, 200, meter.ModeLive)
	plan := strings.TrimSuffix(strings.Repeat("document,drawing,", 10), ",")
	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(10, 10), "X-Test-Plan", plan)
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	jobID := resp.Header.Get(HeaderJob)
	time.Sleep(150 * time.Millisecond)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // reports fail meanwhile, and are retried
	if err := loadCaddyfile(t, src, g.admin, strings.TrimPrefix(g.URL, "http://"), ""); err != nil {
		t.Fatal(err)
	}
	u.waitState(t, "up-1", "completed")
	g.assertBalance(id, 200-110, 0)
	if sum, pages := g.jobUsage(id, jobID); sum != credits(110) || pages != 20 {
		t.Fatalf("job usage %s over %d pages, want 110 over 20", sum, pages)
	}
}

func TestJobsShareASmallBalanceWithoutOverdraw(t *testing.T) {
	id := uniqueID("job_two")
	u := newJobUpstream(t)
	u.delay = time.Millisecond
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 35, meter.ModeLive)
	var jobs []string
	for i := 0; i < 2; i++ {
		resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(1, 0), "X-Test-Plan", "drawing,drawing,drawing,drawing")
		if resp.StatusCode != 202 {
			t.Fatalf("submit %d: %d %s", i, resp.StatusCode, raw)
		}
		jobs = append(jobs, resp.Header.Get(HeaderJob))
	}
	u.waitState(t, "up-1", "blocked")
	u.waitState(t, "up-2", "blocked")
	// 35 buys 3 drawings in all; each job blocked with its pages owed.
	g.assertBalance(id, 5, 0)
	var sum meter.Credits
	var pages int
	for _, j := range jobs {
		s, p := g.jobUsage(id, j)
		sum, pages = sum+s, pages+p
	}
	if sum != credits(30) || pages != 3 {
		t.Fatalf("jobs charged %s for %d pages, want 30 for 3", sum, pages)
	}
}

func TestProjectCreationBillingAndProfile(t *testing.T) {
	id := uniqueID("job_proj")
	u := newJobUpstream(t)
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 100, meter.ModeLive)
	resp, raw := g.post("/api/projects", key, "application/json", []byte(`{"name": "tower"}`))
	p := decodeJSON(t, raw)
	b, _ := p["billing"].(map[string]any)
	if resp.StatusCode != 201 || p["projectId"] != "p-1" || b["creditsCharged"] != 5.0 || b["availableCredits"] != 100.0 ||
		resp.Header.Get(HeaderCost) != "5" || resp.Header.Get(HeaderRemaining) != "95" {
		t.Fatalf("project: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	if !strings.HasPrefix(string(raw), `{"projectId": "p-1", "name": "tower"`) {
		t.Fatalf("the upstream's member order changed: %s", raw)
	}
	g.assertBalance(id, 95, 0)

	before := time.Now().Add(-time.Second)
	_, raw = g.getRaw("/v1/account/profile", key)
	prof := decodeJSON(t, raw)
	if prof["drawingCreditsPerPage"] != 10.0 || prof["documentCreditsPerPage"] != 1.0 || prof["enabled"] != true ||
		prof["jobPageLimit"] != 0.0 || prof["retentionDays"] != 30.0 {
		t.Fatalf("profile %s", raw)
	}
	patch := map[string]any{"rates": map[string]any{"drawing": 8}, "page_limit": 500, "retention_days": 7}
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, patch, nil); code != 200 {
		t.Fatalf("PATCH %d", code)
	}
	time.Sleep(20 * time.Millisecond)
	_, raw = g.getRaw("/v1/account/profile", key)
	prof = decodeJSON(t, raw)
	updated, err := time.Parse(time.RFC3339Nano, fmt.Sprint(prof["updatedAt"]))
	if err != nil || prof["drawingCreditsPerPage"] != 8.0 || prof["jobPageLimit"] != 500.0 || prof["retentionDays"] != 7.0 ||
		updated.Before(before) {
		t.Fatalf("profile after PATCH %s", raw)
	}
}

func TestJobCaddyfile(t *testing.T) {
	m, err := adapt(t, `:8080 {
	handle /jobs {
		meter {
			per_page {
				drawing 10 larger_than 11x17in
				document 1
			}
			job {
				ttl 2h
				upstream_id header Location
				declared_bytes $.files[*].size
				pages_per_mb 12.5
				progress_url http://gw:8081/p
				retention 240h
			}
			billing bill camel
		}
		reverse_proxy localhost:9000
	}
	handle /jobs/* {
		meter_job resume {re.x.1} {
			key_header X-API-Key
			billing usage snake
		}
		reverse_proxy localhost:9000
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := find(m, "meter")
	job, _ := h["job"].(map[string]any)
	bill, _ := h["billing"].(map[string]any)
	if job["ttl"] != float64(2*time.Hour) || job["upstream_id"] != "header Location" || job["declared_bytes"] != "$.files[*].size" ||
		job["pages_per_mb"] != 12.5 || job["progress_url"] != "http://gw:8081/p" || job["retention"] != float64(240*time.Hour) ||
		bill["field"] != "bill" || bill["case"] != "camel" {
		t.Fatalf("meter handler %v", h)
	}
	ja := find(m, "meter_job")
	jb, _ := ja["billing"].(map[string]any)
	if ja["action"] != "resume" || ja["id"] != "{http.regexp.x.1}" || ja["key_header"] != "X-API-Key" || jb["field"] != "usage" || jb["case"] != "snake" {
		t.Fatalf("meter_job handler %v", ja)
	}

	for _, tc := range []struct{ src, want string }{
		{"meter {\n per_page 1\n job {\n ttl -1s\n }\n}", "expected a positive duration"},
		{"meter {\n per_page 1\n job {\n frequency 2\n }\n}", `unknown option "frequency"`},
		{"meter {\n per_page 1\n job {\n upstream_id body id\n }\n}", "upstream_id: expected `json <query>` or `header <name>`"},
		{"meter {\n per_page 1\n job {\n upstream_id json id\n }\n}", "a query starts with $"},
		{"meter {\n per_page 1\n job {\n pages_per_mb lots\n }\n}", "pages_per_mb: expected a positive number"},
		{"meter {\n per_page 1\n billing a b c\n}", "billing: unexpected"},
		{"meter_job cancel", `unknown action "cancel"`},
		{"meter_job status a b", "wrong argument count"},
		{"meter_job progress {\n frobnicate\n}", `unknown subdirective "frobnicate"`},
	} {
		_, err := adapt(t, ":8080 {\n"+tc.src+"\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: error %v, want %q with its line", tc.src, err, tc.want)
		}
	}
}

// A job route priced by anything but pages is refused when the config
// loads, naming the rule.
func TestJobSecretMustResolve(t *testing.T) {
	src := strings.Replace(globalBlock, "redis {REDIS}", "redis {REDIS}\n\t\tjob_secret {env.CG_TEST_UNSET_SECRET}", 1) +
		"http://{SITE} {\n\trespond ok\n}\n"
	caddyMu.Lock()
	defer caddyMu.Unlock()
	err := loadCaddyfile(t, src, freeAddr(t), freeAddr(t), testRedisURL(t))
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("an empty job_secret loaded")
	}
	if !strings.Contains(err.Error(), "job_secret") {
		t.Fatalf("error %v", err)
	}
}

func TestJobRouteMustBePricedPerPage(t *testing.T) {
	u := newJobUpstream(t)
	src := globalBlock + "http://{SITE} {\n\tmeter {\n\t\tper_page 1\n\t\tper_call 3\n\t\tjob\n\t}\n\treverse_proxy " + u.URL + "\n}\n"
	caddyMu.Lock()
	defer caddyMu.Unlock()
	err := loadCaddyfile(t, src, freeAddr(t), freeAddr(t), testRedisURL(t))
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("a job route priced per call loaded")
	}
	if !strings.Contains(err.Error(), "rule 2: a job route is priced per page") {
		t.Fatalf("error %v", err)
	}
}

func TestAdminReadsAndCancelsAJob(t *testing.T) {
	id := uniqueID("job_admin")
	u := newJobUpstream(t)
	u.delay = 300 * time.Millisecond
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 50, meter.ModeLive)
	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(2, 0), "X-Test-Plan", "drawing,drawing")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	jobID := resp.Header.Get(HeaderJob)
	var j meter.Job
	if code := g.adminDo("GET", "/meter/accounts/"+id+"/jobs/up-1", nil, &j); code != 200 || j.ID != jobID ||
		j.Status != meter.JobRunning || j.Reserved != credits(20) || j.Rates["drawing"] != credits(10) {
		t.Fatalf("admin get: %d %+v", code, j)
	}
	if code := g.adminDo("POST", "/meter/accounts/"+id+"/jobs/"+jobID+"/cancel", nil, &j); code != 200 || j.Status != meter.JobCanceled {
		t.Fatalf("admin cancel: %d %+v", code, j)
	}
	g.assertBalance(id, 50, 0)
	// The upstream's next report is told to stop; nothing is charged.
	u.waitState(t, "up-1", "stopped")
	g.assertBalance(id, 50, 0)
	var e map[string]any
	if code := g.adminDo("GET", "/meter/accounts/"+id+"/jobs/nope", nil, &e); code != 404 {
		t.Fatalf("unknown job: %d %v", code, e)
	}
}

func TestJobProgressRefusesBadReports(t *testing.T) {
	id := uniqueID("job_bad")
	u := newJobUpstream(t)
	u.delay = time.Second // the job stays running while we report
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 50, meter.ModeLive)
	resp, raw := g.post("/api/jobs", key, "application/pdf", planPDF(1, 0), "X-Test-Plan", "drawing")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	tok := u.job("up-1").token
	for _, tc := range []struct {
		body string
		code string
	}{
		{`{"pages": {"drawing": 1}`, meter.ECodeBadRequest},
		{`{"pages": {"drawing": -1}}`, meter.ECodeInvalid},
		{`{"pages": {"blueprint": 1}}`, meter.ECodeInvalid},
		{`{"pages": {"drawing": 1}, "status": "done"}`, meter.ECodeBadRequest},
		{`{"pages": {"drawing": 1}, "colour": "red"}`, meter.ECodeBadRequest},
		{`{"pages": {"drawing": 1}, "failed_pages": -2}`, meter.ECodeInvalid},
		{`["drawing"]`, meter.ECodeBadRequest},
		{`{"pages": {"drawing": 1}, "x": "` + strings.Repeat("a", 70<<10) + `"}`, meter.ECodeBadRequest},
	} {
		resp, raw := g.post("/internal/progress", tok, "application/json", []byte(tc.body))
		if code, _ := errorCode(t, raw); code != tc.code || resp.StatusCode != statusOf(tc.code) {
			t.Errorf("%.60s: %d %s, want %s", tc.body, resp.StatusCode, raw, tc.code)
		}
	}
	resp, raw = g.do("GET", "/internal/progress", tok, "", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET progress: %d %s", resp.StatusCode, raw)
	}
	// Nothing was charged by the refused reports; the job goes on.
	g.assertBalance(id, 50, 10)
	u.waitState(t, "up-1", "completed")
	g.assertBalance(id, 40, 0)
}

// A test key's submission is simulated by default: answered with the
// estimate, never forwarded. With `test forward` it is forwarded, marked,
// with no job. Either way nothing is held or charged, and the upstream
// gets no token.
func TestJobSubmissionWithATestKey(t *testing.T) {
	for _, forward := range []bool{false, true} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			id := uniqueID("job_testkey")
			var got http.Header
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Clone()
				w.WriteHeader(202)
			}))
			defer up.Close()
			site := strings.NewReplacer("{UP}", up.URL, "{TTL}", "1m").Replace(jobSite)
			if forward {
				site = strings.Replace(site, "route jobs\n", "route jobs\n\t\t\ttest forward\n", 1)
			}
			g := startGateway(t, globalBlock+site)
			g.newAccount(id, 50, meter.ModeLive)
			var k struct{ Key string }
			if code := g.adminDo("POST", "/meter/accounts/"+id+"/keys", map[string]any{"mode": "test"}, &k); code != 201 {
				t.Fatalf("test key: %d", code)
			}
			resp, raw := g.post("/api/jobs", k.Key, "application/pdf", planPDF(2, 0))
			status := 200
			if forward {
				status = 202
			}
			if resp.StatusCode != status || resp.Header.Get(HeaderTest) != "true" || resp.Header.Get(HeaderCost) != "20" || resp.Header.Get(HeaderJob) != "" {
				t.Fatalf("test key submission: %d %s %v", resp.StatusCode, raw, resp.Header)
			}
			switch {
			case !forward && got != nil:
				t.Fatalf("a simulated submission reached the upstream: %v", got)
			case !forward && !strings.Contains(string(raw), `"estimate": 20`):
				t.Fatalf("simulated submission without the estimate: %s", raw)
			case forward && (got.Get(UpstreamTest) != "true" || got.Get(UpstreamJobToken) != "" || got.Get(UpstreamJob) != ""):
				t.Fatalf("upstream headers %v", got)
			}
			g.assertBalance(id, 50, 0)
		})
	}
}

// Declared sizes that are not byte counts, or too large to price, are a
// 400 before anything is held.
func TestJobDeclaredSizesAreChecked(t *testing.T) {
	id := uniqueID("job_decl")
	u := newJobUpstream(t)
	g, _ := startJobGateway(t, u, "1m", globalBlock)
	key := g.newAccount(id, 50, meter.ModeLive)
	huge := `{"files": [` + strings.TrimSuffix(strings.Repeat(`{"size": 1e15},`, 2000), ",") + `]}`
	for _, body := range []string{`{"files": [{"size": "big"}]}`, `{"files": [{"size": -1}]}`, `{"files": [{"size": 1e300}]}`, huge, `{"files": `} {
		resp, raw := g.post("/api/jobs", key, "application/json", []byte(body))
		if code, _ := errorCode(t, raw); resp.StatusCode != 400 || code != meter.ECodeBadRequest {
			t.Errorf("%.40s: %d %s", body, resp.StatusCode, raw)
		}
	}
	g.assertBalance(id, 50, 0)
	if u.job("up-1") != nil {
		t.Fatal("a refused submission reached the upstream")
	}
}
