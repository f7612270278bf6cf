package caddymodule

import (
	"os"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/webhook"
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

// newWebhookWorker configures the delivery worker (meter/webhook) from
// the app's options.
func (a *App) newWebhookWorker() *webhook.Worker {
	host, _ := os.Hostname()
	eps := make([]webhook.Endpoint, len(a.Webhooks))
	for i, w := range a.Webhooks {
		eps[i] = webhook.Endpoint{URL: w.URL, Secret: w.Secret}
	}
	return webhook.NewWorker(webhook.Config{
		Store:     a.store,
		Endpoints: eps,
		Owner:     host + "/" + meter.NewID("gw"),
		Every:     time.Duration(a.WebhookInterval),
		Scan:      time.Duration(a.WebhookScanInterval),
		Timeout:   time.Duration(a.WebhookTimeout),
		Backoff:   time.Duration(a.WebhookBackoff),
		MaxAge:    time.Duration(a.WebhookMaxAge),
		Logger:    a.logger.Named("webhooks"),
		Observe: func(typ, result string) {
			meterMetrics.webhooks.WithLabelValues(typ, result).Inc()
		},
	})
}
