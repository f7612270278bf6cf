package caddymodule

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"golang.org/x/time/rate"

	"github.com/creditgate/creditgate/meter"
)

// Defaults of App.ZeroCostRate and App.ZeroCostBurst.
const (
	defaultZeroCostRate  = 10
	defaultZeroCostBurst = 20
)

// zeroCostLimiter bounds the requests that are forwarded at zero cost, per
// account, in this process's memory (token buckets of x/time/rate): they
// reach the upstream without a charge to pay for it. Buckets that are full
// again are dropped now and then, so memory follows the accounts active
// within about burst/rate seconds.
//
// Refused requests (402, 413, 422, 429 quota...) are not limited: they
// never reach the upstream and leave nothing in the store, and a 429
// would tell a client that is out of credits to retry, where its 402
// tells it to stop. A general rate limit in front of meter bounds them.
type zeroCostLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// newZeroCostLimiter returns a limiter, or nil (no limit) for a negative
// rate.
func newZeroCostLimiter(perSecond float64, burst int) *zeroCostLimiter {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = defaultZeroCostRate
	}
	if burst <= 0 {
		burst = defaultZeroCostBurst
	}
	return &zeroCostLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *zeroCostLimiter) bucket(account string, now time.Time) *rate.Limiter {
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
	b := l.buckets[account]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[account] = b
	}
	return b
}

// take takes a token of the account's bucket, or returns
// ECodeRateLimited with the seconds until there is one.
func (l *zeroCostLimiter) take(account string) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	b := l.bucket(account, now)
	if b.AllowN(now, 1) {
		return nil
	}
	wait := (1 - b.TokensAt(now)) / float64(l.limit)
	secs := max(1, int64(math.Ceil(wait)))
	return meter.Errorf(meter.ECodeRateLimited,
		"too many zero-cost requests from this account: at most %s per second",
		strconv.FormatFloat(float64(l.limit), 'f', -1, 64)).With("retry_after", secs)
}

// unmarshalZeroCostRate parses `zero_cost_rate <per_second>|off [<burst>]`.
func (a *App) unmarshalZeroCostRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	if args[0] == "off" {
		if len(args) > 1 {
			return d.Errf("meter: zero_cost_rate off takes no burst")
		}
		a.ZeroCostRate = -1
		return nil
	}
	r, err := strconv.ParseFloat(args[0], 64)
	if err != nil || r <= 0 || math.IsInf(r, 0) {
		return d.Errf("meter: zero_cost_rate %q: expected a positive number of requests per second, or off", args[0])
	}
	a.ZeroCostRate = r
	if len(args) == 2 {
		if a.ZeroCostBurst, err = strconv.Atoi(args[1]); err != nil || a.ZeroCostBurst < 1 {
			return d.Errf("meter: zero_cost_rate burst %q: expected a positive integer", args[1])
		}
	}
	return nil
}
