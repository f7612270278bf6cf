// Package caddymodule adapts the meter domain to Caddy: the `meter` app
// (global option), the `meter` HTTP handler, and admin API routes.
package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/internal/clockctx"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
	"github.com/creditgate/creditgate/meter/lease"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/rollup"
	"github.com/creditgate/creditgate/meter/usage"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `meter` app: it owns the store shared by every metered route
// and by the admin API. Stores are kept in a usage pool keyed by their
// address, so a config reload reuses the open connection pool instead of
// reconnecting.
type App struct {
	// Redis is the URL of the Redis server that holds accounts, keys and
	// the ledger: redis://[:password@]host:port/db or rediss:// for TLS.
	// Without it, an embedded store in DataDir is used: right for one
	// gateway process; several gateways need Redis. In a Caddyfile,
	// `redis off` (e.g. `redis {$CREDITGATE_REDIS:off}` with the variable
	// unset) means no Redis.
	Redis string `json:"redis,omitempty"`

	// RedisCluster lists seed nodes (host:port) of a Redis Cluster, used
	// instead of Redis.
	RedisCluster []string `json:"redis_cluster,omitempty"`

	// RedisSentinel is a Sentinel master name followed by the sentinels'
	// addresses (host:port), used instead of Redis.
	RedisSentinel []string `json:"redis_sentinel,omitempty"`

	// RedisPassword authenticates to the nodes of RedisCluster or
	// RedisSentinel (a Redis URL carries its own). Use a {$ENV} placeholder.
	RedisPassword string `json:"redis_password,omitempty"`

	// RedisTLS connects to RedisCluster or RedisSentinel nodes with TLS.
	RedisTLS bool `json:"redis_tls,omitempty"`

	// RedisPipeline sends the metering scripts of concurrent requests to
	// Redis in shared writes (go-redis's autopipeliner): fewer system calls
	// on both sides under load. Off by default: go-redis marks it
	// experimental. See bench/RESULTS.md.
	RedisPipeline bool `json:"redis_pipeline,omitempty"`

	// RedisBatch is how many concurrent requests' reserve, commit and void
	// calls may share one FCALL (group commit: a lone call goes at once,
	// calls that arrive while earlier ones are out go together). Default
	// 32; 1 sends each alone. See bench/RESULTS.md.
	RedisBatch int `json:"redis_batch,omitempty"`

	// RedisLease carves busy accounts' requests from per-gateway leases
	// and settles them in groups: one Redis round trip per metered request
	// instead of two (see meter/lease and the README's store section).
	// Default: on, from 20 requests a second of an account.
	RedisLease *RedisLease `json:"redis_lease,omitempty"`

	// DataDir is where the embedded store keeps its database (meter.db)
	// when no Redis is configured. Default: "creditgate" in Caddy's data
	// directory.
	DataDir string `json:"data_dir,omitempty"`

	// KeyCacheTTL is how long a looked-up API key is cached in memory by
	// each gateway. Revoking a key takes effect within this time on every
	// instance. Default: 5s. Set to a negative value to disable caching.
	KeyCacheTTL caddy.Duration `json:"key_cache_ttl,omitempty"`

	// StoreTimeout bounds each call to the store on the request path.
	// Default: 2s.
	StoreTimeout caddy.Duration `json:"store_timeout,omitempty"`

	// CountMemory is the memory, in bytes, that reading documents (and
	// JSON bodies priced by content) may use at once across all routes.
	// A request that cannot get its share within a second gets 503
	// server_busy with Retry-After; a document that needs more than all of
	// it gets 422. Default: 256 MiB.
	CountMemory int64 `json:"count_memory,omitempty"`

	// LedgerRetention, when set, trims ledger entries older than this from
	// every account, in the background (balances never depend on trimmed
	// entries). Default: keep everything.
	LedgerRetention caddy.Duration `json:"ledger_retention,omitempty"`

	// RetentionInterval is how often the retention runs. Default: 1h.
	RetentionInterval caddy.Duration `json:"retention_interval,omitempty"`

	// Webhooks receive the webhook events of every account (see the
	// README's Webhooks). Accounts may add their own endpoint in their
	// settings (webhook_url, webhook_secret). Default: none.
	Webhooks []Webhook `json:"webhooks,omitempty"`

	// WebhookInterval is how often the delivery worker looks for due
	// events. Default: 500ms.
	WebhookInterval caddy.Duration `json:"webhook_interval,omitempty"`

	// WebhookTimeout bounds one delivery. Default: 10s.
	WebhookTimeout caddy.Duration `json:"webhook_timeout,omitempty"`

	// WebhookBackoff is the delay before the first retry of a failed
	// delivery; it doubles with each attempt, up to 10m. Default: 1s.
	WebhookBackoff caddy.Duration `json:"webhook_backoff,omitempty"`

	// WebhookMaxAge is how long an event is retried: one that no
	// attempt delivered within this time of its creation is dropped, with
	// an error log and caddy_meter_webhook_deliveries_total{result=
	// "dropped"}. Default: 72h.
	WebhookMaxAge caddy.Duration `json:"webhook_max_age,omitempty"`

	// WebhookScanInterval is how often the worker scans every account's
	// outbox for events the store's index lost (a Redis write lost
	// between the script that recorded an event and the index update).
	// Default: 5m.
	WebhookScanInterval caddy.Duration `json:"webhook_scan_interval,omitempty"`

	// JobSecret signs the tokens with which upstreams report the progress
	// of long-running jobs. Gateways that share a store must share it (use
	// a placeholder: {env.NAME} is read at start, and empty is an error). Default: a secret created on first use in
	// DataDir (or Caddy's data directory), which serves one gateway.
	JobSecret string `json:"job_secret,omitempty"`

	// IdempotencyTTL is how long an Idempotency-Key is bound to its
	// request and its response kept for replays, from the request's
	// charge; settled reservation records are kept as long. Default: 24h;
	// at least 1s.
	IdempotencyTTL caddy.Duration `json:"idempotency_ttl,omitempty"`

	// ZeroCostRate bounds, per account and per gateway process, the
	// requests that are forwarded at zero cost (nothing to charge, so no
	// reservation): this many per second on average, in bursts of
	// ZeroCostBurst; beyond it 429 rate_limited with Retry-After, not
	// forwarded. In memory: every gateway (and every config reload)
	// counts on its own. Refused requests are not limited (see the
	// README). Default 10; negative: no limit.
	ZeroCostRate float64 `json:"zero_cost_rate,omitempty"`

	// ZeroCostBurst is the burst of ZeroCostRate. Default 20.
	ZeroCostBurst int `json:"zero_cost_burst,omitempty"`

	// CostHeader and RemainingHeader name the response headers that carry
	// what a request cost and the credits left, on every path that sets
	// them (charges, refusals, dry runs and quotes, test keys, replays,
	// jobs), for clients that already read a provider's own names (e.g.
	// x-pspdfkit-request-cost). A handler may name its own. Default:
	// X-Request-Cost and X-Remaining-Credits.
	CostHeader      string `json:"cost_header,omitempty"`
	RemainingHeader string `json:"remaining_header,omitempty"`

	// Plans are named sets of account settings (see the README's Plans):
	// an account on a plan has the plan's settings where its own are not
	// set. Plans made through the admin API live in the store; one here
	// hides a stored one of the same name. Default: none.
	Plans []meter.Plan `json:"plans,omitempty"`

	// DefaultPlan is the plan given to accounts created without one.
	// Default: none.
	DefaultPlan string `json:"default_plan,omitempty"`

	money    moneyNames
	jobs     *jobState
	zeroCost *zeroCostLimiter
	plans    *planState
	routes   *routeIndex // meter handlers by route, for meter_quote
	// rates knows every metered route's rate names, to scope account
	// rates to their route (pricing.Scope).
	rates *pricing.Scope

	store   meter.Store
	forget  meter.Forgetter // the store's, if it keeps answers (meter/lease)
	stop    context.CancelFunc
	workers *sync.WaitGroup
	poolKey string
	keys    *keyCache
	budget  *usage.Budget
	logger  *zap.Logger
	// consoles are this config's meter_console handlers, checked at Start.
	consoles []*Console
	// rollup builds the console's store-wide views (console_rollup.go).
	rollup *rollup.Runner
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "meter",
		New: func() caddy.Module { return new(App) },
	}
}

