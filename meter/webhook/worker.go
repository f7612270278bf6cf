package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// MaxBackoff caps the delay between two delivery attempts of an event.
const MaxBackoff = 10 * time.Minute

// ClaimBatch is how many events one claim takes; they are delivered at
// once.
const ClaimBatch = 20

// Store is what the worker needs of the store: the outbox, and the
// account's own endpoint.
type Store interface {
	meter.EventStore
	meter.AccountReader
}

// Config configures a Worker. Every duration must be positive.
type Config struct {
	Store     Store
	Endpoints []Endpoint // the gateway's, for every account's events
	// Owner names this worker in the store's leases (unique per process).
	Owner string
	// Every is how often due events are claimed; Scan how often the
	// store's pending index is rebuilt (see meter.EventStore.ReindexEvents).
	Every, Scan time.Duration
	// Timeout bounds one delivery; Backoff is the first retry's delay,
	// doubled each attempt up to MaxBackoff; MaxAge is how long an event
	// is retried before it is dropped.
	Timeout, Backoff, MaxAge time.Duration
	Logger                   *zap.Logger
	// Observe, if set, counts each delivery's result: "delivered",
	// "failed" or "dropped", by event type.
	Observe func(eventType, result string)
}

// Worker delivers the store's webhook events: it claims due ones every
// interval, POSTs each to the gateway's endpoints and its account's own,
// acknowledges it once every endpoint answered 2xx, and otherwise puts it
// back with an exponential backoff. Delivery is at least once; the
// webhook-id header deduplicates.
type Worker struct {
	cfg      Config
	client   *http.Client
	lease    time.Duration
	mu       sync.Mutex
	received map[string]bool // event id + endpoint: delivered, event not yet acknowledged
}

// NewWorker returns a worker; Run starts it.
func NewWorker(cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string) {}
	}
	return &Worker{
		cfg: cfg,
		client: &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is not a delivery
		}},
		// Long enough for every endpoint of an event to time out.
		lease:    cfg.Timeout*time.Duration(len(cfg.Endpoints)+1) + 30*time.Second,
		received: map[string]bool{},
	}
}

// Run delivers until ctx ends. It rebuilds the store's index of pending
// outboxes at start and every scan interval.
func (w *Worker) Run(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Every)
	defer tick.Stop()
	var lastScan time.Time
	for {
		if time.Since(lastScan) >= w.cfg.Scan {
			if _, err := w.cfg.Store.ReindexEvents(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Error("reindexing webhook events", zap.Error(err))
			} else {
				lastScan = time.Now()
			}
		}
		for w.DeliverDue(ctx) == ClaimBatch {
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// DeliverDue claims a batch of due events, delivers them at once and
// returns how many it claimed.
func (w *Worker) DeliverDue(ctx context.Context) int {
	evs, err := w.cfg.Store.ClaimEvents(ctx, w.cfg.Owner, w.lease, ClaimBatch)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Error("claiming webhook events", zap.Error(err))
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Go(func() { w.deliver(ctx, e) })
	}
	wg.Wait()
	return len(evs)
}

// deliver sends one event to its endpoints, then acknowledges it or puts
// it back. An event with no endpoint is dropped.
func (w *Worker) deliver(ctx context.Context, e meter.Event) {
	// Acknowledgements outlive a stop: a delivered event must not be sent
	// again for want of one.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	targets := append([]Endpoint(nil), w.cfg.Endpoints...)
	acct, err := w.cfg.Store.Account(sctx, e.AccountID)
	switch {
	case err == nil && acct.Settings.WebhookURL != "":
		targets = append(targets, Endpoint{URL: acct.Settings.WebhookURL, Secret: acct.Settings.WebhookSecret})
	case err != nil && meter.ErrorCode(err) != meter.ECodeAccountNotFound:
		w.retry(sctx, e, err)
		return
	}
	body, err := e.Payload()
	if err != nil {
		w.retry(sctx, e, err)
		return
	}
	var failed error
	for _, t := range targets {
		k := e.WebhookID() + "\x00" + t.URL
		if w.seen(k, false) {
			continue
		}
		if err := w.post(ctx, t, e.WebhookID(), body); err != nil {
			failed = err
			w.cfg.Logger.Warn("webhook delivery failed", zap.String("event", e.WebhookID()), zap.String("type", e.Type),
				zap.String("url", t.URL), zap.Int("attempt", e.Attempts+1), zap.Error(err))
			continue
		}
		w.seen(k, true)
	}
	if failed != nil {
		w.cfg.Observe(e.Type, "failed")
		if age := time.Since(e.CreatedAt); age > w.cfg.MaxAge {
			// An endpoint that has failed this long is not coming back for
			// this event: stop retrying, so that outboxes stay bounded.
			w.cfg.Logger.Error("giving up on a webhook event", zap.String("event", e.WebhookID()), zap.String("type", e.Type),
				zap.String("account", e.AccountID), zap.Duration("age", age), zap.Int("attempts", e.Attempts+1), zap.Error(failed))
			w.cfg.Observe(e.Type, "dropped")
			w.ack(sctx, e, targets)
			return
		}
		w.retry(sctx, e, nil)
		return
	}
	w.cfg.Observe(e.Type, "delivered")
	w.ack(sctx, e, targets)
}

// ack removes a delivered (or abandoned) event from its outbox.
func (w *Worker) ack(sctx context.Context, e meter.Event, targets []Endpoint) {
	if err := w.cfg.Store.AckEvent(sctx, e.AccountID, e.ID); err != nil {
		w.cfg.Logger.Error("acknowledging webhook event", zap.String("event", e.WebhookID()), zap.Error(err))
		return // the lease ends and the event is delivered again
	}
	w.mu.Lock()
	for _, t := range targets {
		delete(w.received, e.WebhookID()+"\x00"+t.URL)
	}
	w.mu.Unlock()
}

// seen reports whether endpoint key k already has the event, after
// marking it so when mark is set.
func (w *Worker) seen(k string, mark bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark {
		w.received[k] = true
	}
	return w.received[k]
}

// retry puts an event back after the backoff of its attempt: backoff,
// doubled each attempt, at most MaxBackoff.
func (w *Worker) retry(ctx context.Context, e meter.Event, cause error) {
	if cause != nil {
		w.cfg.Logger.Error("preparing webhook event", zap.String("event", e.WebhookID()), zap.Error(cause))
	}
	delay := MaxBackoff
	if e.Attempts < 30 {
		delay = min(MaxBackoff, w.cfg.Backoff<<e.Attempts)
	}
	if err := w.cfg.Store.RetryEvent(ctx, e.AccountID, e.ID, delay); err != nil {
		w.cfg.Logger.Error("rescheduling webhook event", zap.String("event", e.WebhookID()), zap.Error(err))
	}
}

// post sends one signed delivery; any answer but 2xx is a failure.
func (w *Worker) post(ctx context.Context, t Endpoint, id string, body []byte) error {
	key, err := meter.WebhookKey(t.Secret)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "creditgate-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(key, id, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
