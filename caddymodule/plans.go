package caddymodule

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// Plans: an account names its plan in its settings (settings.plan); the
// settings in force are its own where set, the plan's elsewhere
// (meter.Settings.Over). Plans come from the config (the Caddyfile's
// `plan` blocks, changed by a reload) or from the store (the admin API's
// PUT /meter/plans/{name}, shared by every gateway on the store); a
// config plan hides a stored one of the same name.
//
// Where the settings in force are resolved: the gateway resolves them when
// it looks up a key (so they are cached with it, key_cache_ttl), and
// writes the limits the stores' atomic steps read (quota, its unit,
// overage cap, low-balance threshold) into the account record when they
// differ from what this gateway last wrote (ApplySettings). The reserve,
// commit and job scripts thus read the plan's quota and cap from the
// account itself, in their one atomic step, with money exact; a plan
// change reaches an account at its next key lookup on any gateway, within
// key_cache_ttl.

// planState is the app's view of plans and what it last applied.
type planState struct {
	config map[string]meter.Plan
	// applied is, per account, the limits this process last wrote (or
	// found) in force: a lookup writes only when they change. Bounded like
	// the key cache.
	mu      sync.Mutex
	applied map[string]meter.Limits
}

func newPlanState(plans []meter.Plan) *planState {
	ps := &planState{config: make(map[string]meter.Plan, len(plans)), applied: map[string]meter.Limits{}}
	for _, p := range plans {
		ps.config[p.Name] = p
	}
	return ps
}

// validatePlans checks the config's plans and default plan.
func (a *App) validatePlans() error {
	seen := map[string]bool{}
	for _, p := range a.Plans {
		if seen[p.Name] {
			return fmt.Errorf("meter: plan %q declared twice", p.Name)
		}
		seen[p.Name] = true
		if err := validatePlan(p); err != nil {
			return fmt.Errorf("meter: %w", err)
		}
	}
	if a.DefaultPlan != "" {
		if err := meter.ValidatePlanName(a.DefaultPlan); err != nil {
			return fmt.Errorf("meter: default_plan: %w", err)
		}
	}
	return nil
}

// validatePlan checks a plan as an account's settings are checked, and
// that it sets no period: an account's periods, and so its usage and
// statements, follow its own time zone and anchor.
func validatePlan(p meter.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.TimeZone != "" || p.PeriodAnchor != "" {
		return meter.Errorf(meter.ECodeInvalid, "plan %q: time_zone and period_anchor are an account's own settings", p.Name)
	}
	return p.Settings.Validate(time.Now())
}

// plan finds a plan by name: the config's, else the store's.
func (a *App) plan(ctx context.Context, name string) (meter.Plan, bool, error) {
	if p, ok := a.plans.config[name]; ok {
		return p, true, nil
	}
	stored, err := a.store.Plans(ctx)
	if err != nil {
		return meter.Plan{}, false, err
	}
	for _, p := range stored {
		if p.Name == name {
			return p, true, nil
		}
	}
	return meter.Plan{}, false, nil
}

// effective returns the settings in force of an account. An account whose
// plan is gone keeps its own settings (and this is logged): a deleted
// plan must not refuse its accounts, nor give them anything.
func (a *App) effective(ctx context.Context, acct meter.Account) (meter.Settings, error) {
	own := acct.Settings
	if own.Plan == "" {
		return own, nil
	}
	p, ok, err := a.plan(ctx, own.Plan)
	if err != nil {
		return meter.Settings{}, err
	}
	if !ok {
		a.logger.Error("account names a plan that does not exist; its own settings apply",
			zap.String("account", acct.ID), zap.String("plan", own.Plan))
		return own, nil
	}
	return own.Over(p.Settings), nil
}

// applyLimits writes an account's limits in force into its record when
// they differ from what this process last knew of it. The quota limit
// and overage cap are read back from the account, so a value written by
// a gateway of another config is corrected too.
func (a *App) applyLimits(ctx context.Context, acct meter.Account, eff meter.Settings) error {
	l := eff.Limits()
	ps := a.plans
	ps.mu.Lock()
	last, known := ps.applied[acct.ID]
	ps.mu.Unlock()
	if known && last == l && acct.Quota.Limit == l.MonthlyQuota && acct.Overage.Cap == l.OverageCap {
		return nil
	}
	if !known && acct.Settings.Plan == "" && acct.Settings.Limits() == l {
		// UpdateSettings wrote the own settings as the limits in force.
		ps.remember(acct.ID, l)
		return nil
	}
	if _, err := a.store.ApplySettings(ctx, acct.ID, nil, l); err != nil {
		return err
	}
	ps.remember(acct.ID, l)
	return nil
}

func (ps *planState) remember(id string, l meter.Limits) {
	ps.mu.Lock()
	if len(ps.applied) >= 100_000 {
		ps.applied = map[string]meter.Limits{}
	}
	ps.applied[id] = l
	ps.mu.Unlock()
}

// forget drops what this process knows of applied limits (a plan changed).
func (ps *planState) forget() {
	ps.mu.Lock()
	ps.applied = map[string]meter.Limits{}
	ps.mu.Unlock()
}

// settingsInForce resolves an account's settings in force and makes its
// record carry their limits.
func (a *App) settingsInForce(ctx context.Context, acct meter.Account) (meter.Settings, error) {
	eff, err := a.effective(ctx, acct)
	if err != nil {
		return meter.Settings{}, err
	}
	return eff, a.applyLimits(ctx, acct, eff)
}
