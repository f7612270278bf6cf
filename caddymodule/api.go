package caddymodule

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(API{})
	httpcaddyfile.RegisterHandlerDirective("meter_api", parseDirective[API])
}

// API serves the caller's own account, found from its API key, as JSON:
//
//	GET .../balance        balance, reserved, available, totals, quota, overage, grants
//	GET .../transactions   the ledger, newest first: ?type= &date_from= &date_to=
//	                       (RFC 3339 or YYYY-MM-DD) &limit= (default 50, max 100)
//	                       &cursor= (the next_cursor of the previous page)
//	GET .../usage          usage by route in a period: ?period=current
//	                       (default), previous, or a date in the period;
//	                       or over time with ?granularity=day|hour &from=
//	                       &to= (RFC 3339 or YYYY-MM-DD; default the last
//	                       30 days, or 24 hours)
//	GET .../profile        rates per page class of the job routes (with the
//	                       account's own), API access enabled, page limit per
//	                       job, retention in days, when the profile changed
//
// Mount it under any path, e.g. `handle /v1/credits/* { meter_api }`; the
// endpoint is the last path segment. A key never sees another account.
type API struct {
	// KeyHeader is the request header that carries the API key, as for
	// the meter handler. Default: Authorization (Bearer).
	KeyHeader string `json:"key_header,omitempty"`

	// Case is "snake" (default) or "camel": the member names of the
	// profile (drawing_credits_per_page or drawingCreditsPerPage).
	Case string `json:"case,omitempty"`

	auth authenticator
	app  *App
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision gets the meter app.
func (a *API) Provision(ctx caddy.Context) error {
	if a.Case != "" && a.Case != "snake" && a.Case != "camel" {
		return meter.Errorf(meter.ECodeInvalid, "meter_api: case %q: use snake or camel", a.Case)
	}
	var err error
	if a.app, a.auth, err = authFor(ctx, a.KeyHeader); err != nil {
		return meter.Errorf(meter.ECodeInvalid, "meter_api: %v", err)
	}
	return nil
}

// ServeHTTP answers one API call; it never calls next.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	// It never calls next; stripped anyway, so that no later change can
	// forward a client's X-Meter-* headers from here.
	stripMeterHeaders(r.Header)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, meter.Errorf(meter.ECodeNotFound, "%s is not allowed here: use GET", r.Method))
		return nil
	}
	id, err := a.auth.identify(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return nil
	}
	ctx, cancel := a.app.storeCtx(r.Context())
	defer cancel()
	store := a.app.store
	switch endpoint := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]; endpoint {
	case "balance":
		acct, err := store.Account(ctx, id.key.AccountID)
		if err != nil {
			writeError(w, err)
			return nil
		}
		// A key holder sees its settings but not the webhook signing
		// secret: a leaked API key must not let anyone forge webhooks.
		if acct.Settings.WebhookSecret != "" {
			acct.Settings.WebhookSecret = "(set)"
		}
		writeJSON(w, http.StatusOK, acct)
	case "transactions":
		q, err := ledgerQuery(r, id.key.AccountID, 100)
		if err != nil {
			writeError(w, err)
			return nil
		}
		page, err := readLedgerPage(ctx, store, q)
		if err != nil {
			writeError(w, err)
			return nil
		}
		writeJSON(w, http.StatusOK, page)
	case "usage":
		if r.URL.Query().Has("granularity") {
			rep, err := seriesFor(ctx, store, r, id.key.AccountID)
			if err != nil {
				writeError(w, err)
				return nil
			}
			writeJSON(w, http.StatusOK, rep)
			return nil
		}
		acct, err := store.Account(ctx, id.key.AccountID)
		if err == nil {
			var rep usageReport
			if rep, err = usageFor(ctx, store, r, acct); err == nil {
				writeJSON(w, http.StatusOK, rep)
				return nil
			}
		}
		writeError(w, err)
	case "profile":
		acct, err := store.Account(ctx, id.key.AccountID)
		if err != nil {
			writeError(w, err)
			return nil
		}
		acct.Settings = id.settings // in force: its plan's where it sets none
		writeJSON(w, http.StatusOK, a.profile(acct))
	default:
		writeError(w, meter.Errorf(meter.ECodeNotFound, "unknown endpoint %q: use balance, transactions, usage or profile", endpoint))
	}
	return nil
}

