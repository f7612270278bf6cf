package caddymodule

import (
	"context"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// Admin endpoints beyond create/read/update: listings, revocation,
// refunds, usage and ledger trimming.

func (a *adminAPI) listAccounts(ctx context.Context, s adminAccounts, w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return meter.Errorf(meter.ECodeInvalid, "limit must be between 1 and 1000")
		}
		limit = n
	}
	ids, err := s.ListAccounts(ctx, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	accounts := make([]meter.Account, 0, len(ids))
	for _, id := range ids {
		acct, err := s.Account(ctx, id)
		if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
			continue // indexed, then removed
		}
		if err != nil {
			return err
		}
		accounts = append(accounts, acct)
	}
	page := map[string]any{"data": accounts, "has_more": len(ids) == limit}
	if len(ids) == limit {
		page["next_cursor"] = ids[len(ids)-1]
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *adminAPI) listKeys(ctx context.Context, s adminKeys, w http.ResponseWriter, r *http.Request) error {
	keys, err := s.ListKeys(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": keys})
	return nil
}

func (a *adminAPI) revokeKey(ctx context.Context, s adminKeys, w http.ResponseWriter, r *http.Request) error {
	k, err := s.RevokeKey(ctx, r.PathValue("id"), r.PathValue("key"))
	if err != nil {
		return err
	}
	a.dropCached(r.PathValue("id"))
	writeJSON(w, http.StatusOK, k)
	return nil
}

// trim removes ledger entries older than "before" (a date or RFC 3339
// time); balances are unchanged.
func (a *adminAPI) trim(ctx context.Context, s adminLedger, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Before string `json:"before"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	before, err := dateParam(req.Before, false)
	if err != nil || before.IsZero() {
		return meter.Errorf(meter.ECodeInvalid, "before is required: a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	n, err := s.TrimLedger(ctx, r.PathValue("id"), before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": n})
	return nil
}

// refund gives back (part of) a usage entry: {"entry_id": "...",
// "amount": 2, "description": "..."}; no amount refunds all of it.
func (a *adminAPI) refund(ctx context.Context, s adminMoney, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		EntryID     string        `json:"entry_id"`
		Amount      meter.Credits `json:"amount"`
		Description string        `json:"description"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.EntryID == "" || req.Amount < 0 {
		return meter.Errorf(meter.ECodeInvalid, "entry_id is required and amount must not be negative")
	}
	e, err := s.Refund(ctx, meter.Refund{AccountID: r.PathValue("id"), EntryID: req.EntryID, Amount: req.Amount, Description: req.Description})
	if err != nil {
		return err
	}
	a.logMoney(e)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (a *adminAPI) usage(ctx context.Context, s adminUsage, w http.ResponseWriter, r *http.Request) error {
	acct, err := s.Account(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if r.URL.Query().Has("granularity") {
		rep, err := seriesFor(ctx, s, r, acct.ID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	rep, err := usageFor(ctx, s, r, acct)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (a *adminAPI) getJob(ctx context.Context, s meter.JobStore, w http.ResponseWriter, r *http.Request) error {
	j, err := findJob(ctx, s, r.PathValue("id"), r.PathValue("job"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// cancelJob releases a job's hold: for a job whose upstream will never
// report again (the submission's answer was lost, the upstream dropped
// it).
func (a *adminAPI) cancelJob(ctx context.Context, s meter.JobStore, w http.ResponseWriter, r *http.Request) error {
	j, err := findJob(ctx, s, r.PathValue("id"), r.PathValue("job"))
	if err != nil {
		return err
	}
	res, err := s.CancelJob(ctx, j.AccountID, j.ID)
	if err != nil {
		return err
	}
	a.ctx.Logger().Info("job canceled", zap.String("account", j.AccountID), zap.String("job", j.ID),
		zap.Stringer("released", j.Reserved))
	writeJSON(w, http.StatusOK, res.Job)
	return nil
}
