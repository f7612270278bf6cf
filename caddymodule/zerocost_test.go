package caddymodule

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
)

// redisFootprint is the number of keys of the test's database and the
// bytes they use (MEMORY USAGE), as a zero-cost flood would grow them.
func redisFootprint(t *testing.T, url string) (keys int, bytes int64) {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	all, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		n, err := c.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes += n
	}
	return len(all), bytes
}

// A zero-cost request (no pages on a per-page route) is forwarded
// without a reservation: it leaves nothing in the store, whatever its
// Idempotency-Key, and an account gets zero_cost_rate of them (burst 20),
// then 429 rate_limited with Retry-After, not forwarded.
func TestZeroCostRequestsLeaveNothingAndAreBounded(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		// The default burst, refilled once a second: at the default 10 a second
		// a loaded -race run took over 100 ms for the 20 and the 21st
		// found a new token.
		global = strings.Replace(global, "\tmeter {\n", "\tmeter {\n\t\tzero_cost_rate 1 20\n", 1)
		g, u := startIdem(t, global)
		key := g.newAccount("free_flood", 0, meter.ModeLive)
		isRedis := global == globalBlock
		var keys0 int
		var bytes0 int64
		if isRedis {
			keys0, bytes0 = redisFootprint(t, testRedisURL(t))
		}
		for i := 0; i < 20; i++ {
			resp, raw := g.post("/v1/convert/x", key, "text/plain", []byte("no pages "+strconv.Itoa(i)),
				"Idempotency-Key", "free-"+strconv.Itoa(i))
			if resp.StatusCode != 201 {
				t.Fatalf("free request %d: %d %s", i, resp.StatusCode, raw)
			}
			assertMoney(t, resp, "0", "0")
			assertNoForgedHeaders(t, resp)
		}
		resp, raw := g.post("/v1/convert/x", key, "text/plain", []byte("one more"))
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("beyond the burst: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
		if code, _ := errorCode(t, raw); code != meter.ECodeRateLimited {
			t.Fatalf("code %s", code)
		}
		if n := u.hits.Load(); n != 20 {
			t.Fatalf("upstream hits %d, want 20", n)
		}
		if isRedis {
			keys, bytes := redisFootprint(t, testRedisURL(t))
			t.Logf("redis: %d keys, %d bytes before; %d keys, %d bytes after 20 zero-cost requests", keys0, bytes0, keys, bytes)
			if keys != keys0 || bytes != bytes0 {
				t.Fatalf("the store grew: %d keys, %d bytes before; %d, %d after", keys0, bytes0, keys, bytes)
			}
		}
		var rep usageReport
		if code := g.adminDo("GET", "/meter/accounts/free_flood/usage", nil, &rep); code != 200 || rep.Total.Requests != 0 {
			t.Fatalf("usage: HTTP %d, %+v", code, rep)
		}
		g.assertBalance("free_flood", 0, 0)
		if n := len(g.ledger("free_flood")); n != 0 {
			t.Fatalf("%d ledger entries, want none", n)
		}

		// Free requests do not slow paid ones: they have a bucket of their own.
		paid := g.newAccount("free_then_paid", 5, meter.ModeLive)
		for i := 0; i < 21; i++ {
			g.post("/v1/convert/x", paid, "text/plain", []byte("free"))
		}
		resp, _ = g.post("/v1/convert/x", paid, "application/pdf", pdftest.Pages(2))
		if resp.StatusCode != 201 {
			t.Fatalf("a paid request after the free burst: %d", resp.StatusCode)
		}
		assertMoney(t, resp, "2", "3")
	})
}

