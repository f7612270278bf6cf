package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
	// The measuring defaults are usage's; the config shows them in force.
	d := usage.Options{}.WithDefaults()
	if h.MaxBody == 0 {
		h.MaxBody = d.MaxBody
	}
	if h.MemoryThreshold == 0 {
		h.MemoryThreshold = d.MemoryThreshold
	}
	if h.MaxFiles == 0 {
		h.MaxFiles = d.MaxFiles
	}
	if h.MaxPages == 0 {
		h.MaxPages = d.MaxPages
	}
	if h.CountTimeout == 0 {
		h.CountTimeout = caddy.Duration(d.CountTimeout)
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
		MaxPages:        h.MaxPages,
		CountTimeout:    time.Duration(h.CountTimeout),
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

// ServeHTTP meters one request: the README's six steps, in order. Each
// step owns its span and metrics; a step that refuses the request returns
// the error that rq.fail answers with.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rq := h.newRequest(r)
	id, err := h.authenticate(rq)
	if err == nil {
		err = h.admit(w, rq, id)
	}
	if err != nil {
		return rq.fail(w, err)
	}
	body, err := h.measure(rq, id)
	if body != nil {
		defer body.Close()
	}
	if err == nil {
		err = h.price(rq, id)
	}
	if err != nil {
		return rq.fail(w, err)
	}
	if rq.dry || id.key.Mode == meter.ModeTest {
		// Priced, never charged: the quote, or a test key's request.
		return h.serveUncharged(w, next, rq, id)
	}
	if err := h.reserve(rq, id, body); err != nil {
		return rq.fail(w, err)
	}
	// The settlement strategy settles when the upstream's status is known.
	return h.forward(w, next, rq)
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
