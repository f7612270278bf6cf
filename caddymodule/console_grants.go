package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// The console's credit grant actions (docs/grants.md): "creditgrant"
// grants credits that may expire, "voidgrant" ends one. Like the other
// actions they are confirmed first and carry the form's idempotency key
// (a retried creditgrant grants once in the store).
func (c *Console) grantAction(r *http.Request, a *consoleAction, id, reason, desc string) (*consoleAction, error) {
	f := r.PostForm
	gs, err := grantStore(c.app.Store())
	if err != nil {
		return nil, err
	}
	back := c.Prefix + "/accounts/" + url.PathEscape(id)
	if reason == "" || len(reason) > 200 {
		return nil, meter.Errorf(meter.ECodeInvalid, "a reason is required (at most 200 characters)")
	}
	a.Fields.Set("reason", reason)
	if a.Name == "voidgrant" {
		g := strings.TrimSpace(f.Get("grant"))
		if g == "" {
			return nil, meter.Errorf(meter.ECodeInvalid, "the grant to void is required")
		}
		a.Fields.Set("grant", g)
		a.Summary = fmt.Sprintf("Void credit grant %s of account %s: what it has left leaves the balance. Reason: %s", g, id, reason)
		a.do = func() (actionOutcome, error) {
			if _, err := gs.VoidCreditGrant(r.Context(), id, g); err != nil {
				return actionOutcome{}, err
			}
			c.logger.Info("console credit grant voided", zap.String("account", id), zap.String("grant", g), zap.String("by", operator(r)))
			return actionOutcome{Redirect: back + "?done=" + url.QueryEscape(g) + "#credit-grants"}, nil
		}
		return a, nil
	}
	amount, err := meter.ParseCredits(strings.TrimSpace(f.Get("amount")))
	if err != nil || amount <= 0 {
		return nil, meter.Errorf(meter.ECodeInvalid, "amount %q: a positive number of credits", f.Get("amount"))
	}
	req := meter.CreditGrantRequest{AccountID: id, Amount: amount, Description: desc}
	expiry := "never expires"
	if v := strings.TrimSpace(f.Get("expires")); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, meter.Errorf(meter.ECodeInvalid, "expires %q: a date YYYY-MM-DD (its start, UTC) or RFC 3339", v)
			}
		}
		req.ExpiresAt = t
		a.Fields.Set("expires", v)
		expiry = "expires " + t.UTC().Format(time.RFC3339)
	}
	if v := strings.TrimSpace(f.Get("priority")); v != "" {
		p, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, meter.Errorf(meter.ECodeInvalid, "priority %q: a whole number (higher is spent first)", v)
		}
		req.Priority = p
		a.Fields.Set("priority", v)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	a.Fields.Set("amount", amount.String())
	a.Summary = fmt.Sprintf("Grant %s credits to account %s, spent before its paid balance, priority %d, %s. Reason: %s",
		amount, id, req.Priority, expiry, reason)
	req.IdempotencyKey = "console:" + a.Fields.Get("idem")
	a.do = func() (actionOutcome, error) {
		g, err := gs.CreateCreditGrant(r.Context(), req)
		if err != nil {
			return actionOutcome{}, err
		}
		c.logger.Info("console credit grant", zap.String("account", id), zap.String("grant", g.ID), zap.String("amount", amount.String()),
			zap.String("by", operator(r)))
		return actionOutcome{Redirect: back + "?done=" + url.QueryEscape(g.ID) + "#credit-grants"}, nil
	}
	return a, nil
}
