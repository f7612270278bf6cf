package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(Stripe{})
	httpcaddyfile.RegisterHandlerDirective("meter_stripe", parseDirective[Stripe])
	httpcaddyfile.RegisterDirectiveOrder("meter_stripe", httpcaddyfile.Before, "reverse_proxy")
}

// Stripe receives Stripe's webhook events on a public site and turns paid
// Checkout sessions into purchases and refunds into reversals (see the
// README, "Stripe Checkout top-ups"). It answers every request itself and
// never calls next.
type Stripe struct {
	// Secret is the webhook endpoint's signing secret (whsec_...), usually
	// a placeholder: {env.STRIPE_WEBHOOK_SECRET}. Required.
	Secret string `json:"secret,omitempty"`
	// Tolerance is how old a signature's timestamp may be before the event
	// is refused as a replay. Default 5m (Stripe's own).
	Tolerance caddy.Duration `json:"tolerance,omitempty"`
	// Account lists where a Checkout session names its account, tried in
	// order: "client_reference_id" or "metadata.<key>". Default
	// ["client_reference_id"].
	Account []string `json:"account,omitempty"`
	// CreditsMetadata is the session metadata key that holds the credits
	// bought (a decimal number, "500" or "12.5"); a session without it
	// falls back to Amounts. Default "" (not read).
	CreditsMetadata string `json:"credits_metadata,omitempty"`
	// Amounts maps what a session paid (amount_total in the currency's
	// smallest unit, and its currency) to credits. Default none.
	Amounts []StripeAmount `json:"amounts,omitempty"`

	secret string
	app    *App
	store  meter.PaymentStore
	logger *zap.Logger
}

// StripeAmount is one line of the amount-to-credits table.
type StripeAmount struct {
	// Currency is the ISO code, lower case as Stripe sends it ("usd").
	Currency string `json:"currency"`
	// Amount is amount_total in the smallest unit (1000 is $10.00).
	Amount int64 `json:"amount"`
	// Credits is what that amount buys.
	Credits meter.Credits `json:"credits"`
}

// CaddyModule returns the Caddy module information.
func (Stripe) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter_stripe",
		New: func() caddy.Module { return new(Stripe) },
	}
}

// stripeMaxBody bounds an event's body; Stripe's are a few kilobytes.
const stripeMaxBody = 1 << 20

// Provision resolves the secret's placeholders and finds the store.
func (s *Stripe) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	s.secret = caddy.NewReplacer().ReplaceKnown(s.Secret, "")
	if s.Tolerance == 0 {
		s.Tolerance = caddy.Duration(webhook.DefaultTolerance)
	}
	if len(s.Account) == 0 {
		s.Account = []string{"client_reference_id"}
	}
	if err := s.Validate(); err != nil {
		return err
	}
	app, err := ctx.App("meter")
	if err != nil {
		return err
	}
	s.app = app.(*App)
	ps, ok := paymentStore(s.app.store)
	if !ok {
		return fmt.Errorf("meter_stripe: the store does not keep payments")
	}
	s.store = ps
	return registerStripeMetrics(ctx.GetMetricsRegistry())
}

// Validate checks the configuration at load time.
func (s *Stripe) Validate() error {
	if strings.TrimSpace(s.secret) == "" {
		return fmt.Errorf("meter_stripe: secret is empty (is the environment variable of %q set?)", s.Secret)
	}
	if s.Tolerance < 0 {
		return fmt.Errorf("meter_stripe: tolerance must be positive")
	}
	for _, src := range s.Account {
		if err := checkAccountSource(src); err != nil {
			return fmt.Errorf("meter_stripe: %v", err)
		}
	}
	seen := map[string]bool{}
	for _, a := range s.Amounts {
		k := fmt.Sprintf("%s %d", a.Currency, a.Amount)
		switch {
		case seen[k]:
			return fmt.Errorf("meter_stripe: amount %s given twice", k)
		case a.Currency == "" || a.Currency != strings.ToLower(a.Currency):
			return fmt.Errorf("meter_stripe: amount %s: the currency is a lower-case ISO code", k)
		case a.Amount <= 0 || a.Credits <= 0 || a.Credits > meter.MaxCredits:
			return fmt.Errorf("meter_stripe: amount %s: amount and credits must be positive", k)
		}
		seen[k] = true
	}
	return nil
}

