package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// The steps of Handler.ServeHTTP. Each one starts and ends its own span
// and updates its own metrics, so ServeHTTP only names them.

// newRequest starts the metering state of r. Every X-Meter-* header the
// client sent goes first: the upstream trusts them.
func (h *Handler) newRequest(r *http.Request) *request {
	rq := &request{h: h, r: r, route: h.Route, dry: isDryRun(r), reqID: requestID(r), traced: traced(r.Context())}
	stripMeterHeaders(r.Header)
	if rq.route == "" {
		rq.route = r.URL.Path
	}
	return rq
}

// authenticate identifies the caller by its API key (step 1) and refuses
// a disabled account.
func (h *Handler) authenticate(rq *request) (identity, error) {
	ctx, span := startSpan(rq.r.Context(), rq.traced, spanAuthenticate, nil)
	id, err := h.auth.identify(ctx, rq.r)
	endSpan(span, err)
	if err != nil {
		return id, err
	}
	rq.key = id.key
	return id, id.enabled()
}

// measure reads and measures the body (step 2) and refuses more
// pages than the route accepts. The body, if read, is closed by the
// caller when the request ends.
func (h *Handler) measure(rq *request, id identity) (*usage.Body, error) {
	_, span := startSpan(rq.r.Context(), rq.traced, spanMeasure, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrAccount.String(id.key.AccountID), attrRoute.String(rq.route)}
	})
	start := time.Now()
	body, err := h.measureBody(rq.r, &rq.in)
	meterMetrics.countTime.Observe(time.Since(start).Seconds())
	if span.IsRecording() {
		span.SetAttributes(attrPages.Int(rq.in.Usage.Pages))
	}
	endSpan(span, err)
	if err != nil {
		if rq.r.Context().Err() != nil {
			// The client went away while we read its body: nobody to answer.
			return body, toCaddy{rq.r.Context().Err()}
		}
		return body, err
	}
	for _, f := range rq.in.Usage.Files {
		if f.Pages > 0 {
			observePages(f.Kind, f.Pages)
		}
	}
	if n := int64(rq.in.Usage.Pages); n > h.MaxPages {
		return body, meter.Errorf(meter.ECodeTooManyPages, "the request has %d pages, more than the %d this route accepts", n, h.MaxPages).
			With("pages_at_least", n).With("max_pages", h.MaxPages)
	}
	return body, nil
}

// price turns the measure into a quote (step 3), with the account's own
// rates, and refuses more pages than the account's limit.
func (h *Handler) price(rq *request, id identity) (err error) {
	_, span := startSpan(rq.r.Context(), rq.traced, spanPrice, nil)
	rq.in.Rates = h.app.rates.For(id.settings.Rates, h.scope)
	// Parse a JSON body once: Quote now and Final at settle reuse it.
	if rq.in, err = h.rules.Prepare(rq.in); err == nil {
		rq.quote, err = h.rules.Quote(rq.in)
	}
	if span.IsRecording() {
		span.SetAttributes(attrCost.String(rq.quote.Total.String()))
	}
	endSpan(span, err)
	for _, l := range rq.quote.Lines {
		if l.PageClass && l.Units > 0 {
			meterMetrics.classes.WithLabelValues(l.Name).Add(float64(l.Units))
		}
	}
	if err != nil {
		return err
	}
	if limit := id.settings.PageLimit; limit > 0 && rq.in.Usage.Pages > limit {
		return meter.Errorf(meter.ECodePageLimitExceeded,
			"the request has %d pages; this account's limit is %d pages per request", rq.in.Usage.Pages, limit).
			With("pages", rq.in.Usage.Pages).With("page_limit", limit)
	}
	return nil
}

// serveUncharged answers a dry run with its quote, and a test key's
// request as the route says (simulated, or forwarded uncharged).
func (h *Handler) serveUncharged(w http.ResponseWriter, next caddyhttp.Handler, rq *request, id identity) error {
	if rq.dry {
		observeOutcome(outcomeDryRun, nil)
		return rq.dryRun(w)
	}
	observeOutcome(outcomeTest, nil)
	return rq.serveTest(w, next, rq.testUsed)
}

// reserve holds the price (step 4) by the request's settlement strategy,
// chosen here once: a job's estimate, nothing for a zero-cost request, or
// a reservation of the quote.
func (h *Handler) reserve(rq *request, id identity, body *usage.Body) error {
	period, err := id.settings.PeriodAt(time.Now(), id.created)
	if err != nil {
		return err
	}
	rq.settler = h.settlementFor(rq)
	ctx, span := startSpan(rq.r.Context(), rq.traced, spanReserve, nil)
	asked, err := rq.settler.hold(ctx, rq, id, period, body)
	if span.IsRecording() {
		span.SetAttributes(attrAccount.String(id.key.AccountID), attrCost.String(asked.String()))
	}
	endSpan(span, err)
	if err == nil && !rq.res.Replayed {
		meterMetrics.reserved.Add(creditsFloat(rq.res.Amount))
	}
	return err
}

// forward calls the next handler (step 5) with a writer that settles rq
// (step 6) when the upstream's status is known. A request replayed under
// its Idempotency-Key is answered with the stored response instead.
func (h *Handler) forward(w http.ResponseWriter, next caddyhttp.Handler, rq *request) error {
	if rq.res.Replayed {
		rq.replay(w)
		return nil
	}
	ctx, span := startSpan(rq.r.Context(), rq.traced, spanUpstream, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrRoute.String(rq.route)}
	})
	sw := newSettleWriter(w, rq)
	r := rq.r
	if ctx != r.Context() {
		// Only a traced request has a new context: WithContext copies
		// the request, which an untraced one need not pay for.
		r = r.WithContext(ctx)
	}
	err := next.ServeHTTP(sw, r)
	err = sw.finish(err)
	if span.IsRecording() {
		span.SetAttributes(attrOutcome.String(rq.outcome))
	}
	endSpan(span, err)
	return err
}

// toCaddy is a step's error that ServeHTTP returns to Caddy as it is,
// answering nothing itself: the client went away, or an internal failure.
type toCaddy struct{ error }

// unread is a refusal of a request whose body is not read (see
// refuseUnread).
type unread struct{ error }

// fail answers a request a step refused: unauthenticated ones with the
// error alone, the others with the money headers (see refuse).
func (rq *request) fail(w http.ResponseWriter, err error) error {
	var gone toCaddy
	var un unread
	switch {
	case errors.As(err, &gone):
		return gone.error
	case rq.key.AccountID == "":
		observeOutcome(outcomeRefused, err)
		writeError(w, err)
	case errors.As(err, &un):
		rq.refuseUnread(w, un.error)
	default:
		rq.refuse(w, err)
	}
	return nil
}
