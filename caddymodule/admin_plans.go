package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/creditgate/creditgate/meter"
)

// planView is a plan as the admin API shows it: where it is defined.
type planView struct {
	meter.Plan
	// Source is "config" (the Caddyfile; change it there) or "store"
	// (made through this API, shared by every gateway on the store).
	Source string `json:"source"`
}

func (a *adminAPI) app() (*App, error) {
	app, err := a.ctx.AppIfConfigured("meter")
	if err != nil {
		return nil, meter.Errorf(meter.ECodeMeteringUnavailable, "the meter app is not configured: add the meter global option")
	}
	return app.(*App), nil
}

// listPlans answers {"plans": [...], "default_plan": "..."}: the config's
// plans, then the store's that no config plan hides, each by name.
func (a *adminAPI) listPlans(ctx context.Context, s meter.PlanStore, w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	views := []planView{}
	for _, p := range app.Plans {
		views = append(views, planView{p, "config"})
	}
	stored, err := s.Plans(ctx)
	if err != nil {
		return err
	}
	for _, p := range stored {
		if _, hidden := app.plans.config[p.Name]; !hidden {
			views = append(views, planView{p, "store"})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"plans": views, "default_plan": app.DefaultPlan})
	return nil
}

func (a *adminAPI) getPlan(ctx context.Context, s meter.PlanStore, w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	p, ok, err := app.plan(ctx, name)
	switch {
	case err != nil:
		return err
	case !ok:
		return meter.Errorf(meter.ECodeNotFound, "no plan %q", name)
	}
	src := "store"
	if _, inConfig := app.plans.config[name]; inConfig {
		src = "config"
	}
	writeJSON(w, http.StatusOK, planView{p, src})
	return nil
}

// putPlan creates or replaces a stored plan with the settings of the body
// (the account settings' fields). Its accounts get it at their next key
// lookup on every gateway (within key_cache_ttl); this gateway's cached
// keys are dropped so it applies here at once.
func (a *adminAPI) putPlan(ctx context.Context, s meter.PlanStore, w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, inConfig := app.plans.config[name]; inConfig {
		return meter.Errorf(meter.ECodeInvalid, "plan %q is declared in the config: change it there and reload", name)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, adminBodyLimit))
	if err != nil {
		return meter.Errorf(meter.ECodeBadRequest, "reading the body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var st meter.Settings
	if err := dec.Decode(&st); err != nil {
		return meter.Errorf(meter.ECodeInvalid, "plan settings: %v", err)
	}
	p := meter.Plan{Name: name, Settings: st}
	if err := validatePlan(p); err != nil {
		return err
	}
	if err := a.checkRates(st.Rates); err != nil {
		return err
	}
	if err := s.PutPlan(ctx, p); err != nil {
		return err
	}
	a.planChanged(app)
	writeJSON(w, http.StatusOK, planView{p, "store"})
	return nil
}

// deletePlan removes a stored plan. Accounts still naming it keep their
// own settings only (and the gateway logs an error for each).
func (a *adminAPI) deletePlan(ctx context.Context, s meter.PlanStore, w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, inConfig := app.plans.config[name]; inConfig {
		return meter.Errorf(meter.ECodeInvalid, "plan %q is declared in the config: remove it there and reload", name)
	}
	if err := s.DeletePlan(ctx, name); err != nil {
		return err
	}
	a.planChanged(app)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "deleted": true})
	return nil
}

// planChanged makes this gateway resolve every account again.
func (a *adminAPI) planChanged(app *App) {
	if app.keys != nil {
		app.keys.dropAll()
	}
	app.plans.forget()
}

// checkPlan refuses settings that name a plan that does not exist.
func (app *App) checkPlan(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if _, ok, err := app.plan(ctx, name); err != nil || !ok {
		if err != nil {
			return err
		}
		return meter.Errorf(meter.ECodeInvalid, "no plan %q (see GET /meter/plans)", name)
	}
	return nil
}

// createOnPlan creates an account on a plan: the given one ("" : none),
// else the default plan. The plan is the account's own setting from then
// on: changing default_plan later moves no existing account.
func (a *adminAPI) createOnPlan(ctx context.Context, s adminAccounts, id string, credits meter.Credits, plan *string) (meter.Account, error) {
	app, err := a.app()
	if err != nil {
		return meter.Account{}, err
	}
	name := app.DefaultPlan
	if plan != nil {
		name = *plan
	}
	if err := app.checkPlan(ctx, name); err != nil {
		return meter.Account{}, err
	}
	acct, err := s.CreateAccount(ctx, id, credits)
	if err != nil || name == "" {
		return acct, err
	}
	own := meter.Settings{Plan: name}
	eff, err := app.effective(ctx, meter.Account{ID: id, Settings: own})
	if err != nil {
		return meter.Account{}, err
	}
	return s.ApplySettings(ctx, id, &own, eff.Limits())
}

// accountView is an account with the settings in force: its own, and
// its plan's where it sets none.
type accountView struct {
	meter.Account
	InForce meter.Settings `json:"settings_in_force"`
}

// inForce resolves the account's settings in force and reads it again
// when it is on a plan, so its quota and cap are the ones in force.
func (a *adminAPI) inForce(ctx context.Context, s adminAccounts, acct meter.Account) (accountView, error) {
	app, err := a.app()
	if err != nil {
		return accountView{}, err
	}
	eff, err := app.settingsInForce(ctx, acct)
	if err != nil {
		return accountView{}, err
	}
	if acct.Settings.Plan != "" {
		if acct, err = s.Account(ctx, acct.ID); err != nil {
			return accountView{}, err
		}
	}
	return accountView{acct, eff}, nil
}
