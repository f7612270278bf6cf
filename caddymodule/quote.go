package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(Quote{})
	httpcaddyfile.RegisterHandlerDirective("meter_quote", parseDirective[Quote])
	httpcaddyfile.RegisterDirectiveOrder("meter_quote", httpcaddyfile.Before, "push")
}

// Quote is the `meter_quote` HTTP handler: a free quote on its own path,
// as PSPDFKit's /analyze_build. It answers what a request would cost on
// another metered route, named by its `route`, by running that route's
// meter handler as a dry run (X-Meter-Dry-Run): the same key check,
// measuring, rules, account rates and refusals, so it is priced exactly
// as the route is; never forwarded, never charged, nothing written to the
// ledger. It never calls next.
type Quote struct {
	// Route is the `route` of the meter handler whose price this quotes.
	// Exactly one meter handler of the config must have it. Required.
	Route string `json:"route,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (Quote) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter_quote",
		New: func() caddy.Module { return new(Quote) },
	}
}

// Provision gets the meter app, which checks the route when it starts.
func (q *Quote) Provision(ctx caddy.Context) error {
	if q.Route == "" {
		return errors.New("meter_quote: the route to quote is required, e.g. `meter_quote build`")
	}
	app, err := ctx.App("meter")
	if err != nil {
		return err
	}
	q.app = app.(*App)
	q.app.routeIndex().quoted(q.Route)
	return nil
}

// ServeHTTP answers the quote: the route's dry run.
func (q *Quote) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h := q.app.routeIndex().handler(q.Route)
	if h == nil { // checked at start; a handler that failed to provision
		writeError(w, meter.Errorf(meter.ECodeInternal, "nothing to quote"))
		return nil
	}
	r.Header.Set(HeaderDryRun, "true")
	return h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), quoteKey{}, true)), neverForward)
}

// quoteKey marks a request answered by meter_quote in its context.
type quoteKey struct{}

func isQuote(r *http.Request) bool { v, _ := r.Context().Value(quoteKey{}).(bool); return v }

// feature is one line of a quote as PSPDFKit's /analyze_build answers it.
type feature struct {
	Cost     meter.Credits `json:"cost"`
	UnitCost meter.Credits `json:"unit_cost"`
	Units    int64         `json:"units"`
	Usage    []string      `json:"usage"`
}

// addFeatures adds PSPDFKit's names to a quote's answer: "cost" (the
// total) and "required_features", the lines that count something by name,
// with where in the request they were found. Clients written against
// /analyze_build read it unchanged; the dry run's fields stay.
func (d *dryRunResponse) addFeatures() {
	total := d.Total
	d.Cost = &total
	d.RequiredFeatures = map[string]feature{}
	for _, l := range d.Lines {
		if l.Units == 0 {
			continue
		}
		f := feature{Cost: l.Cost, UnitCost: l.UnitCost, Units: l.Units, Usage: []string{}}
		if l.Source != "" {
			f.Usage = strings.Split(l.Source, ", ")
		}
		d.RequiredFeatures[l.Name] = f
	}
}

// neverForward is the next handler of a quote: a dry run never calls it,
// and if a change ever made it, the request would still not be forwarded.
var neverForward = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
	return caddyhttp.Error(http.StatusInternalServerError, errors.New("meter_quote: the quoted route tried to forward"))
})

// routeIndex finds the meter handlers of a config by route name, for
// meter_quote. A config's handlers are all provisioned before its apps
// start, so the App checks the quoted routes in Start.
type routeIndex struct {
	mu       sync.Mutex
	handlers map[string][]*Handler
	quotes   map[string]bool
}

// routeIndex returns the app's index, made on first use: handlers
// provision before the App does.
func (a *App) routeIndex() *routeIndex {
	routesMu.Lock()
	defer routesMu.Unlock()
	if a.routes == nil {
		a.routes = new(routeIndex)
	}
	return a.routes
}

var routesMu sync.Mutex

func (ri *routeIndex) add(h *Handler) {
	if h.Route == "" {
		return
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.handlers == nil {
		ri.handlers = map[string][]*Handler{}
	}
	ri.handlers[h.Route] = append(ri.handlers[h.Route], h)
}

func (ri *routeIndex) quoted(route string) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.quotes == nil {
		ri.quotes = map[string]bool{}
	}
	ri.quotes[route] = true
}

func (ri *routeIndex) handler(route string) *Handler {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if hs := ri.handlers[route]; len(hs) == 1 {
		return hs[0]
	}
	return nil
}

// check refuses a config whose quotes do not name exactly one route.
func (ri *routeIndex) check() error {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	for route := range ri.quotes {
		switch n := len(ri.handlers[route]); {
		case n == 0:
			return fmt.Errorf("meter_quote %s: no meter handler has `route %s`", route, route)
		case n > 1:
			return fmt.Errorf("meter_quote %s: %d meter handlers have `route %s`; a quote needs exactly one", route, n, route)
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the quote from Caddyfile tokens. Syntax:
//
//	meter_quote <route>
func (q *Quote) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if !d.NextArg() {
		return d.Err("meter_quote: expected `meter_quote <route>`, the route of the meter handler to quote")
	}
	q.Route = d.Val()
	if d.NextArg() {
		return d.Errf("meter_quote: one route only, got extra %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("meter_quote: takes no block, got %q", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Quote)(nil)
	_ caddyhttp.MiddlewareHandler = (*Quote)(nil)
	_ caddyfile.Unmarshaler       = (*Quote)(nil)
)
