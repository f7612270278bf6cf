package meter

import (
	"context"
	"maps"
	"regexp"
)

// Plan is a named set of account settings that many accounts share. An
// account names its plan in Settings.Plan; its own settings override the
// plan's field by field (see Settings.Over), so a plan changed in one
// place reaches every account on it. A plan holds no credits: changing or
// switching one never changes what was granted.
type Plan struct {
	Name string `json:"name"`
	Settings
}

// PlanStore keeps the plans made through the admin API, shared by every
// gateway on the store, and the limits in force of each account.
type PlanStore interface {
	// ApplySettings sets an account's limits in force (quota, its unit,
	// overage cap, low-balance threshold: what the atomic steps read) and,
	// when own is not nil, replaces its own settings, in one atomic step.
	// The limits apply at once, to the current period too.
	ApplySettings(ctx context.Context, id string, own *Settings, l Limits) (Account, error)
	// PutPlan creates or replaces a plan.
	PutPlan(ctx context.Context, p Plan) error
	// DeletePlan removes a plan. ECodeNotFound if there is none.
	DeletePlan(ctx context.Context, name string) error
	// Plans returns every stored plan, by name.
	Plans(ctx context.Context) ([]Plan, error)
}

// Limits are the settings a store applies inside its atomic steps: they
// are kept apart from the account's own settings because they are the
// effective ones (the plan's, unless the account overrides them).
type Limits struct {
	MonthlyQuota        Credits
	QuotaUnit           string
	OverageCap          Credits
	LowBalanceThreshold Credits
}

// Limits returns the store limits of settings.
func (s Settings) Limits() Limits {
	return Limits{MonthlyQuota: s.MonthlyQuota, QuotaUnit: s.QuotaUnit, OverageCap: s.OverageCap,
		LowBalanceThreshold: s.LowBalanceThreshold}
}

// Validate checks the limits' amounts.
func (l Limits) Validate() error {
	return Settings{MonthlyQuota: l.MonthlyQuota, OverageCap: l.OverageCap}.ValidateAmounts()
}

// Over returns the settings in force for an account whose own settings are
// s on plan p: each field of s that is set (not zero; Enabled not nil)
// wins, the plan's applies otherwise; rates merge by name, the account's
// winning. The webhook and the plan's name are the account's alone.
func (s Settings) Over(p Settings) Settings {
	e := s
	if e.Enabled == nil {
		e.Enabled = p.Enabled
	}
	if len(p.Rates) > 0 {
		e.Rates = maps.Clone(p.Rates)
		maps.Copy(e.Rates, s.Rates)
	}
	or := func(own *int, plan int) {
		if *own == 0 {
			*own = plan
		}
	}
	orc := func(own *Credits, plan Credits) {
		if *own == 0 {
			*own = plan
		}
	}
	ors := func(own *string, plan string) {
		if *own == "" {
			*own = plan
		}
	}
	or(&e.PageLimit, p.PageLimit)
	or(&e.RetentionDays, p.RetentionDays)
	orc(&e.MonthlyQuota, p.MonthlyQuota)
	orc(&e.OverageCap, p.OverageCap)
	orc(&e.LowBalanceThreshold, p.LowBalanceThreshold)
	ors(&e.QuotaUnit, p.QuotaUnit)
	ors(&e.TimeZone, p.TimeZone)
	ors(&e.PeriodAnchor, p.PeriodAnchor)
	return e
}

var planName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidatePlanName checks a plan's name: 1 to 64 lowercase letters,
// digits, '-' or '_', starting with a letter or digit.
func ValidatePlanName(name string) error {
	if !planName.MatchString(name) {
		return invalid("plan name %q: use 1 to 64 lowercase letters, digits, - or _", name)
	}
	return nil
}

// Validate checks what a store can check of a plan: its name, amounts, and
// that it names no webhook or plan (an account's own).
func (p Plan) Validate() error {
	if err := ValidatePlanName(p.Name); err != nil {
		return err
	}
	if p.Plan != "" || p.WebhookURL != "" || p.WebhookSecret != "" {
		return invalid("plan %q: plan, webhook_url and webhook_secret are an account's own settings", p.Name)
	}
	return p.ValidateAmounts()
}
