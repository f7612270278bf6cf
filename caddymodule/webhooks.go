package caddymodule

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// Webhook is an endpoint that receives the events of every account.
type Webhook struct {
	// URL receives each event as a signed JSON POST (http or https).
	URL string `json:"url"`
	// Secret signs the deliveries: "whsec_" and the base64 of the key, as
	// in the Standard Webhooks specification. Required. Use a {$ENV}
	// placeholder.
	Secret string `json:"secret"`
}

// maxBackoff caps the delay between two delivery attempts of an event.
const maxBackoff = 10 * time.Minute

// claimBatch is how many events one claim takes; they are delivered at
// once.
const claimBatch = 20

// checkWebhook checks an endpoint and its secret.
func checkWebhook(rawURL, secret string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q: expected an http:// or https:// URL", rawURL)
	}
	if _, err := webhookKey(secret); err != nil {
		return err
	}
	return nil
}

// webhookKey decodes a "whsec_<base64>" secret.
func webhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 16 {
		return nil, fmt.Errorf("webhook secret: expected whsec_ and the base64 of at least 16 random bytes")
	}
	return key, nil
}

// signWebhook is the Standard Webhooks signature of a delivery:
// "v1," and the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func signWebhook(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// webhookWorker delivers the store's webhook events: it claims due ones
// every interval, POSTs each to the gateway's webhooks and its account's
// own, acknowledges it once every endpoint answered 2xx, and otherwise
// puts it back with an exponential backoff. Delivery is at least once; the
// webhook-id header deduplicates.
type webhookWorker struct {
	store    meter.Store
	global   []Webhook
	client   *http.Client
	owner    string
	every    time.Duration
	scan     time.Duration
	backoff  time.Duration
	maxAge   time.Duration
	lease    time.Duration
	logger   *zap.Logger
	mu       sync.Mutex
	received map[string]bool // event id + endpoint: delivered, event not yet acknowledged
}

func (a *App) newWebhookWorker() *webhookWorker {
	timeout := time.Duration(a.WebhookTimeout)
	host, _ := os.Hostname()
	return &webhookWorker{
		store:  a.store,
		global: a.Webhooks,
		client: &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is not a delivery
		}},
		owner:   host + "/" + meter.NewID("gw"),
		every:   time.Duration(a.WebhookInterval),
		scan:    time.Duration(a.WebhookScanInterval),
		backoff: time.Duration(a.WebhookBackoff),
		maxAge:  time.Duration(a.WebhookMaxAge),
		// Long enough for every endpoint of an event to time out.
		lease:    timeout*time.Duration(len(a.Webhooks)+1) + 30*time.Second,
		logger:   a.logger.Named("webhooks"),
		received: map[string]bool{},
	}
}

// run delivers until ctx ends. It rebuilds the store's index of pending
// outboxes at start and every scan interval (see meter.Store.ReindexEvents).
func (w *webhookWorker) run(ctx context.Context) {
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	var lastScan time.Time
	for {
		if time.Since(lastScan) >= w.scan {
			if _, err := w.store.ReindexEvents(ctx); err != nil && ctx.Err() == nil {
				w.logger.Error("reindexing webhook events", zap.Error(err))
			} else {
				lastScan = time.Now()
			}
		}
		for w.deliverDue(ctx) == claimBatch {
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// deliverDue claims a batch of due events, delivers them at once and
// returns how many it claimed.
func (w *webhookWorker) deliverDue(ctx context.Context) int {
	evs, err := w.store.ClaimEvents(ctx, w.owner, w.lease, claimBatch)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Error("claiming webhook events", zap.Error(err))
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.deliver(ctx, e)
		}()
	}
	wg.Wait()
	return len(evs)
}

// deliver sends one event to its endpoints, then acknowledges it or puts
// it back. An event with no endpoint is dropped.
func (w *webhookWorker) deliver(ctx context.Context, e meter.Event) {
	// Acknowledgements outlive a stop: a delivered event must not be sent
	// again for want of one.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	targets := append([]Webhook(nil), w.global...)
	acct, err := w.store.Account(sctx, e.AccountID)
	switch {
	case err == nil && acct.Settings.WebhookURL != "":
		targets = append(targets, Webhook{URL: acct.Settings.WebhookURL, Secret: acct.Settings.WebhookSecret})
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
			w.logger.Warn("webhook delivery failed", zap.String("event", e.WebhookID()), zap.String("type", e.Type),
				zap.String("url", t.URL), zap.Int("attempt", e.Attempts+1), zap.Error(err))
			continue
		}
		w.seen(k, true)
	}
	if failed != nil {
		meterMetrics.webhooks.WithLabelValues(e.Type, "failed").Inc()
		if age := time.Since(e.CreatedAt); age > w.maxAge {
			// An endpoint that has failed this long is not coming back for
			// this event: stop retrying, so that outboxes stay bounded.
			w.logger.Error("giving up on a webhook event", zap.String("event", e.WebhookID()), zap.String("type", e.Type),
				zap.String("account", e.AccountID), zap.Duration("age", age), zap.Int("attempts", e.Attempts+1), zap.Error(failed))
			meterMetrics.webhooks.WithLabelValues(e.Type, "dropped").Inc()
			w.ack(sctx, e, targets)
			return
		}
		w.retry(sctx, e, nil)
		return
	}
	meterMetrics.webhooks.WithLabelValues(e.Type, "delivered").Inc()
	w.ack(sctx, e, targets)
}

// ack removes a delivered (or abandoned) event from its outbox.
func (w *webhookWorker) ack(sctx context.Context, e meter.Event, targets []Webhook) {
	if err := w.store.AckEvent(sctx, e.AccountID, e.ID); err != nil {
		w.logger.Error("acknowledging webhook event", zap.String("event", e.WebhookID()), zap.Error(err))
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
func (w *webhookWorker) seen(k string, mark bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark {
		w.received[k] = true
	}
	return w.received[k]
}

// retry puts an event back after the backoff of its attempt: backoff,
// doubled each attempt, at most maxBackoff.
func (w *webhookWorker) retry(ctx context.Context, e meter.Event, cause error) {
	if cause != nil {
		w.logger.Error("preparing webhook event", zap.String("event", e.WebhookID()), zap.Error(cause))
	}
	delay := maxBackoff
	if e.Attempts < 30 {
		delay = min(maxBackoff, w.backoff<<e.Attempts)
	}
	if err := w.store.RetryEvent(ctx, e.AccountID, e.ID, delay); err != nil {
		w.logger.Error("rescheduling webhook event", zap.String("event", e.WebhookID()), zap.Error(err))
	}
}

// post sends one signed delivery; any answer but 2xx is a failure.
func (w *webhookWorker) post(ctx context.Context, t Webhook, id string, body []byte) error {
	key, err := webhookKey(t.Secret)
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
	req.Header.Set("webhook-signature", signWebhook(key, id, ts, body))
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
