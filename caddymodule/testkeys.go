package caddymodule

import (
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/creditgate/creditgate/meter"
)

// What a metered route does with a test key's request (Handler.Test).
const (
	// TestSimulate answers it from the gateway: priced, never forwarded.
	TestSimulate = "simulate"
	// TestForward forwards it with X-Meter-Test: true, to the upstream or
	// to wherever the Caddyfile routes {http.meter.mode} == test.
	TestForward = "forward"
)

// defaultTestLimit is Handler.TestLimit's default.
const defaultTestLimit = 1000

// modePlaceholder is set to the key's mode (live or test) on every
// authenticated request, for matchers after meter:
// `@test vars {http.meter.mode} test`.
const modePlaceholder = "http.meter.mode"

// setMode publishes the key's mode to the rest of the route.
func setMode(r *http.Request, mode meter.Mode) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(modePlaceholder, string(mode))
	}
}

// testCounts counts each account's test-key requests of the current UTC
// day in this process. Package-level, so a config reload does not reset
// it; in memory, so each gateway process bounds test traffic on its own
// (a test request moves no money, and a store write per test request would
// cost as much as a live one).
var testCounts = &testCounter{}

type testCounter struct {
	mu    sync.Mutex
	day   string
	count map[string]int
}

// take counts one request of key if fewer than limit were made today, and
// returns the count including it.
func (c *testCounter) take(key string, limit int, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if day := now.UTC().Format(time.DateOnly); day != c.day {
		c.day, c.count = day, map[string]int{}
	}
	if c.count[key] >= limit {
		return c.count[key], false
	}
	c.count[key]++
	return c.count[key], true
}

// takeTest counts a test-key request of the account against the route's
// daily limit.
func (h *Handler) takeTest(account string) (int, error) {
	now := time.Now()
	n, ok := testCounts.take(h.app.poolKey+"\x00"+account, h.TestLimit, now)
	if ok {
		return n, nil
	}
	y, m, d := now.UTC().Date()
	reset := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	return n, meter.Errorf(meter.ECodeTestLimitExceeded,
		"this account's test keys made %d requests today, this route's limit; it resets at %s. Use a live key for more.",
		n, reset.Format(time.RFC3339)).With("test_limit", h.TestLimit).With("resets_at", reset)
}

// testResponse is the gateway's answer to a test key on a simulating
// route: the quote a live key would get, and what is left of the day's
// test requests.
type testResponse struct {
	Test      bool   `json:"test"`
	Simulated bool   `json:"simulated"`
	Message   string `json:"message"`
	Route     string `json:"route"`
	dryRunResponse
	TestRequestsToday int `json:"test_requests_today"`
	TestLimit         int `json:"test_limit"`
}

// serveTest serves a test key's request: priced like a live one, never
// charged. x-request-cost is what a live key would have been charged.
func (rq *request) serveTest(w http.ResponseWriter, next caddyhttp.Handler, used int) error {
	ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
	acct, err := rq.h.app.store.Account(ctx, rq.key.AccountID)
	cancel()
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	if rq.h.Test != TestForward {
		q, err := rq.quoteResponse(acct)
		if err != nil {
			rq.refuse(w, err)
			return nil
		}
		w.Header().Set(HeaderTest, "true")
		rq.h.money.set(w.Header(), rq.quote.Total, acct.Available)
		writeJSON(w, http.StatusOK, testResponse{Test: true, Simulated: true,
			Message: "test key: priced as a live key would be, not processed and not charged",
			Route:   rq.route, dryRunResponse: q, TestRequestsToday: used, TestLimit: rq.h.TestLimit})
		return nil
	}
	rq.r.Header.Set(UpstreamTest, "true")
	rq.r.Header.Set(UpstreamAccount, rq.key.AccountID)
	return next.ServeHTTP(newMoneyWriter(w, rq.h.money, func(h http.Header) {
		h.Set(HeaderTest, "true")
		rq.h.money.set(h, rq.quote.Total, acct.Available)
	}), rq.r)
}