var stores = caddy.NewUsagePool()

type storeDestructor struct{ meter.Store }

func (s storeDestructor) Destruct() error { return s.Close() }

// Provision opens (or reuses) the store.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.money = defaultMoneyNames.with(a.CostHeader, a.RemainingHeader)
	a.jobs = &jobState{}
	a.rates = new(pricing.Scope)
	if a.JobSecret != "" {
		secret := caddy.NewReplacer().ReplaceAll(a.JobSecret, "")
		if len(secret) < 16 {
			return fmt.Errorf("meter: job_secret %q is empty or shorter than 16 bytes once its placeholders are replaced", a.JobSecret)
		}
		a.jobs.secret = []byte(secret)
	}
	if a.KeyCacheTTL == 0 {
		a.KeyCacheTTL = caddy.Duration(5 * time.Second)
	}
	if a.StoreTimeout == 0 {
		a.StoreTimeout = caddy.Duration(2 * time.Second)
	}
	if a.RetentionInterval == 0 {
		a.RetentionInterval = caddy.Duration(time.Hour)
	}
	if a.CountMemory == 0 {
		a.CountMemory = 256 << 20
	}
	for d, def := range map[*caddy.Duration]time.Duration{&a.WebhookInterval: 500 * time.Millisecond,
		&a.WebhookTimeout: 10 * time.Second, &a.WebhookBackoff: time.Second, &a.WebhookScanInterval: 5 * time.Minute,
		&a.WebhookMaxAge: 72 * time.Hour} {
		if *d == 0 {
			*d = caddy.Duration(def)
		}
	}
	if a.IdempotencyTTL == 0 {
		a.IdempotencyTTL = caddy.Duration(24 * time.Hour)
	}
	a.budget = usage.NewBudget(a.CountMemory, 0)
	a.zeroCost = newZeroCostLimiter(a.ZeroCostRate, a.ZeroCostBurst)
	a.plans = newPlanState(a.Plans)
	if err := a.Validate(); err != nil {
		return err
	}
	key, open := a.opener(ctx)
	a.poolKey = key
	val, _, err := stores.LoadOrNew(a.poolKey, open)
	if err != nil {
		a.poolKey = ""
		return fmt.Errorf("meter: opening store: %w", err)
	}
	// Inputs are validated once, before the store (see meter.Validated).
	a.store = meter.Validated(timedStore{val.(storeDestructor).Store})
	a.forget, _ = meter.StoreAs[meter.Forgetter](a.store)
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("meter: registering metrics: %w", err)
	}
	a.keys = newKeyCache(time.Duration(a.KeyCacheTTL), 100_000)
	return nil
}

