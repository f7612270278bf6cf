package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves account, key and credit management on Caddy's admin
// endpoint under /meter/. It is loaded with every config, like Caddy's own
// admin modules, and finds the meter app when a request arrives.
type adminAPI struct {
	ctx caddy.Context
	mux *http.ServeMux
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.meter",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// adminFunc is an admin endpoint: it returns its error instead of writing it.
type adminFunc func(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error

// route adapts an endpoint of a route group, which depends on the smallest
// store interface it uses (see stores.go), to the app's whole store.
func route[S any](f func(context.Context, S, http.ResponseWriter, *http.Request) error) adminFunc {
	return func(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
		return f(ctx, any(s).(S), w, r) // the guards in stores.go: never fails
	}
}

// Provision keeps the context, in which the meter app is looked up, and
// routes the endpoints.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.mux = http.NewServeMux()
	for pattern, f := range a.endpoints() {
		a.mux.Handle(pattern, a.wrap(f))
	}
	for pattern, f := range a.stripeEndpoints() {
		a.mux.Handle(pattern, a.wrap(f))
	}
	for pattern, f := range a.grantEndpoints() {
		a.mux.Handle(pattern, a.wrap(f))
	}
	a.mux.HandleFunc("/meter/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, meter.Errorf(meter.ECodeNotFound, "%s %s is not an endpoint of the meter admin API", r.Method, r.URL.Path))
	})
	return nil
}

func (a *adminAPI) endpoints() map[string]adminFunc {
	return map[string]adminFunc{
		"POST /meter/accounts":                        route(a.createAccount),
		"GET /meter/accounts/{id}":                    route(a.getAccount),
		"PATCH /meter/accounts/{id}":                  route(a.updateSettings),
		"POST /meter/accounts/{id}/keys":              route(a.createKey),
		"POST /meter/accounts/{id}/credits":           route(a.grant),
		"GET /meter/accounts/{id}/transactions":       route(a.transactions),
		"GET /meter/accounts":                         route(a.listAccounts),
		"GET /meter/accounts/{id}/keys":               route(a.listKeys),
		"DELETE /meter/accounts/{id}/keys/{key}":      route(a.revokeKey),
		"POST /meter/accounts/{id}/refunds":           route(a.refund),
		"GET /meter/accounts/{id}/usage":              route(a.usage),
		"POST /meter/accounts/{id}/trim":              route(a.trim),
		"GET /meter/accounts/{id}/jobs/{job}":         route(a.getJob),
		"POST /meter/accounts/{id}/jobs/{job}/cancel": route(a.cancelJob),
		"GET /meter/plans":                            route(a.listPlans),
		"GET /meter/plans/{name}":                     route(a.getPlan),
		"PUT /meter/plans/{name}":                     route(a.putPlan),
		"DELETE /meter/plans/{name}":                  route(a.deletePlan),
	}
}

// Routes returns the admin routes.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/meter/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

const adminBodyLimit = 1 << 20

func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	a.mux.ServeHTTP(w, r)
	return nil
}

func (a *adminAPI) wrap(f adminFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		store, err := a.store()
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			err = f(ctx, store, w, r)
		}
		if err != nil {
			writeError(w, err)
		}
	})
}

// logMoney logs a credit movement made through the admin API.
func (a *adminAPI) logMoney(e meter.LedgerEntry) {
	a.ctx.Logger().Info("ledger entry", zap.String("account", e.AccountID), zap.String("entry", e.ID),
		zap.String("type", e.Type), zap.Stringer("amount", e.Amount), zap.Stringer("balance_after", e.BalanceAfter),
		zap.String("refund_of", e.RefundOf))
}

// dropCached forgets an account's cached keys and settings on this gateway.
func (a *adminAPI) dropCached(account string) {
	if app, err := a.ctx.AppIfConfigured("meter"); err == nil && app.(*App).keys != nil {
		app.(*App).keys.dropAccount(account)
	}
}

