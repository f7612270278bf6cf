package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// forgingUpstream answers every request with a body naming the request's
// sequence number (so a replay shows whether it was run again) and tries
// to set the gateway's money headers. /fail answers 500, /big 100 KiB,
// /hold waits until release is closed.
type forgingUpstream struct {
	*httptest.Server
	hits    atomic.Int64
	release chan struct{}
	entered chan struct{}
}

func newForgingUpstream(t *testing.T) *forgingUpstream {
	u := &forgingUpstream{release: make(chan struct{}), entered: make(chan struct{}, 100)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.hits.Add(1)
		for _, h := range []string{HeaderCost, HeaderRemaining, HeaderQuotaRemaining, HeaderQuotaReset, HeaderReplayed} {
			w.Header().Set(h, "777")
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/fail"):
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		case strings.HasSuffix(r.URL.Path, "/hold"):
			u.entered <- struct{}{}
			<-u.release
		case strings.HasSuffix(r.URL.Path, "/big"):
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bytes.Repeat([]byte{'x'}, 100<<10))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Seq", fmt.Sprint(n))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"seq":%d}`, n)
	}))
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
		u.Close()
	})
	return u
}

const idemSite = `
http://{SITE} {
	route /v1/convert/* {
		meter {
			per_page 1
			route convert
			reservation_ttl 1m
			# what has no pages (the zero-cost requests) is free here, on purpose
			unpriced charge 0
		}
		reverse_proxy {UPSTREAM}
	}
	route /v1/ocr/* {
		meter {
			per_page 2
			route ocr
		}
		reverse_proxy {UPSTREAM}
	}
	route /v1/call/* {
		meter {
			per_call 1
			route call
			idempotency_max_response 32KB
		}
		reverse_proxy {UPSTREAM}
	}
}
`

// eachStore runs a test on a gateway with Redis and on one with the
// embedded store; global is the global options block.
func eachStore(t *testing.T, test func(t *testing.T, global string)) {
	t.Run("redis", func(t *testing.T) { test(t, globalBlock) })
	t.Run("embedded", func(t *testing.T) {
		test(t, strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1))
	})
}

func startIdem(t *testing.T, global string) (*gateway, *forgingUpstream) {
	u := newForgingUpstream(t)
	return startGateway(t, global+strings.ReplaceAll(idemSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))), u
}

// The attack of issue 15: pay for a 1-page request under a key, then send
// a 20,000-page document (and the same on another route, and 50 at once)
// under the same key. Every one is refused with 422 and none reaches the
// upstream; the same request again is answered with the stored response.
func TestIdempotencyKeyIsBoundToItsRequest(t *testing.T) {
	big := pdftest.Pages(20000)
	eachStore(t, func(t *testing.T, global string) {
		g, u := startIdem(t, global)
		key := g.newAccount("idem_attack", 100, meter.ModeLive)
		one := pdftest.Pages(1)

		first, body := g.post("/v1/convert/x", key, "application/pdf", one, "Idempotency-Key", "abc")
		if first.StatusCode != 201 || string(body) != `{"seq":1}` {
			t.Fatalf("first: %d %q", first.StatusCode, body)
		}
		assertMoney(t, first, "1", "99")
		assertNoForgedHeaders(t, first)

		refused := func(name string, resp *http.Response, raw []byte) {
			t.Helper()
			if resp.StatusCode != 422 {
				t.Fatalf("%s: status %d (%s), want 422", name, resp.StatusCode, raw)
			}
			if code, _ := errorCode(t, raw); code != meter.ECodeIdempotencyKeyReused {
				t.Fatalf("%s: code %s", name, code)
			}
			assertNoForgedHeaders(t, resp)
		}
		resp, raw := g.post("/v1/convert/x", key, "application/pdf", big, "Idempotency-Key", "abc")
		refused("20,000 pages", resp, raw)
		resp, raw = g.post("/v1/ocr/x", key, "application/pdf", one, "Idempotency-Key", "abc")
		refused("another route", resp, raw)
		resp, raw = g.post("/v1/convert/x?pages=all", key, "application/pdf", one, "Idempotency-Key", "abc")
		refused("another query", resp, raw)
		resp, raw = g.do("PUT", "/v1/convert/x", key, "application/pdf", one, "Idempotency-Key", "abc")
		refused("another method", resp, raw)

		// 50 at once, with a document counted quickly enough for all of
		// them to get through the count_memory budget within its second
		// (beyond it: 503 server_busy, not forwarded either).
		mid := pdftest.Pages(200)
		var wg sync.WaitGroup
		statuses := make(chan int, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", g.URL+"/v1/convert/x", bytes.NewReader(mid))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/pdf")
				req.Header.Set("Idempotency-Key", "abc")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != 422 {
				t.Fatalf("a concurrent reuse got %d, want 422", s)
			}
		}
		if n := u.hits.Load(); n != 1 {
			t.Fatalf("the upstream was reached %d times, want 1", n)
		}

		// The same request: the stored response, not the upstream.
		resp, raw = g.post("/v1/convert/x", key, "application/pdf", one, "Idempotency-Key", "abc")
		if resp.StatusCode != 201 || string(raw) != `{"seq":1}` || resp.Header.Get("X-Upstream-Seq") != "1" ||
			resp.Header.Get(HeaderReplayed) != "true" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("replay: %d %q %v", resp.StatusCode, raw, resp.Header)
		}
		assertMoney(t, resp, "1", "99") // the original charge, not a new one
		assertNoForgedHeaders(t, resp)
		if n := u.hits.Load(); n != 1 {
			t.Fatalf("the replay reached the upstream (%d hits)", n)
		}
		g.assertBalance("idem_attack", 99, 0)
		if n := len(g.ledger("idem_attack")); n != 2 {
			t.Fatalf("%d ledger entries, want the purchase and one usage", n)
		}
	})
}

