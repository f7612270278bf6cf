package caddymodule

import (
	"context"
	"net/http"
	"strconv"

	"github.com/creditgate/creditgate/meter"
)

// The payment review queue on the admin API (see meter_stripe):
//
//	GET  /meter/stripe/review?status=pending|applied|dismissed&limit=
//	POST /meter/stripe/review/{id}/apply    {"account": "...", "credits": "100", "note": "..."}
//	POST /meter/stripe/review/{id}/dismiss  {"note": "..."}
func (a *adminAPI) stripeEndpoints() map[string]adminFunc {
	return map[string]adminFunc{
		"GET /meter/stripe/review":               a.reviewList,
		"POST /meter/stripe/review/{id}/apply":   a.reviewApply,
		"POST /meter/stripe/review/{id}/dismiss": a.reviewDismiss,
	}
}

func adminPayments(s meter.Store) (meter.PaymentStore, error) {
	ps, ok := paymentStore(s)
	if !ok {
		return nil, meter.Errorf(meter.ECodeMeteringUnavailable, "the store does not keep payments")
	}
	return ps, nil
}

func (a *adminAPI) reviewList(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	ps, err := adminPayments(s)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", meter.ReviewPending, meter.ReviewApplied, meter.ReviewDismissed, "all":
	default:
		return meter.Errorf(meter.ECodeInvalid, "status %q: use pending, applied, dismissed or all", status)
	}
	if status == "" {
		status = meter.ReviewPending
	} else if status == "all" {
		status = ""
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return meter.Errorf(meter.ECodeInvalid, "limit %q: 1 to 1000", v)
		}
	}
	items, err := ps.ReviewItems(ctx, status, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// reviewApply applies a held event: a purchase to the account the
// operator names (with the credits the operator gives, or those the event
// mapped), a refund to the payment it names, once. The item is claimed
// for the account before the purchase, so that two operators cannot
// credit two accounts; a retried apply to the same account replays.
func (a *adminAPI) reviewApply(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	ps, err := adminPayments(s)
	if err != nil {
		return err
	}
	var req struct {
		Account string         `json:"account"`
		Credits *meter.Credits `json:"credits"`
		Note    string         `json:"note"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	it, err := ps.ReviewItem(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if it.Status != meter.ReviewPending && (it.Status != meter.ReviewApplied || (it.Kind == meter.ReviewPurchase && it.AppliedTo != req.Account)) {
		return meter.Errorf(meter.ECodeReviewResolved, "review item %q is already %s", it.ID, it.Status)
	}
	if it.Kind == meter.ReviewRefund {
		return a.applyRefund(ctx, ps, w, it, req.Note)
	}
	credits := it.Credits
	if req.Credits != nil {
		credits = *req.Credits
	}
	switch {
	case credits <= 0:
		return meter.Errorf(meter.ECodeInvalid, "the event named no credits: give \"credits\"")
	case it.PaymentIntentID == "":
		return meter.Errorf(meter.ECodeInvalid, "the session has no payment intent: add its credits with POST /meter/accounts/{id}/credits")
	}
	if err := meter.ValidateAccountID(req.Account); err != nil {
		return err
	}
	if _, err := s.Account(ctx, req.Account); err != nil {
		return err
	}
	if rec, err := ps.Payment(ctx, it.PaymentIntentID); err == nil && rec.AccountID != req.Account {
		return meter.Errorf(meter.ECodeReviewResolved, "payment %s was applied to account %q already", it.PaymentIntentID, rec.AccountID)
	}
	if _, err := ps.ResolveReview(ctx, it.ID, meter.ReviewApplied, req.Account, req.Note); err != nil {
		return err
	}
	res, err := ps.Purchase(ctx, meter.Payment{AccountID: req.Account, Key: it.SessionID, PaymentIntentID: it.PaymentIntentID,
		ExternalID: it.EventID, Credits: credits, AmountPaid: it.Amount, Currency: it.Currency,
		Description: "Stripe Checkout " + it.SessionID + " (reviewed)"})
	if err != nil {
		return err
	}
	if !res.Replayed {
		a.logMoney(res.Entry)
	}
	it, err = ps.ReviewItem(ctx, it.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": it, "entry": res.Entry, "replayed": res.Replayed})
	return nil
}

func (a *adminAPI) applyRefund(ctx context.Context, ps meter.PaymentStore, w http.ResponseWriter, it meter.ReviewItem, note string) error {
	rec, err := ps.Payment(ctx, it.PaymentIntentID)
	if err != nil {
		return err
	}
	if _, err := ps.ResolveReview(ctx, it.ID, meter.ReviewApplied, rec.AccountID, note); err != nil {
		return err
	}
	rv, err := reversePayment(ctx, ps, rec, it.Amount, it.AmountRefunded, it.EventID)
	if err != nil {
		return err
	}
	if rv.Entry.ID != "" {
		a.logMoney(rv.Entry)
	}
	it, err = ps.ReviewItem(ctx, it.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": it, "entry": rv.Entry, "reversed": rv.Taken})
	return nil
}

func (a *adminAPI) reviewDismiss(ctx context.Context, s meter.Store, w http.ResponseWriter, r *http.Request) error {
	ps, err := adminPayments(s)
	if err != nil {
		return err
	}
	var req struct {
		Note string `json:"note"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	it, err := ps.ResolveReview(ctx, r.PathValue("id"), meter.ReviewDismissed, "", req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": it})
	return nil
}