// opener returns the pool key of the configured store and the function
// that opens it: Redis when configured, else the embedded store.
func (a *App) opener(ctx caddy.Context) (string, func() (caddy.Destructor, error)) {
	if t, ok := a.redisTarget(); ok {
		key, _ := json.Marshal(t)
		if a.RedisPipeline {
			key = append(key, " pipeline"...)
		}
		key = fmt.Appendf(key, " batch %d retain %d", a.RedisBatch, a.IdempotencyTTL)
		lo, leased := a.leasing()
		if leased {
			key = fmt.Appendf(key, " lease %d %d", lo.MinRate, lo.Stall)
		}
		return "redis:" + string(key), func() (caddy.Destructor, error) {
			openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := redisstore.OpenTarget(openCtx, t, redisstore.Options{Pipeline: a.RedisPipeline,
				MaxBatch: a.RedisBatch, Retain: time.Duration(a.IdempotencyTTL)})
			if err != nil {
				return nil, err
			}
			if leased {
				return storeDestructor{lease.New(s, lo)}, nil
			}
			return storeDestructor{s}, nil
		}
	}
	dir := a.DataDir
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "creditgate")
	}
	path := filepath.Join(dir, "meter.db")
	// One database file is opened once: a reload that changes
	// idempotency_ttl keeps the open store's until the next start.
	return "bolt:" + path, func() (caddy.Destructor, error) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded store: data directory %s: %w", dir, err)
		}
		s, err := boltstore.Open(path, boltstore.Options{Retain: time.Duration(a.IdempotencyTTL)})
		if err != nil {
			return nil, fmt.Errorf("embedded store %s: %w", path, err)
		}
		a.logger.Info("using the embedded store; configure `meter { redis ... }` to share credits between gateways", zap.String("path", path))
		return storeDestructor{s}, nil
	}
}

