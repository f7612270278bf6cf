package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// The console's actions. Each is a form that carries an idempotency key
// made when the form was rendered; the first POST shows a confirmation
// page, the confirmed POST acts once: grants carry the key to the store
// (Grant.IdempotencyKey), a refund is at most once per entry in the store,
// and every confirmed form's outcome is remembered here, so a resubmitted
// form shows what was done instead of doing it again.

// consoleAction is a validated action, ready to confirm or perform.
type consoleAction struct {
	Name    string // grant, refund, key, revoke, enable, creditgrant, voidgrant
	Summary string // what will happen, on the confirmation page
	Fields  url.Values
	do      func() (actionOutcome, error)
}

func newFormKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func validFormKey(k string) bool {
	if len(k) < 16 || len(k) > 64 {
		return false
	}
	for _, r := range k {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func (c *Console) action(w http.ResponseWriter, r *http.Request) {
	if err := c.csrf.Check(r); err != nil {
		c.fail(w, r, meter.Errorf(meter.ECodeForbidden, "cross-origin form submissions are refused"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, meter.Errorf(meter.ECodeBadRequest, "unreadable form"))
		return
	}
	id, name, idem := r.PathValue("id"), r.PathValue("action"), r.PostForm.Get("idem")
	if !validFormKey(idem) {
		c.fail(w, r, meter.Errorf(meter.ECodeInvalid, "the form has no idempotency key: reload the account page"))
		return
	}
	back := c.Prefix + "/accounts/" + url.PathEscape(id)
	logKey := id + "\x00" + name + "\x00" + idem
	if o, ok := c.done.get(logKey); ok {
		c.already(w, r, back, o)
		return
	}
	ctx, cancel := c.storeCtx(r)
	defer cancel()
	if _, err := c.app.Store().Account(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.buildAction(r, id, name, idem)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		c.render(w, http.StatusOK, "confirm.html", map[string]any{
			"P": c.Prefix, "Title": "Confirm", "A": a, "Account": id, "Back": back,
			"Action": back + "/" + name,
		})
		return
	}
	o, err := c.once(ctx, logKey, a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if o.replayed {
		c.done.put(logKey, o)
		c.already(w, r, back, o)
		return
	}
	c.done.put(logKey, o)
	if c.app.keys != nil && (name == "revoke" || name == "enable") {
		c.app.keys.dropAccount(id)
	}
	if o.Secret != "" {
		// The secret is in this response only: never in a URL, a log or
		// a later page.
		c.render(w, http.StatusCreated, "key.html", map[string]any{
			"P": c.Prefix, "Title": "New key", "Account": id, "KeyID": o.KeyID, "Secret": o.Secret, "Back": back,
		})
		return
	}
	http.Redirect(w, r, o.Redirect, http.StatusSeeOther)
}

// already answers a resubmitted form with what its first submission did.
func (c *Console) already(w http.ResponseWriter, r *http.Request, back string, o actionOutcome) {
	if o.KeyID == "" {
		http.Redirect(w, r, o.Redirect, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "key.html", map[string]any{
		"P": c.Prefix, "Title": "Key already created", "Account": r.PathValue("id"), "KeyID": o.KeyID, "Back": back,
	})
}

// operator names the authenticated console user, for the ledger and logs.
func operator(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if u := repl.ReplaceAll("{http.auth.user.id}", ""); u != "" {
			return u
		}
	}
	return "console"
}

func (c *Console) buildAction(r *http.Request, id, name, idem string) (*consoleAction, error) {
	f := r.PostForm
	s := c.app.Store()
	back := c.Prefix + "/accounts/" + url.PathEscape(id)
	a := &consoleAction{Name: name, Fields: url.Values{"idem": {idem}}}
	reason := strings.TrimSpace(f.Get("reason"))
	needReason := func() error {
		if reason == "" || len(reason) > 200 {
			return meter.Errorf(meter.ECodeInvalid, "a reason is required (at most 200 characters)")
		}
		a.Fields.Set("reason", reason)
		return nil
	}
	desc := fmt.Sprintf("%s (by %s)", reason, operator(r))
	switch name {
	case "grant":
		typ := f.Get("type")
		amount, err := meter.ParseCredits(strings.TrimSpace(f.Get("amount")))
		if err != nil || amount == 0 {
			return nil, meter.Errorf(meter.ECodeInvalid, "amount %q: a number of credits, not 0", f.Get("amount"))
		}
		switch {
		case typ == meter.EntryPurchase && amount < 0:
			return nil, meter.Errorf(meter.ECodeInvalid, "a grant must be positive; use an adjustment to remove credits")
		case typ != meter.EntryPurchase && typ != meter.EntryAdjustment:
			return nil, meter.Errorf(meter.ECodeInvalid, "type %q: use purchase or adjustment", typ)
		}
		if err := needReason(); err != nil {
			return nil, err
		}
		a.Fields.Set("type", typ)
		a.Fields.Set("amount", amount.String())
		verb := "Grant"
		if typ == meter.EntryAdjustment {
			verb = "Adjust by"
		}
		a.Summary = fmt.Sprintf("%s %s credits (%s) on account %s. Reason: %s", verb, amount, typ, id, reason)
		a.do = func() (actionOutcome, error) {
			e, err := s.Grant(r.Context(), meter.Grant{AccountID: id, Amount: amount, Type: typ,
				Description: desc, IdempotencyKey: "console:" + idem})
			if err != nil {
				return actionOutcome{}, err
			}
			c.logMoney(r, e)
			return actionOutcome{Redirect: back + "?done=" + url.QueryEscape(e.ID) + "#ledger"}, nil
		}
	case "refund":
		entry := strings.TrimSpace(f.Get("entry"))
		var amount meter.Credits
		if v := strings.TrimSpace(f.Get("amount")); v != "" {
			var err error
			if amount, err = meter.ParseCredits(v); err != nil || amount < 0 {
				return nil, meter.Errorf(meter.ECodeInvalid, "amount %q: a positive number of credits, or empty for all", v)
			}
		}
		if entry == "" {
			return nil, meter.Errorf(meter.ECodeInvalid, "the usage entry to refund is required")
		}
		if err := needReason(); err != nil {
			return nil, err
		}
		a.Fields.Set("entry", entry)
		what := "all it charged"
		if amount > 0 {
			what = amount.String() + " credits"
			a.Fields.Set("amount", amount.String())
		}
		a.Summary = fmt.Sprintf("Refund %s of usage entry %s on account %s. Reason: %s", what, entry, id, reason)
		a.do = func() (actionOutcome, error) {
			e, err := s.Refund(r.Context(), meter.Refund{AccountID: id, EntryID: entry, Amount: amount, Description: desc})
			if err != nil {
				return actionOutcome{}, err
			}
			c.logMoney(r, e)
			return actionOutcome{Redirect: back + "?done=" + url.QueryEscape(e.ID) + "#ledger"}, nil
		}
	case "key":
		mode, err := meter.ParseMode(f.Get("mode"))
		if err != nil {
			return nil, err
		}
		a.Fields.Set("mode", string(mode))
		a.Summary = fmt.Sprintf("Create a %s key for account %s. Its secret is shown once, on the next page.", mode, id)
		a.do = func() (actionOutcome, error) {
			secret, k := meter.NewKey(id, mode)
			k.ID = meter.KeyID(k.Hash)
			k.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
			if err := s.AddKey(r.Context(), k); err != nil {
				return actionOutcome{}, err
			}
			c.logger.Info("console key created", zap.String("account", id), zap.String("key", k.ID), zap.String("by", operator(r)))
			return actionOutcome{KeyID: k.ID, Secret: secret}, nil
		}
	case "revoke":
		key := f.Get("key")
		if key == "" {
			return nil, meter.Errorf(meter.ECodeInvalid, "the key to revoke is required")
		}
		a.Fields.Set("key", key)
		a.Summary = fmt.Sprintf("Revoke key %s of account %s. Requests with it are refused within the key cache's TTL.", key, id)
		a.do = func() (actionOutcome, error) {
			if _, err := s.RevokeKey(r.Context(), id, key); err != nil {
				return actionOutcome{}, err
			}
			c.logger.Info("console key revoked", zap.String("account", id), zap.String("key", key), zap.String("by", operator(r)))
			return actionOutcome{Redirect: back + "?done=" + url.QueryEscape(key) + "#keys"}, nil
		}
	case "enable":
		on, err := strconv.ParseBool(f.Get("enabled"))
		if err != nil {
			return nil, meter.Errorf(meter.ECodeInvalid, "enabled must be true or false")
		}
		a.Fields.Set("enabled", strconv.FormatBool(on))
		a.Summary = fmt.Sprintf("Enable account %s.", id)
		if !on {
			a.Summary = fmt.Sprintf("Disable account %s: every request with its keys gets 403 account_disabled.", id)
		}
		a.do = func() (actionOutcome, error) {
			acct, err := s.Account(r.Context(), id)
			if err != nil {
				return actionOutcome{}, err
			}
			st := acct.Settings
			st.Enabled = &on
			if on {
				st.Enabled = nil // the default
			}
			// As the admin API's PATCH: the own settings and the limits in
			// force (the plan's where the account sets none), in one step.
			eff, err := c.app.effective(r.Context(), meter.Account{ID: id, Settings: st})
			if err != nil {
				return actionOutcome{}, err
			}
			if _, err := s.ApplySettings(r.Context(), id, &st, eff.Limits()); err != nil {
				return actionOutcome{}, err
			}
			c.app.plans.remember(id, eff.Limits())
			c.logger.Info("console account enabled", zap.String("account", id), zap.Bool("enabled", on), zap.String("by", operator(r)))
			return actionOutcome{Redirect: back + "?done=settings"}, nil
		}
	case "creditgrant", "voidgrant":
		return c.grantAction(r, a, id, reason, desc)
	default:
		return nil, meter.Errorf(meter.ECodeNotFound, "unknown action %q", name)
	}
	return a, nil
}

func (c *Console) logMoney(r *http.Request, e meter.LedgerEntry) {
	c.logger.Info("ledger entry", zap.String("account", e.AccountID), zap.String("entry", e.ID),
		zap.String("type", e.Type), zap.Stringer("amount", e.Amount), zap.Stringer("balance_after", e.BalanceAfter),
		zap.String("refund_of", e.RefundOf), zap.String("by", operator(r)))
}

// onceTTL is how long a confirmed form's outcome is kept in the store;
// onceClaim how long a claim waits for an action that never reports
// (its gateway stopped mid-action) before a resubmission may act.
const (
	onceTTL   = 30 * 24 * time.Hour
	onceClaim = 10 * time.Minute
)

// once performs a confirmed action once across gateways and restarts: a
// claim in the store keyed by the form's idempotency key, then the
// outcome (never the secret) in its place. A failed action frees the
// claim. Stores without the rollup keep the outcome in memory only.
func (c *Console) once(ctx context.Context, logKey string, a *consoleAction) (actionOutcome, error) {
	rs, ok := rollupOf(c.app.Store())
	if !ok {
		return a.do()
	}
	key := "console:" + strings.ReplaceAll(logKey, "\x00", ":")
	v, claimed, err := rs.ClaimOnce(ctx, key, onceClaim)
	if err != nil {
		return actionOutcome{}, err
	}
	if !claimed {
		var o actionOutcome
		if v == "" || json.Unmarshal([]byte(v), &o) != nil {
			return o, meter.Errorf(meter.ECodeIdempotencyConflict, "this form is being submitted already: reload the account page in a moment")
		}
		o.replayed = true
		return o, nil
	}
	o, err := a.do()
	if err != nil {
		_ = rs.DropOnce(context.WithoutCancel(ctx), key)
		return o, err
	}
	b, _ := json.Marshal(o)
	if err := rs.SetOnce(context.WithoutCancel(ctx), key, string(b), onceTTL); err != nil {
		c.logger.Error("console action outcome not stored", zap.String("key", key), zap.Error(err))
	}
	return o, nil
}
