package caddymodule

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// benchStore answers the calls of the metered path at once, so that the
// handler benchmarks measure the gateway's own work, not a store's.
type benchStore struct {
	meter.Store // nil: any other call panics
	n           atomic.Int64
}

func (s *benchStore) LookupKey(_ context.Context, hash string) (meter.Key, error) {
	return meter.Key{AccountID: "bench", Hash: hash, Mode: meter.ModeLive}, nil
}

func (s *benchStore) Account(_ context.Context, id string) (meter.Account, error) {
	return meter.Account{ID: id, Balance: 1e12, Available: 1e12}, nil
}

func (s *benchStore) Reserve(_ context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	return meter.Reservation{ID: r.ID, AccountID: r.AccountID, Amount: r.Amount, Balance: 1e12, Available: 1e12 - r.Amount}, nil
}

func (s *benchStore) Commit(_ context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	s.n.Add(1)
	return meter.Settlement{Charged: c.Amount, Balance: 1e12 - c.Amount, Available: 1e12 - c.Amount, EntryID: "e1"}, nil
}

func (s *benchStore) Void(context.Context, string, string) (meter.Settlement, error) {
	return meter.Settlement{Balance: 1e12, Available: 1e12}, nil
}

// benchHandler is a provisioned `meter { per_page 1 }` handler on
// benchStore, without Caddy around it.
func benchHandler(tb testing.TB) (*Handler, *benchStore) {
	tb.Helper()
	if err := initMetrics(nil); err != nil {
		tb.Fatal(err)
	}
	one := meter.Credits(meter.Scale)
	h := &Handler{Rules: []pricing.Spec{{PerPage: &one}}, KeyHeader: "Authorization",
		MaxBody: 200 << 20, MemoryThreshold: 1 << 20, MaxFiles: 100, MaxPages: 100_000,
		CountTimeout: caddy.Duration(10 * time.Second), ReservationTTL: caddy.Duration(5 * time.Minute)}
	rules, err := pricing.Compile(h.Rules)
	if err != nil {
		tb.Fatal(err)
	}
	st := &benchStore{}
	h.rules, h.needs, h.logger, h.money = rules, rules.Needs(), zap.NewNop(), defaultMoneyNames
	// The store as Provision sets it up: validated, then timed.
	h.app = &App{store: meter.Validated(timedStore{st}), keys: newKeyCache(5*time.Second, 1000),
		StoreTimeout: caddy.Duration(2 * time.Second), budget: usage.NewBudget(256<<20, 0), plans: newPlanState(nil), money: defaultMoneyNames}
	h.uopts = usage.Options{MaxBody: h.MaxBody, MemoryThreshold: h.MemoryThreshold, MaxFiles: h.MaxFiles,
		MaxPages: h.MaxPages, CountTimeout: time.Duration(h.CountTimeout), Budget: h.app.budget}
	h.auth = authenticator{header: h.KeyHeader, app: h.app}
	return h, st
}

// upstreamOK reads the body, as bench/upstream does, and answers 200.
var upstreamOK = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(`{"ok":true}`))
	return err
})

// benchRequest is a POST of doc as Caddy hands it to a handler: with a
// replacer that knows the request's variables.
func benchRequest(doc []byte) *http.Request {
	r := httptest.NewRequest("POST", "/v1/convert", bytes.NewReader(doc))
	r.Header.Set("Authorization", "Bearer ck_live_bench")
	r.Header.Set("Content-Type", "application/pdf")
	r.Header.Set("Content-Length", strconv.Itoa(len(doc)))
	repl := caddy.NewReplacer()
	return caddyhttp.PrepareRequest(r, repl, nil, nil)
}

func benchServe(b *testing.B, doc []byte) {
	h, st := benchHandler(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	cpu0 := processCPU()
	b.ResetTimer()
	for b.Loop() {
		r := benchRequest(doc)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, upstreamOK); err != nil || w.Code != 200 || w.Header().Get(HeaderCost) == "" {
			b.Fatalf("status %d, err %v, body %s", w.Code, err, w.Body)
		}
	}
	reportCPU(b, cpu0)
	if st.n.Load() == 0 {
		b.Fatal("nothing committed")
	}
}

// BenchmarkServeHTTP is the gateway's own work on a metered request
// (identify, spool, count, price, reserve, forward, settle) with a store
// that costs nothing; bench/gateway.sh measures it with Redis.
func BenchmarkServeHTTP(b *testing.B) {
	b.Run("p1", func(b *testing.B) { benchServe(b, pdftest.Pages(1)) })
	b.Run("p10-200KB", func(b *testing.B) { benchServe(b, pdftest.Padded(10, 200_000)) })
}

// BenchmarkServeHTTPBaseline is the request set-up and upstream of
// BenchmarkServeHTTP without the handler: subtract it.
func BenchmarkServeHTTPBaseline(b *testing.B) {
	doc := pdftest.Pages(1)
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		r := benchRequest(doc)
		w := httptest.NewRecorder()
		_ = upstreamOK.ServeHTTP(w, r)
	}
	reportCPU(b, cpu0)
}

// processCPU is the CPU time (user + system) of this process so far, all
// its threads: the request's own work and the collector's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU time a request took since cpu0 (cpu-us/op): on
// a machine shared with other work it varies much less than ns/op, the
// wall time, which counts the time the benchmark waited for a core.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}
