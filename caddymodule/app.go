// Package caddymodule adapts the meter domain to Caddy: the `meter` app
// (global option), the `meter` HTTP handler, and admin API routes.
package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/redisstore"
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
	// Required until an embedded store exists.
	Redis string `json:"redis,omitempty"`

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

	store   meter.Store
	poolKey string
	keys    *keyCache
	budget  *usage.Budget
	logger  *zap.Logger
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
	if a.KeyCacheTTL == 0 {
		a.KeyCacheTTL = caddy.Duration(5 * time.Second)
	}
	if a.StoreTimeout == 0 {
		a.StoreTimeout = caddy.Duration(2 * time.Second)
	}
	if a.CountMemory == 0 {
		a.CountMemory = 256 << 20
	}
	a.budget = usage.NewBudget(a.CountMemory, 0)
	if err := a.Validate(); err != nil {
		return err
	}
	a.poolKey = "redis:" + a.Redis
	val, _, err := stores.LoadOrNew(a.poolKey, func() (caddy.Destructor, error) {
		openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := redisstore.Open(openCtx, a.Redis, redisstore.Options{})
		if err != nil {
			return nil, err
		}
		return storeDestructor{s}, nil
	})
	if err != nil {
		a.poolKey = ""
		return fmt.Errorf("meter: opening store: %w", err)
	}
	a.store = timedStore{val.(storeDestructor).Store}
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("meter: registering metrics: %w", err)
	}
	a.keys = newKeyCache(time.Duration(a.KeyCacheTTL), 100_000)
	return nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	if a.Redis == "" {
		return errors.New("meter: no store configured: add `meter { redis redis://host:6379 }` to the global options")
	}
	if !strings.HasPrefix(a.Redis, "redis://") && !strings.HasPrefix(a.Redis, "rediss://") {
		return fmt.Errorf("meter: redis %q: expected a redis:// or rediss:// URL", a.Redis)
	}
	if a.StoreTimeout < 0 {
		return fmt.Errorf("meter: store_timeout must be positive")
	}
	if a.CountMemory < 0 {
		return fmt.Errorf("meter: count_memory must be positive")
	}
	return nil
}

// Start implements caddy.App; the store is ready after Provision.
func (a *App) Start() error { return nil }

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's use of the store; the pool closes it when
// no config uses it any more.
func (a *App) Cleanup() error {
	if a.poolKey == "" {
		return nil
	}
	_, err := stores.Delete(a.poolKey)
	return err
}

// Store returns the app's store.
func (a *App) Store() meter.Store { return a.store }

// storeCtx bounds one store call on the request path. It does not inherit
// the request's cancellation: a settle must finish even when the client has
// gone.
func (a *App) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(parent), time.Duration(a.StoreTimeout))
}

// lookupKey authenticates an API key secret and finds its account's
// settings, through the cache.
func (a *App) lookupKey(ctx context.Context, secret string) (identity, error) {
	hash := meter.HashKey(secret)
	if id, ok := a.keys.get(hash); ok {
		return id, nil
	}
	sctx, cancel := a.storeCtx(ctx)
	defer cancel()
	k, err := a.store.LookupKey(sctx, hash)
	if err != nil {
		return identity{}, err
	}
	acct, err := a.store.Account(sctx, k.AccountID)
	if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
		return identity{}, meter.Errorf(meter.ECodeInvalidAPIKey, "invalid API key")
	}
	if err != nil {
		return identity{}, err
	}
	id := identity{key: k, settings: acct.Settings, created: acct.CreatedAt}
	a.keys.put(hash, id)
	return id, nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