// Refusals are not rate limited: a broke account keeps getting 402, which
// tells it to stop, where 429 would tell it to retry; none reaches the
// upstream or leaves anything in the store.
func TestRefusalsAreNotRateLimited(t *testing.T) {
	g, u := startIdem(t, globalBlock)
	key := g.newAccount("broke", 0, meter.ModeLive)
	doc := pdftest.Pages(3)
	// The first call writes the account's period and sweep marker, once.
	g.post("/v1/convert/x", key, "application/pdf", doc)
	keys0, bytes0 := redisFootprint(t, testRedisURL(t))
	for i := 0; i < 30; i++ {
		resp, raw := g.post("/v1/convert/x", key, "application/pdf", doc)
		if resp.StatusCode != 402 {
			t.Fatalf("refusal %d: %d %s", i, resp.StatusCode, raw)
		}
		assertMoney(t, resp, "3", "0")
	}
	if u.hits.Load() != 0 {
		t.Fatalf("the upstream was reached %d times", u.hits.Load())
	}
	if keys, bytes := redisFootprint(t, testRedisURL(t)); keys != keys0 || bytes != bytes0 {
		t.Fatalf("refusals grew the store: %d keys, %d bytes before; %d, %d after", keys0, bytes0, keys, bytes)
	}
	g.assertBalance("broke", 0, 0)
}

func TestCaddyfileIdempotencyAndZeroCostOptions(t *testing.T) {
	m, err := adapt(t, "{\n\tmeter {\n\t\tidempotency_ttl 1h\n\t\tzero_cost_rate 2.5 40\n\t}\n}\n"+
		":80 {\n\tmeter {\n\t\tper_page 1\n\t\tidempotency_max_response 128KiB\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
	if want := `{"idempotency_ttl":3600000000000,"zero_cost_burst":40,"zero_cost_rate":2.5}`; string(app) != want {
		t.Errorf("meter app:\n got %s\nwant %s", app, want)
	}
	if h := find(m, "meter"); h["idempotency_max_response"] != float64(128<<10) {
		t.Errorf("meter handler: %v", h)
	}
	m, err = adapt(t, "{\n\tmeter {\n\t\tzero_cost_rate off\n\t}\n}\n:80 {\n\tmeter {\n\t\tper_page 1\n\t\tidempotency_max_response off\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	if app := m["apps"].(map[string]any)["meter"].(map[string]any); app["zero_cost_rate"] != float64(-1) {
		t.Errorf("zero_cost_rate off: %v", app)
	}
	if h := find(m, "meter"); h["idempotency_max_response"] != float64(-1) {
		t.Errorf("idempotency_max_response off: %v", h)
	}

	bad := []struct{ src, want string }{
		{"{\n\tmeter {\n\t\tzero_cost_rate fast\n\t}\n}\n:80 {\n\trespond ok\n}", `zero_cost_rate "fast": expected a positive number of requests per second, or off, at Caddyfile:3`},
		{"{\n\tmeter {\n\t\tzero_cost_rate 0\n\t}\n}\n:80 {\n\trespond ok\n}", `zero_cost_rate "0"`},
		{"{\n\tmeter {\n\t\tzero_cost_rate 1 0\n\t}\n}\n:80 {\n\trespond ok\n}", `zero_cost_rate burst "0": expected a positive integer, at Caddyfile:3`},
		{"{\n\tmeter {\n\t\tzero_cost_rate off 3\n\t}\n}\n:80 {\n\trespond ok\n}", "zero_cost_rate off takes no burst, at Caddyfile:3"},
		{"{\n\tmeter {\n\t\tzero_cost_rate 1 2 3\n\t}\n}\n:80 {\n\trespond ok\n}", "wrong argument count"},
		{"{\n\tmeter {\n\t\tidempotency_ttl soon\n\t}\n}\n:80 {\n\trespond ok\n}", "idempotency_ttl: expected a positive duration"},
		{":80 {\n\tmeter {\n\t\tper_page 1\n\t\tidempotency_max_response 2MB\n\t}\n}", `idempotency_max_response "2MB": expected a size from 1B to 512KiB, or off, at Caddyfile:4`},
	}
	for _, tt := range bad {
		if _, err := adapt(t, tt.src); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want it to contain %q", err, tt.want)
		}
	}
	for _, a := range []*App{{IdempotencyTTL: caddy.Duration(time.Millisecond)}, {ZeroCostBurst: -1}} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v validated", a)
		}
	}
	one := meter.Credits(meter.Scale)
	if err := (&Handler{Rules: []pricing.Spec{{PerPage: &one}}, IdempotencyMaxResponse: 1 << 20}).Validate(); err == nil {
		t.Error("idempotency_max_response of 1 MiB validated")
	}
}
