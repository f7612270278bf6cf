package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
)

const metricsSite = `
http://{SITE} {
	handle /metrics {
		metrics
	}
	handle /classes {
		route {
			meter {
				per_page {
					drawing 10 larger_than 11x17in
					document 1
				}
			}
			respond "done"
		}
	}
	handle /fail {
		route {
			meter {
				per_page 1
			}
			respond "broken" 500
		}
	}
	handle {
		route {
			meter {
				per_page 1
			}
			respond "done"
		}
	}
}
`

// metricValue returns the value of the sample line starting with prefix.
func metricValue(t *testing.T, body, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" ")
		}
	}
	t.Fatalf("no sample %s in /metrics", prefix)
	return ""
}

func TestMetricsAreScraped(t *testing.T) {
	g := startGateway(t, globalBlock+metricsSite)
	key := g.newAccount("e2e_metrics", 100, meter.ModeLive)
	scrape := func() string {
		resp, err := http.Get(g.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Counters are process-wide: compare before and after.
	before := scrape()
	num := func(body, prefix string) float64 {
		v := 0.0
		if strings.Contains(body, prefix+" ") {
			if _, err := fmt.Sscan(metricValue(t, body, prefix), &v); err != nil {
				t.Fatal(err)
			}
		}
		return v
	}
	g.post("/convert", key, "application/pdf", pdftest.Pages(3))
	g.post("/fail", key, "application/pdf", pdftest.Pages(2))
	g.post("/convert", "sk_live_unknown", "application/pdf", pdftest.Pages(2))
	g.post("/classes", key, "application/pdf", pdftest.Sized(pdftest.A3, pdftest.Letter, pdftest.Letter))
	after := scrape()

	checks := []struct {
		sample string
		delta  float64
	}{
		{`caddy_meter_requests_total{code="",outcome="charged"}`, 2},
		{`caddy_meter_class_pages_total{class="drawing"}`, 1},
		{`caddy_meter_class_pages_total{class="document"}`, 2},
		{`caddy_meter_requests_total{code="",outcome="voided"}`, 1},
		{`caddy_meter_requests_total{code="invalid_api_key",outcome="refused"}`, 1},
		{`caddy_meter_credits_debited_total`, 15},
		{`caddy_meter_credits_reserved_total`, 17},
		{`caddy_meter_pages_total{kind="pdf"}`, 8},
		{`caddy_meter_store_duration_seconds_count{op="reserve"}`, 3},
		{`caddy_meter_store_duration_seconds_count{op="commit"}`, 2},
		{`caddy_meter_store_duration_seconds_count{op="void"}`, 1},
		{`caddy_meter_measure_duration_seconds_count`, 3},
	}
	for _, c := range checks {
		if d := num(after, c.sample) - num(before, c.sample); d != c.delta {
			t.Errorf("%s grew by %g, want %g", c.sample, d, c.delta)
		}
	}
	if strings.Contains(after, "e2e_metrics") {
		t.Error("an account id appears in /metrics")
	}
}

// The handler's spans are children of the request's span, on the request
// span's tracer provider (the one Caddy's tracing directive installs).
func TestSpans(t *testing.T) {
	g := startGateway(t, globalBlock+minimalSite)
	key := g.newAccount("e2e_spans", 10, meter.ModeLive)

	h := &Handler{Rules: []pricing.Spec{{PerPage: ptr(meter.CreditsFromInt(1))}}}
	cctx := caddy.ActiveContext()
	if err := h.Provision(cctx); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")

	req := httptest.NewRequest("POST", "/convert", strings.NewReader(string(pdftest.Pages(2)))).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, "ok")
		return err
	})
	if err := h.ServeHTTP(w, req, next); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if w.Header().Get(HeaderCost) != "2" {
		t.Fatalf("cost %q", w.Header().Get(HeaderCost))
	}
	got := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		got[s.Name()] = s
	}
	for _, name := range []string{"meter.authenticate", "meter.measure", "meter.price", "meter.reserve", "meter.upstream", "meter.settle"} {
		s, ok := got[name]
		if !ok {
			t.Errorf("no span %s", name)
			continue
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() && s.Parent().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %s is not in the request's trace", name)
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), key) {
				t.Errorf("span %s carries the API key", name)
			}
		}
	}
	attrs := map[string]string{}
	for _, a := range got["meter.settle"].Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["meter.outcome"] != "charged" || attrs["meter.charged"] != "2" || attrs["meter.account"] != "e2e_spans" {
		t.Errorf("settle span attributes %v", attrs)
	}
	for name, want := range map[string]map[string]string{
		"meter.measure":  {"meter.account": "e2e_spans", "meter.route": "/convert", "meter.pages": "2"},
		"meter.price":    {"meter.cost": "2"},
		"meter.reserve":  {"meter.account": "e2e_spans", "meter.cost": "2"},
		"meter.upstream": {"meter.route": "/convert", "meter.outcome": "charged"},
	} {
		attrs := map[string]string{}
		if s := got[name]; s != nil {
			for _, a := range s.Attributes() {
				attrs[string(a.Key)] = a.Value.String()
			}
		}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("span %s: %s = %q, want %q", name, k, attrs[k], v)
			}
		}
	}
	g.assertBalance("e2e_spans", 8, 0)
}

// Without a request span (no `tracing` directive) startSpan leaves the
// context as it is, allocates nothing and never builds the attributes.
func TestStartSpanWithoutTracing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := false
	attrs := func() []attribute.KeyValue { called = true; return nil }
	allocs := testing.AllocsPerRun(100, func() {
		got, span := startSpan(ctx, traced(ctx), spanMeasure, attrs)
		if got != ctx || span.IsRecording() {
			t.Fatal("a span without tracing")
		}
		endSpan(span, nil)
	})
	if allocs != 0 || called {
		t.Errorf("%v allocations, attributes built: %v", allocs, called)
	}
}

func ptr[T any](v T) *T { return &v }
