package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Response headers set on every metered response to a known key.
const (
	HeaderCost      = "X-Request-Cost"
	HeaderRemaining = "X-Remaining-Credits"
	HeaderReplayed  = "Idempotent-Replayed"
	HeaderTest      = "X-Meter-Test"
	// HeaderQuotaRemaining and HeaderQuotaReset are set for accounts with a
	// monthly quota: what is left of it and when it resets (RFC 3339).
	HeaderQuotaRemaining = "X-Quota-Remaining"
	HeaderQuotaReset     = "X-Quota-Reset"
)

// Request headers set for the upstream. Every X-Meter-* header the client
// sent is removed first (stripMeterHeaders), so the upstream can trust them.
const (
	UpstreamReservation = "X-Meter-Reservation"
	UpstreamAccount     = "X-Meter-Account"
	UpstreamTest        = "X-Meter-Test"
)

// Handler is the `meter` HTTP handler: it authenticates the caller's API
// key, measures the request, prices it, reserves the price, calls the next
// handler (normally reverse_proxy), and debits the reservation when the
// upstream answers 2xx or releases it otherwise.
type Handler struct {
	// Rules is the price list of this route; the request costs the sum of
	// the rules' lines. Required.
	Rules []pricing.Spec `json:"rules,omitempty"`

	// Route names this route in the ledger. Default: the request path.
	Route string `json:"route,omitempty"`

	// KeyHeader is the request header that carries the API key. For
	// "Authorization" (the default) the value must be "Bearer <key>"; for
	// any other header it is the key itself.
	KeyHeader string `json:"key_header,omitempty"`

	// MaxBody is the largest request body accepted, in bytes; larger ones
	// get 413 body_too_large. Default: 100 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// MemoryThreshold is the largest body kept in memory while it is
	// measured; larger bodies are spooled to a temporary file that is
	// removed when the request ends. Default: 1 MiB.
	MemoryThreshold int64 `json:"memory_threshold,omitempty"`

	// TempDir is where large bodies are spooled. Default: the system's
	// temporary directory.
	TempDir string `json:"temp_dir,omitempty"`

	// MaxFiles is the most multipart parts inspected in one request; more
	// is a 400. Default: 100.
	MaxFiles int `json:"max_files,omitempty"`

	// MaxPages is the most pages one request may carry, all its documents
	// together; more gets 413 too_many_pages before anything is forwarded,
	// and counting stops as soon as a document is known to exceed it.
	// Default: 100000.
	MaxPages int64 `json:"max_pages,omitempty"`

	// CountTimeout bounds the time spent measuring one request's body
	// (opening documents, counting pages); past it the request gets 422
	// unreadable_document. Default: 10s.
	CountTimeout caddy.Duration `json:"count_timeout,omitempty"`

	// ReservationTTL is how long credits stay reserved for one request.
	// It must exceed the upstream's longest response time: a reservation
	// that expires before its settle is charged from what is available
	// then. Default: 5m.
	ReservationTTL caddy.Duration `json:"reservation_ttl,omitempty"`

	// Unpriced says what a route priced by input pages does with content
	// its pages cannot price: a body with no PDF or image in it, a named
	// multipart file or a json_documents field that is neither. "refuse"
	// (default) answers 415 unsupported_content before forwarding;
	// "charge" charges UnpricedCredits for each.
	Unpriced string `json:"unpriced,omitempty"`

	// UnpricedCredits is the price of one unpriced item with unpriced
	// "charge". Default: 0.
	UnpricedCredits meter.Credits `json:"unpriced_credits,omitempty"`

	// JSONDocuments are JSONPath queries of the string fields of a JSON
	// body that carry documents base64-encoded (or as data: URLs), counted
	// like uploaded files. Default ("auto"): every string of a JSON body
	// is tried. "off": JSON bodies are not searched, so they are unpriced.
	JSONDocuments []string `json:"json_documents,omitempty"`

	// IdempotencyMaxResponse is the largest 2xx response body, in bytes,
	// kept for the replays of a request sent with an Idempotency-Key (with
	// its status and headers, in the store, for the app's idempotency_ttl).
	// The replay of a charged request whose body was larger is refused
	// with 409 idempotency_response_not_stored. Default: 64 KiB; at most
	// 512 KiB; negative: keep none.
	IdempotencyMaxResponse int64 `json:"idempotency_max_response,omitempty"`

	// Job makes this route a job submission route (see JobConfig).
	Job *JobConfig `json:"job,omitempty"`

	// Billing merges a billing object into the upstream's 2xx JSON
	// answers (see BillingConfig).
	Billing *BillingConfig `json:"billing,omitempty"`

	// Test says what a test key's request does once priced: "simulate"
	// (default) answers it from the gateway (200, the quote, never
	// forwarded); "forward" passes it on with X-Meter-Test: true, to the
	// upstream or to a sandbox the Caddyfile picks by {http.meter.mode}.
	Test string `json:"test,omitempty"`

	// TestLimit is the most test-key requests an account may make on
	// this route per UTC day, counted by each gateway process across all
	// its routes; more get 429 test_limit_exceeded. Default: 1000.
	TestLimit int `json:"test_limit,omitempty"`

	// CostHeader and RemainingHeader name the response headers that carry
	// what the request cost and the credits left, on every answer of this
	// route. Default: the meter app's (X-Request-Cost, X-Remaining-Credits
	// unless its cost_header, remaining_header say otherwise).
	CostHeader      string `json:"cost_header,omitempty"`
	RemainingHeader string `json:"remaining_header,omitempty"`

	money  moneyNames
	app    *App
	auth   authenticator
	scope  string // the route's name in app.rates
	rules  pricing.Rules
	needs  pricing.Needs
	uopts  usage.Options
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, compiles the rules and gets the meter app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.KeyHeader == "" {
		h.KeyHeader = "Authorization"
	}
	if h.MaxBody == 0 {
		h.MaxBody = 100 << 20
	}
	if h.MemoryThreshold == 0 {
		h.MemoryThreshold = 1 << 20
	}
	if h.MaxFiles == 0 {
		h.MaxFiles = 100
	}
	if h.MaxPages == 0 {
		h.MaxPages = 100_000
	}
	if h.CountTimeout == 0 {
		h.CountTimeout = caddy.Duration(10 * time.Second)
	}
	if h.ReservationTTL == 0 {
		h.ReservationTTL = caddy.Duration(5 * time.Minute)
	}
	if h.Test == "" {
		h.Test = TestSimulate
	}
	if h.TestLimit == 0 {
		h.TestLimit = defaultTestLimit
	}
	if h.IdempotencyMaxResponse == 0 {
		h.IdempotencyMaxResponse = defaultIdempotencyMaxResponse
	}
	rules, err := pricing.Compile(h.Rules)
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	h.rules, h.needs = rules, rules.Needs()
	if h.Billing != nil {
		if err := h.Billing.provision(); err != nil {
			return fmt.Errorf("meter: %w", err)
		}
	}
	var jobRatesDefault map[string]meter.Credits
	if h.Job != nil {
		if err := h.Job.provision(h.Rules); err != nil {
			return err
		}
		if h.Job.declared != nil {
			h.needs.JSON = true
		}
		q, err := h.rules.Quote(pricing.Input{})
		if err != nil {
			return fmt.Errorf("meter: job: %w", err)
		}
		jobRatesDefault = jobRates(q)
	}
	h.uopts = usage.Options{
		MaxBody:         h.MaxBody,
		MemoryThreshold: h.MemoryThreshold,
		TempDir:         h.TempDir,
		MaxFiles:        h.MaxFiles,
	}
	appIface, err := ctx.App("meter")
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	h.app = appIface.(*App)
	h.app.routeIndex().add(h)
	if h.auth, err = newAuthenticator(h.app, h.KeyHeader); err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	h.money = h.app.money.with(h.CostHeader, h.RemainingHeader)
	if h.money.cost == h.money.remaining {
		return fmt.Errorf("meter: cost_header and remaining_header are both %q", h.money.cost)
	}
	h.uopts.Budget = h.app.budget
	if err := h.provisionContent(); err != nil {
		return err
	}
	h.scope = h.app.rates.Add(h.Route, h.rules.RateNames())
	// Every route may spool (an Idempotency-Key spools the body).
	h.removeStaleSpools()
	if jobRatesDefault != nil {
		h.app.addJobRates(h.scope, jobRatesDefault)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	switch {
	case len(h.Rules) == 0:
		return errors.New("meter: no pricing rule: add one, e.g. `per_page 1`")
	case h.MaxBody < 0, h.MemoryThreshold < 0, h.MaxFiles < 0, h.MaxPages < 0:
		return errors.New("meter: max_body, memory_threshold, max_files and max_pages must not be negative")
	case h.CountTimeout < 0, h.ReservationTTL < 0:
		return errors.New("meter: count_timeout and reservation_ttl must not be negative")
	case h.Test != TestSimulate && h.Test != TestForward:
		return fmt.Errorf("meter: test %q: use simulate or forward", h.Test)
	case h.TestLimit < 0:
		return errors.New("meter: test_limit must not be negative")
	case h.IdempotencyMaxResponse > maxIdempotencyResponse:
		return fmt.Errorf("meter: idempotency_max_response %d is above %d bytes", h.IdempotencyMaxResponse, maxIdempotencyResponse)
	}
	if err := checkMoneyNames(h.CostHeader, h.RemainingHeader); err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	if err := checkKeyHeader(h.KeyHeader); err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	return nil
}

// ServeHTTP meters one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	dryRun := isDryRun(r)
	stripMeterHeaders(r.Header)
	tr := traced(r.Context())
	ctx, span := startSpan(r.Context(), tr, spanAuthenticate, nil)
	id, err := h.auth.identify(ctx, r)
	endSpan(span, err)
	if err != nil {
		observeOutcome(outcomeRefused, err)
		writeError(w, err)
		return nil
	}
	rq := &request{h: h, key: id.key, r: r, route: h.Route, reqID: requestID(r), traced: tr}
	if rq.route == "" {
		rq.route = r.URL.Path
	}
	if err := id.enabled(); err != nil {
		rq.refuse(w, err)
		return nil
	}
	testUsed, ok := h.admit(w, r, rq, id, dryRun)
	if !ok {
		return nil
	}

	ctx, span = startSpan(r.Context(), tr, spanMeasure, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrAccount.String(id.key.AccountID), attrRoute.String(rq.route)}
	})
	start := time.Now()
	body, err := h.measure(r, &rq.in)
	meterMetrics.countTime.Observe(time.Since(start).Seconds())
	if span.IsRecording() {
		span.SetAttributes(attrPages.Int(rq.in.Usage.Pages))
	}
	endSpan(span, err)
	if body != nil {
		defer body.Close()
	}
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away while we read its body: nobody to answer.
			return r.Context().Err()
		}
		rq.refuse(w, err)
		return nil
	}
	for _, f := range rq.in.Usage.Files {
		if f.Pages > 0 {
			observePages(f.Kind, f.Pages)
		}
	}
	if n := int64(rq.in.Usage.Pages); n > h.MaxPages {
		rq.refuse(w, meter.Errorf(meter.ECodeTooManyPages, "the request has %d pages, more than the %d this route accepts", n, h.MaxPages).
			With("pages_at_least", n).With("max_pages", h.MaxPages))
		return nil
	}

	_, span = startSpan(ctx, tr, spanPrice, nil)
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
		rq.refuse(w, err)
		return nil
	}
	if limit := id.settings.PageLimit; limit > 0 && rq.in.Usage.Pages > limit {
		rq.refuse(w, meter.Errorf(meter.ECodePageLimitExceeded,
			"the request has %d pages; this account's limit is %d pages per request", rq.in.Usage.Pages, limit).
			With("pages", rq.in.Usage.Pages).With("page_limit", limit))
		return nil
	}

	if dryRun {
		observeOutcome(outcomeDryRun, nil)
		return rq.dryRun(w)
	}
	if id.key.Mode == meter.ModeTest {
		observeOutcome(outcomeTest, nil)
		return rq.serveTest(w, next, testUsed)
	}
	period, err := id.settings.PeriodAt(time.Now(), id.created)
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	if h.Job != nil {
		return h.serveJob(w, r, next, rq, id, period)
	}
	if rq.quote.Total == 0 && !h.needs.Uncapped {
		// Nothing to hold and nothing the response can add: no state in
		// the store. An uncapped route's estimate of 0 (reserve input, no
		// document) still settles what the upstream produced.
		return h.forwardFree(w, r, next, rq)
	}
	idem := r.Header.Get(HeaderIdempotencyKey)
	if idem != "" {
		if rq.fp, err = fingerprint(id.key.AccountID, r, rq.route, body); err != nil {
			rq.refuse(w, err)
			return nil
		}
	}
	ctx, span = startSpan(r.Context(), tr, spanReserve, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrAccount.String(id.key.AccountID), attrCost.String(rq.quote.Total.String())}
	})
	sctx, cancel := h.app.storeCtx(ctx)
	rq.res, err = rq.reserve(sctx, meter.ReserveRequest{
		AccountID:      id.key.AccountID,
		ID:             meter.NewID("rsv"),
		Amount:         rq.quote.Total,
		TTL:            time.Duration(h.ReservationTTL),
		IdempotencyKey: idem,
		Fingerprint:    rq.fp,
		Period:         period,
	})
	cancel()
	endSpan(span, err)
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	if rq.res.Replayed {
		// The same request was charged under this Idempotency-Key: its
		// stored response, without the upstream, charging nothing.
		rq.replay(w)
		return nil
	}
	meterMetrics.reserved.Add(creditsFloat(rq.res.Amount))

	r.Header.Set(UpstreamReservation, rq.res.ID)
	r.Header.Set(UpstreamAccount, id.key.AccountID)
	return h.forward(w, r, next, rq)
}