// leasing is whether the Redis store is wrapped in leases (meter/lease),
// and their options: on unless redis_lease is off. Carving stops while a
// group call has been out for 25ms (or half the store timeout, if less)
// with no other store call answered meanwhile: requests are then reserved
// alone and fail within the store timeout, as without leases.
func (a *App) leasing() (lease.Options, bool) {
	l := a.RedisLease
	if l != nil && l.Off {
		return lease.Options{}, false
	}
	o := lease.Options{Stall: min(25*time.Millisecond, time.Duration(a.StoreTimeout)/2)}
	if l != nil {
		o.MinRate = l.MinRate
	}
	return o, true
}

// RedisLease configures meter/lease on a Redis store.
type RedisLease struct {
	// Off turns leases off (they are on for a Redis store by default).
	Off bool `json:"off,omitempty"`
	// MinRate is the requests per second an account must make through
	// this gateway before it gets a lease. Default 20.
	MinRate int `json:"min_rate,omitempty"`
}

// redisTarget is the configured Redis, if any.
func (a *App) redisTarget() (redisstore.Target, bool) {
	t := redisstore.Target{URL: a.Redis, Cluster: a.RedisCluster, Password: a.RedisPassword, TLS: a.RedisTLS}
	if len(a.RedisSentinel) > 0 {
		t.MasterName, t.Sentinels = a.RedisSentinel[0], a.RedisSentinel[1:]
	}
	return t, a.Redis != "" || len(a.RedisCluster) > 0 || len(a.RedisSentinel) > 0
}

// maxRedisBatch bounds redis_batch: a batch runs as one script, during
// which the server serves nobody else.
const maxRedisBatch = 256

// Validate checks the configuration.
func (a *App) Validate() error {
	if err := checkMoneyNames(a.CostHeader, a.RemainingHeader); err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	if l := a.RedisLease; l != nil && !l.Off {
		if _, ok := a.redisTarget(); !ok {
			return fmt.Errorf("meter: redis_lease needs a Redis store (redis, redis_cluster or redis_sentinel)")
		}
		if l.MinRate < 0 {
			return fmt.Errorf("meter: redis_lease min_rate %d is below 0", l.MinRate)
		}
	}
	forms := 0
	for _, set := range []bool{a.Redis != "", len(a.RedisCluster) > 0, len(a.RedisSentinel) > 0} {
		if set {
			forms++
		}
	}
	if forms > 1 {
		return fmt.Errorf("meter: give one of redis, redis_cluster and redis_sentinel")
	}
	if a.RedisBatch < 0 || a.RedisBatch > maxRedisBatch {
		return fmt.Errorf("meter: redis_batch %d is out of range 1-%d", a.RedisBatch, maxRedisBatch)
	}
	if len(a.RedisSentinel) == 1 {
		return fmt.Errorf("meter: redis_sentinel needs the master name and at least one sentinel address")
	}
	if a.Redis != "" && !strings.HasPrefix(a.Redis, "redis://") && !strings.HasPrefix(a.Redis, "rediss://") {
		return fmt.Errorf("meter: redis %q: expected a redis:// or rediss:// URL", a.Redis)
	}
	if a.StoreTimeout < 0 {
		return fmt.Errorf("meter: store_timeout must be positive")
	}
	if a.IdempotencyTTL != 0 && a.IdempotencyTTL < caddy.Duration(time.Second) {
		return fmt.Errorf("meter: idempotency_ttl must be at least 1s")
	}
	if a.ZeroCostBurst < 0 {
		return fmt.Errorf("meter: zero_cost_rate's burst must be positive")
	}
	if a.CountMemory < 0 {
		return fmt.Errorf("meter: count_memory must be positive")
	}
	if a.LedgerRetention < 0 || a.RetentionInterval < 0 {
		return fmt.Errorf("meter: ledger_retention and retention_interval must be positive")
	}
	if a.WebhookInterval < 0 || a.WebhookTimeout < 0 || a.WebhookBackoff < 0 || a.WebhookScanInterval < 0 || a.WebhookMaxAge < 0 {
		return fmt.Errorf("meter: webhook_interval, webhook_timeout, webhook_backoff, webhook_scan_interval and webhook_max_age must be positive")
	}
	for _, w := range a.Webhooks {
		if err := meter.CheckWebhook(w.URL, w.Secret); err != nil {
			return fmt.Errorf("meter: %w", err)
		}
	}
	return a.validatePlans()
}

