package caddymodule

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/time/rate"

	"github.com/creditgate/creditgate/meter"
)

// Defaults of App.UnpaidRate and App.UnpaidBurst.
const (
	defaultUnpaidRate  = 10
	defaultUnpaidBurst = 20
)

// Kinds of unpaid requests; each account has a bucket of each, so that
// using a free route never slows an account's paid requests.
const (
	unpaidFree    = "\x00free"    // forwarded at zero cost: needs a token
	unpaidRefused = "\x00refused" // refused after authentication: takes one
)

// unpaidLimiter bounds the requests that cost an account nothing, per
// account, in this process's memory (token buckets of x/time/rate): they
// reach the upstream or use the gateway and the store without a charge to
// pay for it. Buckets that are full again are dropped now and then, so
// memory follows the accounts active within about burst/rate seconds.
type unpaidLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// newUnpaidLimiter returns a limiter, or nil (no limit) for a negative
// rate.
func newUnpaidLimiter(perSecond float64, burst int) *unpaidLimiter {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = defaultUnpaidRate
	}
	if burst <= 0 {
		burst = defaultUnpaidBurst
	}
	return &unpaidLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *unpaidLimiter) bucket(account, kind string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		l.swept = now
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[account+kind]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[account+kind] = b
	}
	return b
}

// take takes a token of the account's bucket of kind, or returns
// ECodeRateLimited with the seconds until there is one.
func (l *unpaidLimiter) take(account, kind string) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	b := l.bucket(account, kind, now)
	if b.AllowN(now, 1) {
		return nil
	}
	return l.limited(b, now)
}

// check is take without taking: an account whose refusals have used up
// their bucket is refused before its request is read.
func (l *unpaidLimiter) check(account, kind string) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	b := l.bucket(account, kind, now)
	if b.TokensAt(now) >= 1 {
		return nil
	}
	return l.limited(b, now)
}

func (l *unpaidLimiter) limited(b *rate.Limiter, now time.Time) error {
	wait := (1 - b.TokensAt(now)) / float64(l.limit)
	secs := max(1, int64(math.Ceil(wait)))
	return meter.Errorf(meter.ECodeRateLimited,
		"too many requests that are not charged (zero-cost or refused) from this account: at most %s per second",
		strconv.FormatFloat(float64(l.limit), 'f', -1, 64)).With("retry_after", secs)
}

// unmarshalUnpaidRate parses `unpaid_rate <per_second>|off [<burst>]`.
func (a *App) unmarshalUnpaidRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	if args[0] == "off" {
		if len(args) > 1 {
			return d.Errf("meter: unpaid_rate off takes no burst")
		}
		a.UnpaidRate = -1
		return nil
	}
	r, err := strconv.ParseFloat(args[0], 64)
	if err != nil || r <= 0 || math.IsInf(r, 0) {
		return d.Errf("meter: unpaid_rate %q: expected a positive number of requests per second, or off", args[0])
	}
	a.UnpaidRate = r
	if len(args) == 2 {
		if a.UnpaidBurst, err = strconv.Atoi(args[1]); err != nil || a.UnpaidBurst < 1 {
			return d.Errf("meter: unpaid_rate burst %q: expected a positive integer", args[1])
		}
	}
	return nil
}

// forwardFree forwards a request that costs nothing: with nothing to
// charge, nothing is reserved or committed, so it leaves no record in the
// store (its Idempotency-Key included) and is bounded per account by
// unpaid_rate instead.
func (h *Handler) forwardFree(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rq *request) error {
	if err := h.app.unpaid.take(rq.key.AccountID, unpaidFree); err != nil {
		rq.refuse(w, err)
		return nil
	}
	ctx, cancel := h.app.storeCtx(r.Context())
	acct, err := h.app.store.Account(ctx, rq.key.AccountID)
	cancel()
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	rq.free = &acct
	r.Header.Set(UpstreamAccount, rq.key.AccountID)
	return h.forward(w, r, next, rq)
}