// A route that does not read the body for its price still binds the key
// to the body.
func TestIdempotencyKeyOnARouteThatDoesNotReadTheBody(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		g, u := startIdem(t, global)
		key := g.newAccount("idem_call", 10, meter.ModeLive)
		resp, _ := g.post("/v1/call/x", key, "text/plain", []byte("small job"), "Idempotency-Key", "k1")
		assertMoney(t, resp, "1", "9")
		resp, raw := g.post("/v1/call/x", key, "text/plain", []byte("a much larger job"), "Idempotency-Key", "k1")
		if resp.StatusCode != 422 {
			t.Fatalf("another body: %d %s", resp.StatusCode, raw)
		}
		resp, raw = g.post("/v1/call/x", key, "text/plain", []byte("small job"), "Idempotency-Key", "k1")
		if resp.StatusCode != 201 || string(raw) != `{"seq":1}` || resp.Header.Get(HeaderReplayed) != "true" {
			t.Fatalf("replay: %d %q", resp.StatusCode, raw)
		}
		if u.hits.Load() != 1 {
			t.Fatalf("upstream hits %d, want 1", u.hits.Load())
		}
		g.assertBalance("idem_call", 9, 0)
	})
}

// While the first request is in flight, the same one gets 409; a failed
// first attempt frees the key; a response too large to keep is never
// replayed nor run again for free.
func TestIdempotencyInFlightFailedAndTooLarge(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		g, u := startIdem(t, global)
		key := g.newAccount("idem_flight", 10, meter.ModeLive)
		doc := pdftest.Pages(2)

		done := make(chan *http.Response)
		go func() {
			resp, _ := g.post("/v1/convert/hold", key, "application/pdf", doc, "Idempotency-Key", "k-hold")
			done <- resp
		}()
		<-u.entered
		resp, raw := g.post("/v1/convert/hold", key, "application/pdf", doc, "Idempotency-Key", "k-hold")
		if resp.StatusCode != 409 {
			t.Fatalf("in flight: %d %s", resp.StatusCode, raw)
		}
		if code, _ := errorCode(t, raw); code != meter.ECodeIdempotencyConflict {
			t.Fatalf("in flight: code %s", code)
		}
		close(u.release)
		if first := <-done; first.StatusCode != 201 {
			t.Fatalf("first: %d", first.StatusCode)
		}
		if u.hits.Load() != 1 {
			t.Fatalf("upstream hits %d, want 1", u.hits.Load())
		}

		// A failed first attempt is not charged and frees the key.
		resp, _ = g.post("/v1/convert/fail", key, "application/pdf", doc, "Idempotency-Key", "k-fail")
		if resp.StatusCode != 500 {
			t.Fatalf("fail: %d", resp.StatusCode)
		}
		assertMoney(t, resp, "0", "8")
		assertNoForgedHeaders(t, resp)
		resp, _ = g.post("/v1/convert/x", key, "application/pdf", doc, "Idempotency-Key", "k-fail")
		if resp.StatusCode != 201 || resp.Header.Get(HeaderReplayed) != "" {
			t.Fatalf("retry after failure: %d, replayed %q", resp.StatusCode, resp.Header.Get(HeaderReplayed))
		}
		assertMoney(t, resp, "2", "6")

		// 100 KiB is more than the 64 KiB kept: delivered whole and
		// charged once; its replay is refused, and the upstream not called.
		resp, raw = g.post("/v1/convert/big", key, "application/pdf", doc, "Idempotency-Key", "k-big")
		if resp.StatusCode != 200 || len(raw) != 100<<10 {
			t.Fatalf("big: %d, %d bytes", resp.StatusCode, len(raw))
		}
		assertMoney(t, resp, "2", "4")
		hits := u.hits.Load()
		resp, raw = g.post("/v1/convert/big", key, "application/pdf", doc, "Idempotency-Key", "k-big")
		if resp.StatusCode != 409 {
			t.Fatalf("replay of big: %d %s", resp.StatusCode, raw)
		}
		code, details := errorCode(t, raw)
		if code != meter.ECodeIdempotencyResponseNotStored || fmt.Sprint(details["charged"]) != "2" {
			t.Fatalf("replay of big: %s %v", raw, details)
		}
		assertMoney(t, resp, "0", "4")
		if u.hits.Load() != hits {
			t.Fatal("the replay of a response not kept reached the upstream")
		}
		g.assertBalance("idem_flight", 4, 0)
	})
}

