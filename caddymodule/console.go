package caddymodule

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(Console{})
	httpcaddyfile.RegisterHandlerDirective("meter_console", parseDirective[Console])
	httpcaddyfile.RegisterDirectiveOrder("meter_console", httpcaddyfile.Before, "reverse_proxy")
}

//go:embed console/templates/*.html console/static/*
var consoleFiles embed.FS

// Console is the operator console: accounts, one account's ledger, usage
// charts, keys and credit movements, and the gateway's usage, as HTML
// pages rendered on the server (charts drawn by the vendored uPlot when
// JavaScript runs, tables otherwise). It talks to the meter app's store
// in-process. It refuses to load unless an authentication handler
// (basic_auth, or forward_auth) runs before it on its route, or
// InsecureNoAuth is set. It never calls next.
type Console struct {
	// Prefix is the path the console is mounted at: its links start with
	// it. Default: /console.
	Prefix string `json:"prefix,omitempty"`

	// InsecureNoAuth lets the console load with no authentication in front
	// of it: anyone who reaches it can move credits. Default: false.
	InsecureNoAuth bool `json:"insecure_no_auth,omitempty"`

	// PageSize is how many accounts or ledger entries a page shows.
	// Default: 50 (at most 500).
	PageSize int `json:"page_size,omitempty"`

	// GatewayScan is how many accounts (in id order) the gateway page sums
	// per page of its totals. Default: 1000 (at most 10000).
	GatewayScan int `json:"gateway_scan,omitempty"`

	// RollupInterval is how often the store-wide rollup (sorted accounts,
	// gateway totals, refusals by code) is rebuilt; the shortest of a
	// config's consoles applies to its gateway. Default: 30s.
	RollupInterval caddy.Duration `json:"rollup_interval,omitempty"`

	app    *App
	logger *zap.Logger
	ctx    caddy.Context
	mux    *http.ServeMux
	tmpl   *template.Template
	done   *actionLog
	csrf   *http.CrossOriginProtection
	static http.Handler
}

// CaddyModule returns the Caddy module information.
func (Console) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter_console",
		New: func() caddy.Module { return new(Console) },
	}
}

// Provision gets the meter app, parses the templates and registers the
// console with the app, which checks at start that it is guarded.
func (c *Console) Provision(ctx caddy.Context) error {
	c.ctx = ctx
	c.logger = ctx.Logger()
	if c.Prefix == "" {
		c.Prefix = "/console"
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.PageSize == 0 {
		c.PageSize = 50
	}
	if c.GatewayScan == 0 {
		c.GatewayScan = 1000
	}
	app, err := ctx.App("meter")
	if err != nil {
		return err
	}
	c.app = app.(*App)
	c.app.consoles = append(c.app.consoles, c)
	c.tmpl, err = template.New("").Funcs(consoleFuncs).ParseFS(consoleFiles, "console/templates/*.html")
	if err != nil {
		return err
	}
	static, _ := fs.Sub(consoleFiles, "console/static")
	c.static = http.StripPrefix(c.Prefix+"/static/", http.FileServerFS(static))
	c.done = newActionLog(10000)
	c.csrf = http.NewCrossOriginProtection()
	c.routes()
	return nil
}

// Validate checks the sizes.
func (c *Console) Validate() error {
	if c.PageSize < 1 || c.PageSize > 500 {
		return fmt.Errorf("meter_console: page_size %d: use 1 to 500", c.PageSize)
	}
	if c.GatewayScan < 1 || c.GatewayScan > 10000 {
		return fmt.Errorf("meter_console: gateway_scan %d: use 1 to 10000", c.GatewayScan)
	}
	if d := time.Duration(c.RollupInterval); d != 0 && (d < time.Second || d > time.Hour) {
		return fmt.Errorf("meter_console: rollup_interval %v: use 1s to 1h", d)
	}
	return nil
}

func (c *Console) routes() {
	p := c.Prefix
	c.mux = http.NewServeMux()
	c.mux.HandleFunc("GET "+p+"/{$}", c.accountsPage)
	c.mux.HandleFunc("GET "+p+"/accounts/{id}", c.accountPage)
	c.mux.HandleFunc("GET "+p+"/gateway", c.gatewayPage)
	c.mux.HandleFunc("POST "+p+"/accounts/{id}/{action}", c.action)
	c.mux.Handle("GET "+p+"/static/", c.static)
	c.mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/", http.StatusFound)
	})
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, meter.Errorf(meter.ECodeNotFound, "%s %s is not a page of the console", r.Method, r.URL.Path))
	})
}

// ServeHTTP serves one page; it never calls next.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	c.mux.ServeHTTP(w, r)
	return nil
}

// render writes a page; a template error after the first byte is only
// logged.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.tmpl.ExecuteTemplate(w, name, data); err != nil {
		c.logger.Error("console template", zap.String("template", name), zap.Error(err))
	}
}

// fail renders an error page with the status of the error's code.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorBody(err)
	e := body["error"].(map[string]any)
	c.render(w, status, "error.html", map[string]any{"P": c.Prefix, "Title": "Error", "Code": e["code"], "Message": e["message"], "Status": status})
}

// actionLog remembers the outcome of confirmed console actions by their
// form's idempotency key, so that a resubmitted form shows the first
// outcome instead of acting again. Bounded: the oldest are forgotten (the
// store's own idempotency still holds for grants and refunds).
type actionLog struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]actionOutcome
}

type actionOutcome struct {
	Redirect string `json:"redirect,omitempty"` // where the first submission went
	KeyID    string `json:"key_id,omitempty"`   // the key created, for a key creation
	Secret   string `json:"-"`                  // its secret: in the first answer only, never kept
	replayed bool   // read back from the store: done by an earlier submission
}

func newActionLog(max int) *actionLog { return &actionLog{max: max, m: map[string]actionOutcome{}} }

func (l *actionLog) get(k string) (actionOutcome, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.m[k]
	return o, ok
}

func (l *actionLog) put(k string, o actionOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[k]; !ok {
		l.order = append(l.order, k)
	}
	o.Secret = "" // never kept, never shown again
	l.m[k] = o
	for len(l.order) > l.max {
		delete(l.m, l.order[0])
		l.order = l.order[1:]
	}
}

// UnmarshalCaddyfile sets up the console from Caddyfile tokens. Syntax:
//
//	meter_console {
//		prefix           <path>
//		page_size        <n>
//		gateway_scan     <n>
//		rollup_interval  <duration>
//		insecure_no_auth
//	}
func (c *Console) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("meter_console: %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "prefix":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(v, "/") {
				return d.Errf("meter_console: prefix %q must start with /", v)
			}
			c.Prefix = v
		case "page_size", "gateway_scan":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("meter_console: %s %q: use a positive number", name, v)
			}
			if name == "page_size" {
				c.PageSize = n
			} else {
				c.GatewayScan = n
			}
		case "rollup_interval":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < time.Second || dur > time.Hour {
				return d.Errf("meter_console: rollup_interval %q: use a duration from 1s to 1h", v)
			}
			c.RollupInterval = caddy.Duration(dur)
		case "insecure_no_auth":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.InsecureNoAuth = true
		default:
			return d.Errf("meter_console: unknown subdirective %q", name)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Console)(nil)
	_ caddy.Validator             = (*Console)(nil)
	_ caddyhttp.MiddlewareHandler = (*Console)(nil)
	_ caddyfile.Unmarshaler       = (*Console)(nil)
)
