package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
)

// upstream is the API behind the gateways. The last path segment is the
// client's request id; the one before it the mode:
//
//	ok      answers 200
//	random  answers 200 (70%), 500 (15%), or holds the request (15%)
//	hold    holds the request
//
// A held request is announced on its ticket's held channel, then waits
// for its release (200), or for the gateway to give up on it.
type upstream struct {
	URL     string
	addr    string
	tickets sync.Map // request id -> *ticket
	hits    atomic.Int64
}

// count is how many requests reached the upstream.
func (u *upstream) count() int64 { return u.hits.Load() }

type ticket struct {
	held    chan struct{}
	release chan struct{}
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	u.URL = "http://" + u.addr
	srv := &http.Server{Handler: u}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	io.Copy(io.Discard, r.Body)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 {
		http.Error(w, "bad path", 400)
		return
	}
	mode, id := parts[len(parts)-2], parts[len(parts)-1]
	if mode == "random" {
		switch n := rand.IntN(100); {
		case n < 70:
			mode = "ok"
		case n < 85:
			http.Error(w, `{"error":"upstream failed"}`, 500)
			return
		default:
			mode = "hold"
		}
	}
	if mode == "hold" {
		v, _ := u.tickets.Load(id)
		tk, _ := v.(*ticket)
		if tk == nil {
			http.Error(w, "no ticket", 400)
			return
		}
		close(tk.held)
		select {
		case <-tk.release:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"id":%q}`, id)
}

// ticket registers a request id whose upstream request may be held.
func (u *upstream) ticket(id string) *ticket {
	tk := &ticket{held: make(chan struct{}), release: make(chan struct{})}
	u.tickets.Store(id, tk)
	return tk
}

// result is what a client saw of one request.
type result struct {
	ID      string
	Account string
	Pages   int
	Status  int    // 0: no response (aborted, connection error)
	Code    string // the error code of a JSON error body
	Cost    string // X-Request-Cost
	Err     error
	Start   time.Time
	Elapsed time.Duration
	// Held: the upstream held the request and the client aborted it.
	Held bool
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}

// send POSTs a PDF of pages pages to gw's /v1/<mode>/<id> with key. When
// abortHeld, it aborts the request once the upstream announces that it
// holds it.
func send(ctx context.Context, u *upstream, gwURL, key, account, mode, id string, pages int, abortHeld bool) (res result) {
	res = result{ID: id, Account: account, Pages: pages}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if abortHeld {
		tk := u.ticket(id)
		defer u.tickets.Delete(id)
		defer func() {
			select {
			case <-tk.held:
				res.Held = true
			default:
			}
		}()
		go func() {
			select {
			case <-tk.held:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", gwURL+"/v1/"+mode+"/"+id, bytes.NewReader(pdfs[pages]))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	start := time.Now()
	res.Start = start
	resp, err := client.Do(req)
	if err != nil {
		res.Err, res.Elapsed = err, time.Since(start)
		return res
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.Elapsed = time.Since(start)
	res.Status, res.Cost = resp.StatusCode, resp.Header.Get("X-Request-Cost")
	if err != nil {
		// The headers came, the body did not: the status stands.
		res.Err = err
	}
	var e struct {
		Error struct{ Code string }
	}
	if json.Unmarshal(body, &e) == nil {
		res.Code = e.Error.Code
	}
	return res
}

// pdfs[n] is a PDF of n pages.
var pdfs = func() [][]byte {
	p := make([][]byte, 11)
	for i := 1; i < len(p); i++ {
		p[i] = pdftest.Pages(i)
	}
	return p
}()