func (a *adminAPI) store() (meter.Store, error) {
	app, err := a.ctx.AppIfConfigured("meter")
	if err != nil {
		return nil, meter.Errorf(meter.ECodeMeteringUnavailable, "the meter app is not configured: add the meter global option")
	}
	s := app.(*App).Store()
	if s == nil {
		return nil, meter.Errorf(meter.ECodeMeteringUnavailable, "the meter store is not open")
	}
	return s, nil
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, adminBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return meter.Errorf(meter.ECodeBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}

func (a *adminAPI) createAccount(ctx context.Context, s adminAccounts, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ID      string        `json:"id"`
		Credits meter.Credits `json:"credits"`
		// Plan is the account's plan; default: the app's default_plan.
		Plan *string `json:"plan"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := meter.ValidateAccountID(req.ID); err != nil {
		return err
	}
	if req.Credits < 0 {
		return meter.Errorf(meter.ECodeInvalid, "credits must not be negative")
	}
	acct, err := a.createOnPlan(ctx, s, req.ID, req.Credits, req.Plan)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, acct)
	return nil
}

func (a *adminAPI) getAccount(ctx context.Context, s adminAccounts, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	view, err := a.inForce(ctx, s, acct)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// updateSettings changes the settings named in the body and keeps the
// others: {"enabled": false}, {"rates": {"drawing": 8}}, {"monthly_quota":
// 10}. A null value resets a setting to its default.
func (a *adminAPI) updateSettings(ctx context.Context, s adminAccounts, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var patch map[string]json.RawMessage
	if err := decode(r, &patch); err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	// Merge as JSON: the settings' own field names and types are the API.
	cur, err := json.Marshal(acct.Settings)
	if err != nil {
		return err
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(cur, &merged); err != nil {
		return err
	}
	for k, v := range patch {
		if string(v) == "null" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	raw, _ := json.Marshal(merged)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var st meter.Settings
	if err := dec.Decode(&st); err != nil {
		return meter.Errorf(meter.ECodeInvalid, "settings: %v", err)
	}
	if err := st.Validate(acct.CreatedAt); err != nil {
		return err
	}
	if err := a.checkRates(st.Rates); err != nil {
		return err
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	if err := app.checkPlan(ctx, st.Plan); err != nil {
		return err
	}
	// The own settings and the limits in force (its plan's where the
	// account sets none), in one step.
	eff, err := app.effective(ctx, meter.Account{ID: id, Settings: st})
	if err != nil {
		return err
	}
	acct, err = s.ApplySettings(ctx, id, &st, eff.Limits())
	if err != nil {
		return err
	}
	app.plans.remember(id, eff.Limits())
	a.dropCached(id)
	writeJSON(w, http.StatusOK, acct)
	return nil
}

// checkRates refuses account rates that would not apply as written: see
// pricing.Scope.Check. It checks against this gateway's routes.
func (a *adminAPI) checkRates(rates map[string]meter.Credits) error {
	app, err := a.ctx.AppIfConfigured("meter")
	if err != nil || len(rates) == 0 {
		return nil
	}
	return app.(*App).rates.Check(rates)
}

func (a *adminAPI) createKey(ctx context.Context, s adminKeys, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req struct {
		Mode string `json:"mode"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	mode, err := meter.ParseMode(req.Mode)
	if err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	secret, k := meter.NewKey(acct.ID, mode)
	k.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.AddKey(ctx, k); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		Secret string `json:"key"`
		meter.Key
	}{secret, k})
	return nil
}

func (a *adminAPI) grant(ctx context.Context, s adminMoney, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req struct {
		Amount         *meter.Credits `json:"amount"`
		Type           string         `json:"type"`
		Description    string         `json:"description"`
		IdempotencyKey string         `json:"idempotency_key"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Amount == nil || *req.Amount == 0 {
		return meter.Errorf(meter.ECodeInvalid, "amount is required and must not be 0")
	}
	switch req.Type {
	case "":
		req.Type = meter.EntryPurchase
	case meter.EntryPurchase, meter.EntryAdjustment:
	default:
		return meter.Errorf(meter.ECodeInvalid, "type %q: use purchase or adjustment", req.Type)
	}
	if req.Type == meter.EntryPurchase && *req.Amount < 0 {
		return meter.Errorf(meter.ECodeInvalid, "a purchase must be positive; use type adjustment to remove credits")
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" && req.IdempotencyKey == "" {
		req.IdempotencyKey = k
	}
	entry, err := s.Grant(ctx, meter.Grant{
		AccountID: id, Amount: *req.Amount, Type: req.Type,
		Description: req.Description, IdempotencyKey: req.IdempotencyKey,
	})
	if err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	a.logMoney(entry)
	writeJSON(w, http.StatusCreated, map[string]any{"entry": entry, "account": acct})
	return nil
}

func (a *adminAPI) transactions(ctx context.Context, s adminLedger, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q, err := ledgerQuery(r, id, 1000)
	if err != nil {
		return err
	}
	if _, err := s.Account(ctx, id); err != nil {
		return err
	}
	page, err := readLedgerPage(ctx, s, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
