package caddymodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// Request outcomes, the "outcome" label of caddy_meter_requests_total.
const (
	outcomeCharged  = "charged"  // 2xx, committed
	outcomeVoided   = "voided"   // forwarded, upstream failed or client left
	outcomeRefused  = "refused"  // answered by the gateway with an error
	outcomeReplayed = "replayed" // Idempotency-Key repeat, not charged
	outcomeTest     = "test"     // test key, never charged
	outcomeDryRun   = "dry_run"
	outcomeFree     = "free"        // zero cost: forwarded without a reservation
	outcomeJob      = "job_started" // a job submission accepted: its estimate held
)

// meterMetrics are process-wide collectors, registered with each config's
// registry (Caddy's pattern: the registry outlives nothing, collectors do).
// No label carries an account or a key: cardinality stays bounded.
var meterMetrics = struct {
	once      sync.Once
	requests  *prometheus.CounterVec
	debited   prometheus.Counter
	reserved  prometheus.Counter
	pages     *prometheus.CounterVec
	classes   *prometheus.CounterVec
	countTime prometheus.Histogram
	storeTime *prometheus.HistogramVec
	webhooks  *prometheus.CounterVec
}{}

func initMetrics(registry *prometheus.Registry) error {
	const ns, sub = "caddy", "meter"
	m := &meterMetrics
	m.once.Do(func() {
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Metered requests by outcome and error code (empty when none).",
		}, []string{"outcome", "code"})
		m.debited = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "credits_debited_total",
			Help: "Credits debited from accounts by metered requests.",
		})
		m.reserved = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "credits_reserved_total",
			Help: "Credits reserved for metered requests (debited or released later).",
		})
		m.pages = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pages_total",
			Help: "Pages counted in request bodies, by file kind.",
		}, []string{"kind"})
		m.classes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "class_pages_total",
			Help: "Pages counted by page class, on routes that price page classes.",
		}, []string{"class"})
		m.countTime = prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "measure_duration_seconds",
			Help:    "Time spent measuring a request body (spooling, page counting).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		})
		m.storeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "store_duration_seconds",
			Help:    "Latency of store operations on the request path.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10),
		}, []string{"op"})
		m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts by event type and result: delivered, failed (retried), dropped (given up after webhook_max_age).",
		}, []string{"type", "result"})
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.debited, m.reserved, m.pages, m.classes, m.countTime, m.storeTime, m.webhooks} {
		if err := registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func observeOutcome(outcome string, err error) {
	if err == nil {
		if c, ok := outcomeCounters[outcome]; ok {
			c.get(func() prometheus.Counter { return meterMetrics.requests.WithLabelValues(outcome, "") }).Inc()
			return
		}
	}
	code := ""
	if err != nil {
		code = meter.ErrorCode(err)
		refusalTally.Add(code) // the console's store-wide refusals
	}
	meterMetrics.requests.WithLabelValues(outcome, code).Inc()
}

func observeStore(op *child[prometheus.Observer], name string, start time.Time) {
	op.get(func() prometheus.Observer { return meterMetrics.storeTime.WithLabelValues(name) }).
		Observe(time.Since(start).Seconds())
}

// observePages counts the pages of one file by its kind.
func observePages(kind string, pages int) {
	c, ok := pagesCounters[kind]
	if !ok {
		meterMetrics.pages.WithLabelValues(kind).Add(float64(pages))
		return
	}
	c.get(func() prometheus.Counter { return meterMetrics.pages.WithLabelValues(kind) }).Add(float64(pages))
}

// child caches the child of a metric vector for label values known in
// advance: WithLabelValues hashes the values and looks them up under a
// lock, on every request. It is created on first use, as WithLabelValues
// would, so /metrics shows only series that happened. The vectors live as
// long as the process (initMetrics), and so do their children.
type child[T any] struct {
	once sync.Once
	m    T
}

func (c *child[T]) get(create func() T) T {
	c.once.Do(func() { c.m = create() })
	return c.m
}

// The children of the request path's label values with no error code.
// Read-only maps: safe for concurrent use.
var (
	outcomeCounters = map[string]*child[prometheus.Counter]{
		outcomeCharged: {}, outcomeVoided: {}, outcomeRefused: {}, outcomeReplayed: {},
		outcomeTest: {}, outcomeDryRun: {}, outcomeJob: {},
	}
	pagesCounters = map[string]*child[prometheus.Counter]{
		usage.KindPDF: {}, usage.KindImage: {}, usage.KindOther: {},
	}
	storeLookupKey, storeAccount, storeReserve, storeCommit, storeVoid child[prometheus.Observer]
)

func creditsFloat(c meter.Credits) float64 { return float64(c) / meter.Scale }

// timedStore records the latency of the store calls on the request path.
type timedStore struct{ meter.Store }

func (s timedStore) LookupKey(ctx context.Context, hash string) (meter.Key, error) {
	defer observeStore(&storeLookupKey, "lookup_key", time.Now())
	return s.Store.LookupKey(ctx, hash)
}

func (s timedStore) Account(ctx context.Context, id string) (meter.Account, error) {
	defer observeStore(&storeAccount, "account", time.Now())
	return s.Store.Account(ctx, id)
}

func (s timedStore) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	defer observeStore(&storeReserve, "reserve", time.Now())
	return s.Store.Reserve(ctx, r)
}

func (s timedStore) Commit(ctx context.Context, c meter.CommitRequest) (meter.Settlement, error) {
	defer observeStore(&storeCommit, "commit", time.Now())
	return s.Store.Commit(ctx, c)
}

func (s timedStore) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	defer observeStore(&storeVoid, "void", time.Now())
	return s.Store.Void(ctx, accountID, reservationID)
}