// Start starts the background work: webhook delivery, and ledger
// retention when configured.
func (a *App) Start() error {
	if err := a.checkConsoles(); err != nil {
		return err
	}
	if err := a.routeIndex().check(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	a.workers = new(sync.WaitGroup)
	w := a.newWebhookWorker()
	a.workers.Go(func() { w.Run(ctx) })
	a.startRollup(ctx)
	if a.LedgerRetention > 0 {
		a.workers.Go(func() { a.retain(ctx, time.Duration(a.LedgerRetention), time.Duration(a.RetentionInterval)) })
	}
	return nil
}

// Stop stops the background work and waits for it. Deliveries in flight
// are cancelled; their events are delivered again later.
func (a *App) Stop() error {
	if a.stop != nil {
		a.stop()
		a.workers.Wait()
	}
	return nil
}

// Cleanup releases this config's use of the store; the pool closes it when
// no config uses it any more.
func (a *App) Cleanup() error {
	if a.poolKey == "" {
		return nil
	}
	_, err := stores.Delete(a.poolKey)
	return err
}

// retain trims every account's ledger to the retention, now and then
// every interval, until ctx ends. With several gateways each trims; the
// trims are idempotent.
func (a *App) retain(ctx context.Context, retention, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.trimAll(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			a.logger.Error("ledger retention", zap.Error(err))
		} else if n > 0 {
			a.logger.Info("ledger retention", zap.Int64("entries_removed", n), zap.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trimAll trims every account's ledger entries older than before.
func (a *App) trimAll(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	after := ""
	for {
		ids, err := a.store.ListAccounts(ctx, after, 500)
		if err != nil {
			return total, err
		}
		for _, id := range ids {
			n, err := a.store.TrimLedger(ctx, id, before)
			if err != nil && meter.ErrorCode(err) != meter.ECodeAccountNotFound {
				return total, err
			}
			total += n
		}
		if len(ids) < 500 {
			return total, nil
		}
		after = ids[len(ids)-1]
	}
}

// Store returns the app's store.
func (a *App) Store() meter.Store { return a.store }

// storeCtx bounds one store call on the request path. It does not inherit
// the request's cancellation: a settle must finish even when the client has
// gone.
func (a *App) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(parent), time.Duration(a.StoreTimeout))
}

// polledStoreCtx is storeCtx for a call that mostly does not wait: a
// reservation carved from a lease is made in memory. Its deadline is a
// polled clock (clockctx); the timer that context.WithTimeout makes on
// every request is made only when the call waits on Done (a store round
// trip). Stop it as storeCtx's cancel.
func (a *App) polledStoreCtx(parent context.Context) *clockctx.Context {
	return clockctx.WithTimeout(context.WithoutCancel(parent), time.Duration(a.StoreTimeout))
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// jobState is the app's job token secret, loaded once, and the rates of
// its job routes.
type jobState struct {
	secret  []byte // job_secret, resolved
	keyOnce sync.Once
	key     []byte
	keyErr  error
	// routes are the job routes (their name in App.rates) and per-page
	// rates, in config order: the defaults an account profile shows, the
	// first route to name a class winning.
	mu     sync.Mutex
	routes []jobRoute
}

type jobRoute struct {
	scope string
	rates map[string]meter.Credits
}

// addJobRates records a job route's default rates for account profiles.
func (a *App) addJobRates(scope string, rates map[string]meter.Credits) {
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	a.jobs.routes = append(a.jobs.routes, jobRoute{scope, rates})
}

// profileRates are the job routes' rates with an account's overrides, as
// each route applies them (scoped: see pricing.Scope).
func (a *App) profileRates(overrides map[string]meter.Credits) map[string]meter.Credits {
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	out := map[string]meter.Credits{}
	for _, jr := range a.jobs.routes {
		own := a.rates.For(overrides, jr.scope)
		for c, r := range jr.rates {
			if _, done := out[c]; done {
				continue
			}
			if o, ok := own[c]; ok {
				r = o
			}
			out[c] = r
		}
	}
	return out
}
