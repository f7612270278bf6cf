package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is an upstream that records every request it gets (path and
// headers) and answers: POST .../jobs 202 {"id": "up-<n>"}, anything else
// 200 JSON. It sets money headers of its own, which must never reach a
// client.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []recorded
	jobs int
}

type recorded struct {
	path   string
	header http.Header
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, recorded{r.URL.Path, r.Header.Clone()})
		rec.mu.Unlock()
		w.Header().Set(HeaderCost, "777")
		w.Header().Set(HeaderRemaining, "999999")
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/jobs") {
			rec.mu.Lock()
			rec.jobs++
			n := rec.jobs
			rec.mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"id": "up-%d"}`, n)
			return
		}
		fmt.Fprintf(w, `{"ok": true, "path": %q}`, r.URL.Path)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.seen)
}

func (rec *recorder) last(t *testing.T) recorded {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("the upstream got no request")
	}
	return rec.seen[len(rec.seen)-1]
}

func (rec *recorder) hostPort() string { return strings.TrimPrefix(rec.URL, "http://") }