// profile is what the caller may see of its account's terms.
func (a *API) profile(acct meter.Account) object {
	b := &BillingConfig{Case: a.Case}
	rates := a.app.profileRates(acct.Settings.Rates)
	classes := make([]string, 0, len(rates))
	for c := range rates {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	o := object{{b.name("account"), acct.ID}}
	for _, c := range classes {
		o = append(o, member{b.name(c + "_credits_per_page"), rates[c]})
	}
	retention := acct.Settings.RetentionDays
	if retention == 0 {
		retention = defaultRetentionDays
	}
	updated := acct.UpdatedAt
	if updated.IsZero() {
		updated = acct.CreatedAt
	}
	return append(o,
		member{b.name("enabled"), acct.Settings.IsEnabled()},
		member{b.name("job_page_limit"), acct.Settings.PageLimit},
		member{b.name("retention_days"), retention},
		member{b.name("updated_at"), updated.UTC()},
	)
}

// defaultRetentionDays is the retention of accounts without their own
// (JobConfig.Retention's default).
const defaultRetentionDays = 30

// ledgerQuery reads the ledger filters of a request.
func ledgerQuery(r *http.Request, account string, maxLimit int) (meter.LedgerQuery, error) {
	v := r.URL.Query()
	q := meter.LedgerQuery{AccountID: account, Limit: 50, Type: v.Get("type"), Before: v.Get("cursor")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return q, meter.Errorf(meter.ECodeInvalid, "limit must be between 1 and %d", maxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > meter.MaxLedgerOffset {
			return q, meter.Errorf(meter.ECodeInvalid, "offset must be between 0 and %d: page further with cursor", meter.MaxLedgerOffset)
		}
		q.Offset = n
	}
	switch q.Type {
	case "", meter.EntryPurchase, meter.EntryUsage, meter.EntryRefund, meter.EntryAdjustment,
		meter.EntryGrant, meter.EntryExpiration, meter.EntryGrantVoid:
	default:
		return q, meter.Errorf(meter.ECodeInvalid, "type %q: use purchase, usage, refund, adjustment, grant, expiration or grant_void", q.Type)
	}
	var err error
	if q.From, err = dateParam(v.Get("date_from"), false); err != nil {
		return q, err
	}
	if q.To, err = dateParam(v.Get("date_to"), true); err != nil {
		return q, err
	}
	return q, nil
}

// dateParam parses RFC 3339 or a date (UTC). A date as an upper bound
// includes the whole day.
func dateParam(s string, upper bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return t, meter.Errorf(meter.ECodeInvalid, "invalid date %q: use YYYY-MM-DD or RFC 3339", s)
	}
	if upper {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// readLedgerPage reads the page q selects and the total it is part of.
func readLedgerPage(ctx context.Context, s meter.LedgerStore, q meter.LedgerQuery) (map[string]any, error) {
	entries, err := s.Ledger(ctx, q)
	if err != nil {
		return nil, err
	}
	total, err := s.LedgerTotal(ctx, q)
	if err != nil {
		return nil, err
	}
	return ledgerPage(entries, q, total), nil
}

// ledgerPage is a page of transactions with the cursor of the next one.
// The same entries are under "data" (with has_more and next_cursor) and
// under "transactions" (with total, limit and offset, DocExtract's form),
// so clients that page by cursor and by offset both read it unchanged.
// total counts every entry of the type and dates asked for, whatever the
// cursor and offset.
func ledgerPage(entries []meter.LedgerEntry, q meter.LedgerQuery, total int) map[string]any {
	if entries == nil {
		entries = []meter.LedgerEntry{}
	}
	page := map[string]any{"data": entries, "has_more": false,
		"transactions": entries, "total": total, "limit": q.Limit, "offset": q.Offset}
	if len(entries) == q.Limit {
		page["has_more"] = true
		page["next_cursor"] = entries[len(entries)-1].ID
	}
	return page
}

// UnmarshalCaddyfile sets up the API from Caddyfile tokens. Syntax:
//
//	meter_api {
//		key_header <header>
//		case       snake|camel
//	}
func (a *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "key_header":
			v, err := keyHeaderArg(d, "meter_api", a.KeyHeader)
			if err != nil {
				return err
			}
			a.KeyHeader = v
		case "case":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if v != "snake" && v != "camel" {
				return d.Errf("meter_api: case %q: use snake or camel", v)
			}
			a.Case = v
		default:
			return d.Errf("meter_api: unknown subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
	_ caddyfile.Unmarshaler       = (*API)(nil)
)