// A key expires idempotency_ttl after its request's charge: then the
// same request is run and charged again, and the key may name another.
func TestIdempotencyKeyExpires(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		global = strings.Replace(global, "\tmeter {\n", "\tmeter {\n\t\tidempotency_ttl 1s\n", 1)
		g, u := startIdem(t, global)
		key := g.newAccount("idem_ttl", 10, meter.ModeLive)
		doc := pdftest.Pages(1)
		resp, _ := g.post("/v1/convert/x", key, "application/pdf", doc, "Idempotency-Key", "k")
		assertMoney(t, resp, "1", "9")
		resp, _ = g.post("/v1/convert/x", key, "application/pdf", doc, "Idempotency-Key", "k")
		if resp.Header.Get(HeaderReplayed) != "true" || u.hits.Load() != 1 {
			t.Fatalf("replay within the TTL: replayed %q, hits %d", resp.Header.Get(HeaderReplayed), u.hits.Load())
		}
		time.Sleep(1200 * time.Millisecond)
		resp, raw := g.post("/v1/convert/x", key, "application/pdf", pdftest.Pages(2), "Idempotency-Key", "k")
		if resp.StatusCode != 201 || resp.Header.Get(HeaderReplayed) != "" || string(raw) != `{"seq":2}` {
			t.Fatalf("after the TTL: %d, replayed %q, %s", resp.StatusCode, resp.Header.Get(HeaderReplayed), raw)
		}
		assertMoney(t, resp, "2", "7")
		g.assertBalance("idem_ttl", 7, 0)
	})
}

// The stored response lives in the store, not in the gateway: a gateway
// started again (as after a crash) replays it without the upstream.
func TestIdempotencyReplaySurvivesARestart(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		u := newForgingUpstream(t)
		redisURL := testRedisURL(t)
		src := strings.NewReplacer("{REDIS}", redisURL).Replace(global) +
			strings.ReplaceAll(idemSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
		g := startGatewayRedis(t, src, redisURL)
		key := g.newAccount("idem_restart", 10, meter.ModeLive)
		doc := pdftest.Pages(3)
		if resp, _ := g.post("/v1/convert/x", key, "application/pdf", doc, "Idempotency-Key", "k"); resp.StatusCode != 201 {
			t.Fatalf("first: %d", resp.StatusCode)
		}
		if err := caddy.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := loadCaddyfile(t, src, g.admin, strings.TrimPrefix(g.URL, "http://"), redisURL); err != nil {
			t.Fatal(err)
		}
		resp, raw := g.post("/v1/convert/x", key, "application/pdf", doc, "Idempotency-Key", "k")
		if resp.StatusCode != 201 || string(raw) != `{"seq":1}` || resp.Header.Get(HeaderReplayed) != "true" {
			t.Fatalf("replay after restart: %d %q", resp.StatusCode, raw)
		}
		assertMoney(t, resp, "3", "7")
		if u.hits.Load() != 1 {
			t.Fatalf("upstream hits %d, want 1", u.hits.Load())
		}
		g.assertBalance("idem_restart", 7, 0)
	})
}

// What is kept for a replay is the answer as the client got it: no
// hop-by-hop or connection-listed header, no money header, no header the
// route prices (settle removes it from the client's answer).
func TestStoredResponseHeaders(t *testing.T) {
	rq := &request{h: &Handler{}}
	rq.h.needs.ResponseHeaders = []string{"X-Units"}
	hdr := http.Header{}
	for _, h := range []string{"Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Date",
		"X-Units", HeaderCost, HeaderRemaining, HeaderReplayed, "Content-Type", "X-Kept"} {
		hdr.Set(h, "v")
	}
	hdr.Set("Connection", "X-Hop")
	raw := rq.encodeResponse(201, hdr, []byte("body"))
	var sr storedResponse
	if err := json.Unmarshal(raw, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Status != 201 || string(sr.Body) != "body" || len(sr.Header) != 2 ||
		sr.Header.Get("Content-Type") != "v" || sr.Header.Get("X-Kept") != "v" {
		t.Fatalf("stored %+v", sr)
	}
}
