package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// jobsUpstream is an asynchronous API behind several gateways: it takes a
// job on POST /jobs, processes one drawing page at a time and reports its
// cumulative progress to the gateways in turn (as a load balancer would
// spread its calls), moving on to the next gateway when one does not
// answer. It pauses when told to and continues on POST /jobs/{id}/resume.
type jobsUpstream struct {
	addr     string
	t        *testing.T
	gateways []string // their URLs, set before the first job

	mu      sync.Mutex
	pages   int // pages each job has
	done    int
	state   string
	resume  chan struct{}
	sentTo  map[string]int // reports answered, by gateway
	token   string
	meterID string
}

func newJobsUpstream(t *testing.T, pages int) *jobsUpstream {
	u := &jobsUpstream{t: t, pages: pages, resume: make(chan struct{}, 1), sentTo: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(u.serve)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *jobsUpstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/jobs":
		u.mu.Lock()
		u.token, u.meterID, u.state = r.Header.Get("X-Meter-Job-Token"), r.Header.Get("X-Meter-Job"), "running"
		u.mu.Unlock()
		go u.process()
		w.WriteHeader(202)
		fmt.Fprint(w, `{"id": "up-1"}`)
	case r.URL.Path == "/jobs/up-1/resume":
		select {
		case u.resume <- struct{}{}:
		default:
		}
		fmt.Fprint(w, `{"id": "up-1", "status": "running"}`)
	default:
		w.WriteHeader(404)
	}
}

func (u *jobsUpstream) process() {
	for n := 0; ; n++ {
		u.mu.Lock()
		finished := u.done >= u.pages
		if !finished {
			u.done++
		}
		rep := map[string]any{"pages": map[string]int{"drawing": u.done}}
		if finished {
			rep["status"] = "completed"
		}
		u.mu.Unlock()
		switch u.report(n, rep) {
		case "stop":
			u.set("completed")
			return
		case "pause":
			u.set("blocked")
			select {
			case <-u.resume:
				u.set("running")
			case <-time.After(30 * time.Second):
				u.set("gave up")
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (u *jobsUpstream) set(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.state = s
}

func (u *jobsUpstream) get() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state
}

// report sends one report, to gateway n first, then the next ones.
func (u *jobsUpstream) report(n int, rep map[string]any) string {
	body, _ := json.Marshal(rep)
	for attempt := 0; attempt < 300; attempt++ {
		gw := u.gateways[(n+attempt)%len(u.gateways)]
		req, _ := http.NewRequest("POST", gw+"/progress", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+u.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 500 {
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		u.mu.Lock()
		u.sentTo[gw]++
		u.mu.Unlock()
		if resp.StatusCode != 200 {
			u.t.Errorf("report to %s: %d", gw, resp.StatusCode)
			return "stop"
		}
		return resp.Header.Get("X-Meter-Job-Action")
	}
	u.t.Errorf("no gateway took the report %s", body)
	return "stop"
}

func (u *jobsUpstream) waitState(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for u.get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("upstream job is %s, want %s", u.get(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A job submitted through one gateway is reported to all three (one of
// them killed halfway), blocks, is resumed through another after a
// top-up, and completes: every page charged exactly once.
func TestJobAcrossGateways(t *testing.T) {
	rs := redistest.New(t)
	const pages = 8
	up := newJobsUpstream(t, pages)
	var gws []*gateway
	for i := 0; i < 3; i++ {
		gws = append(gws, startGateway(t, config{Redis: rs.URL(), Upstream: up.addr}))
	}
	up.gateways = []string{gws[0].URL, gws[1].URL, gws[2].URL}
	key := gws[0].account("jobs_acct", 25)

	// One drawing in the submission: 10 held. Eight come: 10 from the
	// hold, 10 from the balance, then 5 left and the job blocks.
	req, _ := http.NewRequestWithContext(context.Background(), "POST", gws[0].URL+"/jobs",
		bytes.NewReader(pdftest.Sized([2]float64{2448, 1728})))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("X-Credits-Reserved") != "10" {
		t.Fatalf("submission: %d %v", resp.StatusCode, resp.Header)
	}
	up.waitState(t, "blocked")

	// A gateway dies; the upstream still tries it in turn, and fails over.
	gws[1].kill()

	gws[2].adminDo("POST", "/meter/accounts/jobs_acct/credits", map[string]any{"amount": 100}, nil)
	req, _ = http.NewRequest("POST", gws[2].URL+"/jobs/up-1/resume", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Cost") != "10" {
		t.Fatalf("resume: %d %v", resp.StatusCode, resp.Header)
	}
	up.waitState(t, "completed")

	s := openStore(t, rs.URL())
	a, es := ledger(t, s, "jobs_acct")
	var charged meter.Credits
	var pagesCharged int
	for _, e := range es {
		if e.Type == meter.EntryUsage {
			if e.ReservationID != up.meterID {
				t.Errorf("usage entry of another job: %+v", e)
			}
			charged -= e.Amount
			pagesCharged += e.Pages
		}
	}
	if a.Balance != credits(25+100-10*pages) || a.Reserved != 0 || charged != credits(10*pages) || pagesCharged != pages {
		t.Fatalf("balance %s reserved %s, charged %s for %d pages; want %d, 0, %d for %d",
			a.Balance, a.Reserved, charged, pagesCharged, 25+100-10*pages, 10*pages, pages)
	}
	j, err := s.JobByUpstream(context.Background(), "jobs_acct", "up-1")
	if err != nil || j.Status != meter.JobCompleted || j.Pages["drawing"] != pages || j.Debited != credits(10*pages) {
		t.Fatalf("job %+v, %v", j, err)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, g := range []*gateway{gws[0], gws[2]} {
		if up.sentTo[g.URL] == 0 {
			t.Errorf("no report went through %s: %v", g.URL, up.sentTo)
		}
	}
	if !strings.HasPrefix(up.meterID, "job_") {
		t.Errorf("job id %q", up.meterID)
	}
}