// forward calls the next handler with a writer that settles rq when the
// upstream's status is known.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rq *request) error {
	ctx, span := startSpan(r.Context(), rq.traced, spanUpstream, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrRoute.String(rq.route)}
	})
	sw := newSettleWriter(w, rq)
	err := next.ServeHTTP(sw, r.WithContext(ctx))
	err = sw.finish(err)
	if span.IsRecording() {
		span.SetAttributes(attrOutcome.String(rq.outcome))
	}
	endSpan(span, err)
	return err
}

// maxJSONBody bounds a JSON body read for pricing: it is parsed in memory.
const maxJSONBody = 16 << 20

// measure reads what pricing needs into in. When the body is read, it is
// spooled once, measured, and put back on the request so the upstream
// receives exactly the bytes the client sent.
func (h *Handler) measure(r *http.Request, in *pricing.Input) (*usage.Body, error) {
	// A request with an Idempotency-Key is spooled on every route: its
	// fingerprint digests the body the upstream will receive.
	if !h.needs.Pages && !h.needs.JSON && r.Header.Get(HeaderIdempotencyKey) == "" {
		return nil, nil
	}
	opts := h.uopts
	opts.SizeHint = r.ContentLength
	body, err := usage.Spool(r.Body, opts)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(body.Reader())
	r.ContentLength = body.Size()
	r.TransferEncoding = nil
	if body.Size() > 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(body.Size(), 10))
	}
	ct := r.Header.Get("Content-Type")
	if h.needs.JSON && isJSON(ct) {
		if body.Size() > maxJSONBody {
			return body, meter.Errorf(meter.ECodeBodyTooLarge, "a JSON body priced by its content may be at most %d bytes", maxJSONBody).With("max_body", maxJSONBody)
		}
		// The body and its parsed form live in memory: admit about 4x its
		// size against the same budget as page counting.
		release, err := h.uopts.Budget.Hold(r.Context(), 4*body.Size())
		if err != nil {
			return body, err
		}
		body.OnClose(release)
		in.JSON = make([]byte, body.Size())
		if _, err := io.ReadFull(body.Reader(), in.JSON); err != nil {
			return body, err
		}
	}
	// A multipart request on a route priced by JSON carries it in a part:
	// the multipart walk that counts the files hands it over.
	jsonPart := h.needs.JSON && h.needs.JSONPart != "" && isMultipart(ct)
	if jsonPart {
		opts.JSONPart, opts.PartOnly = h.needs.JSONPart, !h.needs.Pages
	}
	if jsonPart || h.needs.Pages && (h.Job == nil || h.Job.declared == nil || !isJSON(ct)) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.CountTimeout))
		opts.PDF.MaxPages = h.MaxPages // not for the upstream's output pages
		in.Usage, err = usage.MeasureEncoded(ctx, ct, r.Header.Get("Content-Encoding"), body, opts)
		cancel()
		u := in.Usage
		body.OnClose(u.Release)
		in.JSON = u.TypedJSONPart()
		if !h.needs.Pages {
			in.Usage = usage.Usage{} // only the part was read
		}
		if err == nil && h.needs.Pages && in.Usage.Unpriced > 0 && h.Unpriced != unpricedCharge {
			err = unpricedError(in.Usage)
		}
	}
	return body, err
}

// isJSON reports whether a Content-Type is JSON (application/json or any
// +json type).
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	mt = strings.TrimSpace(mt)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// isMultipart reports whether a Content-Type is multipart/*.
func isMultipart(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "multipart/")
}

func bodyTooLarge(max int64) error {
	return meter.Errorf(meter.ECodeBodyTooLarge, "request body is larger than the limit of %d bytes", max).With("max_body", max)
}

// setQuotaHeaders writes the quota headers of an account that has a
// monthly quota.
func setQuotaHeaders(h http.Header, q meter.QuotaState) {
	if q.Limit <= 0 {
		return
	}
	h.Set(HeaderQuotaRemaining, q.Remaining.String())
	if !q.ResetsAt.IsZero() {
		h.Set(HeaderQuotaReset, q.ResetsAt.UTC().Format(time.RFC3339))
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
