package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

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
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.meter",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision keeps the context, in which the meter app is looked up.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	return nil
}

// Routes returns the admin routes.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/meter/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

const adminBodyLimit = 1 << 20

func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	store, err := a.store()
	if err != nil {
		writeError(w, err)
		return nil
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/meter/"), "/"), "/")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	switch {
	case len(parts) == 1 && parts[0] == "accounts" && r.Method == http.MethodPost:
		err = a.createAccount(ctx, store, w, r)
	case len(parts) == 2 && parts[0] == "accounts" && r.Method == http.MethodGet:
		err = a.getAccount(ctx, store, w, parts[1])
	case len(parts) == 2 && parts[0] == "accounts" && r.Method == http.MethodPatch:
		err = a.updateSettings(ctx, store, w, r, parts[1])
	case len(parts) == 3 && parts[0] == "accounts" && parts[2] == "keys" && r.Method == http.MethodPost:
		err = a.createKey(ctx, store, w, r, parts[1])
	case len(parts) == 3 && parts[0] == "accounts" && parts[2] == "credits" && r.Method == http.MethodPost:
		err = a.grant(ctx, store, w, r, parts[1])
	case len(parts) == 3 && parts[0] == "accounts" && parts[2] == "transactions" && r.Method == http.MethodGet:
		err = a.transactions(ctx, store, w, r, parts[1])
	default:
		err = meter.Errorf(meter.ECodeNotFound, "%s %s is not an endpoint of the meter admin API", r.Method, r.URL.Path)
	}
	if err != nil {
		writeError(w, err)
	}
	return nil
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

func (a *adminAPI) createAccount(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ID      string        `json:"id"`
		Credits meter.Credits `json:"credits"`
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
	acct, err := s.CreateAccount(ctx, req.ID, req.Credits)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, acct)
	return nil
}

func (a *adminAPI) getAccount(ctx context.Context, s meter.Store, w http.ResponseWriter, id string) error {
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acct)
	return nil
}

// updateSettings changes the settings named in the body and keeps the
// others: {"enabled": false}, {"rates": {"drawing": 8}}, {"page_limit": 0}.
// A null value resets a setting to its default.
func (a *adminAPI) updateSettings(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request, id string) error {
	var patch map[string]json.RawMessage
	if err := decode(r, &patch); err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	st := acct.Settings
	for name, raw := range patch {
		isNull := string(raw) == "null"
		var err error
		switch name {
		case "enabled":
			st.Enabled = nil
			if !isNull {
				err = json.Unmarshal(raw, &st.Enabled)
			}
		case "rates":
			st.Rates = nil
			if !isNull {
				err = json.Unmarshal(raw, &st.Rates)
			}
			for k, v := range st.Rates {
				if v < 0 || k == "" {
					err = fmt.Errorf("rate %q must be a named, non-negative number of credits", k)
				}
			}
		case "page_limit":
			st.PageLimit = 0
			if !isNull {
				err = json.Unmarshal(raw, &st.PageLimit)
			}
			if st.PageLimit < 0 {
				err = fmt.Errorf("must not be negative")
			}
		default:
			return meter.Errorf(meter.ECodeInvalid, "unknown setting %q (expected enabled, rates or page_limit)", name)
		}
		if err != nil {
			return meter.Errorf(meter.ECodeInvalid, "setting %s: %v", name, err)
		}
	}
	acct, err = s.UpdateSettings(ctx, id, st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acct)
	return nil
}

func (a *adminAPI) createKey(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request, id string) error {
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

func (a *adminAPI) grant(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request, id string) error {
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
	writeJSON(w, http.StatusCreated, map[string]any{"entry": entry, "account": acct})
	return nil
}

func (a *adminAPI) transactions(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request, id string) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return meter.Errorf(meter.ECodeInvalid, "limit must be between 1 and 1000")
		}
		limit = n
	}
	if _, err := s.Account(ctx, id); err != nil {
		return err
	}
	entries, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: limit})
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []meter.LedgerEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": entries})
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