func checkAccountSource(src string) error {
	if src == "client_reference_id" {
		return nil
	}
	if k, ok := strings.CutPrefix(src, "metadata."); ok && k != "" {
		return nil
	}
	return fmt.Errorf("account source %q: use client_reference_id or metadata.<key>", src)
}

// paymentStore finds the meter.PaymentStore behind the app's store
// wrappers, and puts the input checks in front of it (the stores leave
// them to meter.ValidatedPayments).
func paymentStore(st meter.Store) (meter.PaymentStore, bool) {
	ps, ok := meter.StoreAs[meter.PaymentStore](st)
	if !ok {
		return nil, false
	}
	return meter.ValidatedPayments(ps), true
}

// Stripe event outcomes, the "result" label of
// caddy_meter_stripe_events_total and the "result" of the answer.
const (
	stripeApplied  = "applied"  // credits added or taken back
	stripeReplayed = "replayed" // applied before: nothing more
	stripeHeld     = "held"     // kept for review
	stripeUnpaid   = "unpaid"   // a session not paid (yet)
	stripeIgnored  = "ignored"  // a type this endpoint does not act on
	stripeRefused  = "refused"  // bad signature, old timestamp, bad body
	stripeFailed   = "failed"   // the store failed: Stripe retries
)

// ServeHTTP verifies one event and applies it.
func (s *Stripe) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	stripMeterHeaders(r.Header)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, meter.Errorf(meter.ECodeNotFound, "%s is not allowed here: use POST", r.Method))
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, stripeMaxBody))
	if err != nil {
		observeStripe("", stripeRefused)
		writeError(w, meter.Errorf(meter.ECodeBodyTooLarge, "an event is at most %d bytes", stripeMaxBody))
		return nil
	}
	// The endpoint's API version is chosen in Stripe's dashboard and need
	// not be stripe-go's: only fields every version since 2020 carries
	// alike are read (see stripeSession, stripeRefund), so a mismatch must
	// not refuse events Stripe would then retry for days.
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.secret,
		webhook.ConstructEventOptions{Tolerance: time.Duration(s.Tolerance), IgnoreAPIVersionMismatch: true})
	if err != nil {
		observeStripe("", stripeRefused)
		writeError(w, meter.Errorf(meter.ECodeInvalidSignature, "%s", signatureMessage(err)))
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := s.handle(ctx, ev)
	typ := string(ev.Type)
	if err != nil {
		observeStripe(typ, stripeFailed)
		s.logger.Error("stripe event not applied", zap.String("event", ev.ID), zap.String("type", typ), zap.Error(err))
		writeError(w, err)
		return nil
	}
	observeStripe(typ, out["result"].(string))
	out["received"], out["event"] = true, ev.ID
	writeJSON(w, http.StatusOK, out)
	return nil
}

// signatureMessage says why an event was refused, without the secret.
func signatureMessage(err error) string {
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return "the Stripe-Signature timestamp is outside the tolerance"
	case errors.Is(err, webhook.ErrNotSigned):
		return "no Stripe-Signature header"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "the Stripe-Signature header is malformed"
	case errors.Is(err, webhook.ErrNoValidSignature):
		return "no valid signature for this endpoint's secret"
	}
	return "the event is not valid JSON"
}

// handle applies a verified event; an error is the store's (Stripe
// retries the event).
func (s *Stripe) handle(ctx context.Context, ev stripe.Event) (map[string]any, error) {
	switch ev.Type {
	case stripe.EventTypeCheckoutSessionCompleted, stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil || cs.ID == "" {
			return result(stripeIgnored, "reason", "the event carries no Checkout session"), nil
		}
		return s.checkout(ctx, ev, &cs)
	case stripe.EventTypeChargeRefunded:
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil || ch.ID == "" {
			return result(stripeIgnored, "reason", "the event carries no charge"), nil
		}
		return s.refund(ctx, ev, &ch)
	}
	return result(stripeIgnored), nil
}

func result(res string, kv ...any) map[string]any {
	m := map[string]any{"result": res}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Stripe)(nil)
	_ caddy.Validator             = (*Stripe)(nil)
	_ caddyhttp.MiddlewareHandler = (*Stripe)(nil)
)
