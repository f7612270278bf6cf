package caddymodule

import (
	"context"
	"net/http"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Credit grants (meter.GrantStore) on the admin API:
//
//	GET    /meter/accounts/{id}/grants
//	POST   /meter/accounts/{id}/grants          {"amount": "100", "expires_at": "...", "priority": 0, "description": "...", "idempotency_key": "..."}
//	DELETE /meter/accounts/{id}/grants/{grant}  (void: what is left leaves with a grant_void entry)
func (a *adminAPI) grantEndpoints() map[string]adminFunc {
	return map[string]adminFunc{
		"GET /meter/accounts/{id}/grants":            a.listGrants,
		"POST /meter/accounts/{id}/grants":           a.createGrant,
		"DELETE /meter/accounts/{id}/grants/{grant}": a.voidGrant,
	}
}

func grantStore(s meter.Store) (meter.GrantStore, error) {
	gs, ok := meter.StoreAs[meter.GrantStore](s)
	if !ok {
		return nil, meter.Errorf(meter.ECodeMeteringUnavailable, "the store does not keep credit grants")
	}
	return meter.ValidatedGrants(gs), nil
}

func (a *adminAPI) listGrants(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	gs, err := grantStore(s)
	if err != nil {
		return err
	}
	list, err := gs.CreditGrants(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": list})
	return nil
}

func (a *adminAPI) createGrant(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	gs, err := grantStore(s)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	var req struct {
		Amount         *meter.Credits `json:"amount"`
		ExpiresAt      *time.Time     `json:"expires_at"`
		Priority       int64          `json:"priority"`
		Description    string         `json:"description"`
		IdempotencyKey string         `json:"idempotency_key"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Amount == nil || *req.Amount <= 0 {
		return meter.Errorf(meter.ECodeInvalid, "amount is required and must be positive")
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" && req.IdempotencyKey == "" {
		req.IdempotencyKey = k
	}
	g := meter.CreditGrantRequest{AccountID: id, Amount: *req.Amount, Priority: req.Priority,
		Description: req.Description, IdempotencyKey: req.IdempotencyKey}
	if req.ExpiresAt != nil {
		g.ExpiresAt = *req.ExpiresAt
	}
	out, err := gs.CreateCreditGrant(ctx, g)
	if err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"grant": out, "account": acct})
	return nil
}

func (a *adminAPI) voidGrant(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	gs, err := grantStore(s)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	out, err := gs.VoidCreditGrant(ctx, id, r.PathValue("grant"))
	if err != nil {
		return err
	}
	acct, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"grant": out, "account": acct})
	return nil
}
