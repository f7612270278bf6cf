package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v82"
)

// stripeEvents counts Stripe events by type and result. The type label
// is bounded: the types the endpoint acts on, "other" for the rest, ""
// for a refused request (no verified type).
var stripeEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "meter", Name: "stripe_events_total",
	Help: "Stripe webhook events by type (other: types not acted on) and result: applied, replayed, held (for review), unpaid, ignored, refused (signature), failed (store; Stripe retries).",
}, []string{"type", "result"})

func registerStripeMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	if err := registry.Register(stripeEvents); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

func observeStripe(typ, res string) {
	switch stripe.EventType(typ) {
	case "", stripe.EventTypeCheckoutSessionCompleted, stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded,
		stripe.EventTypeChargeRefunded:
	default:
		typ = "other"
	}
	stripeEvents.WithLabelValues(typ, res).Inc()
}
