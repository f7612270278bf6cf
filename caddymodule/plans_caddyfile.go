package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/creditgate/creditgate/meter"
)

// unmarshalPlan parses a plan of the meter global option:
//
//	plan <name> {
//		monthly_quota         <credits>
//		quota_unit            <word>
//		overage_cap           <credits>
//		rate                  <name> <credits>   (repeatable)
//		page_limit            <pages>
//		low_balance_threshold <credits>
//		retention_days        <days>
//		enabled               true|false
//	}
//
// Each is the account setting of the same name (see meter.Settings); an
// account's own setting, when set, wins over its plan's.
func (a *App) unmarshalPlan(d *caddyfile.Dispenser) error {
	name, err := oneArg(d)
	if err != nil {
		return err
	}
	if err := meter.ValidatePlanName(name); err != nil {
		return d.Errf("meter: %v", err)
	}
	for _, p := range a.Plans {
		if p.Name == name {
			return d.Errf("meter: plan %q declared twice", name)
		}
	}
	p := meter.Plan{Name: name}
	seen := map[string]bool{}
	credits := func(sub string) (meter.Credits, error) {
		v, err := oneArg(d)
		if err != nil {
			return 0, err
		}
		c, err := meter.ParseCredits(v)
		if err != nil || c < 0 {
			return 0, d.Errf("meter: plan %s: %s: expected a non-negative amount of credits, got %q", name, sub, v)
		}
		return c, nil
	}
	count := func(sub string) (int, error) {
		v, err := oneArg(d)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, d.Errf("meter: plan %s: %s: expected a whole number, got %q", name, sub, v)
		}
		return n, nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "rate" {
			return d.Errf("meter: plan %s: %s given more than once", name, sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "monthly_quota":
			p.MonthlyQuota, err = credits(sub)
		case "quota_unit":
			p.QuotaUnit, err = oneArg(d)
		case "overage_cap":
			p.OverageCap, err = credits(sub)
		case "low_balance_threshold":
			p.LowBalanceThreshold, err = credits(sub)
		case "page_limit":
			p.PageLimit, err = count(sub)
		case "retention_days":
			p.RetentionDays, err = count(sub)
		case "rate":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("meter: plan %s: rate takes a name and an amount: rate drawing 8", name)
			}
			c, cerr := meter.ParseCredits(args[1])
			if cerr != nil || c < 0 {
				return d.Errf("meter: plan %s: rate %s: expected a non-negative amount of credits, got %q", name, args[0], args[1])
			}
			if _, dup := p.Rates[args[0]]; dup {
				return d.Errf("meter: plan %s: rate %s given more than once", name, args[0])
			}
			if p.Rates == nil {
				p.Rates = map[string]meter.Credits{}
			}
			p.Rates[args[0]] = c
		case "enabled":
			var v string
			if v, err = oneArg(d); err == nil {
				b, perr := strconv.ParseBool(v)
				if perr != nil {
					return d.Errf("meter: plan %s: enabled: expected true or false, got %q", name, v)
				}
				p.Enabled = &b
			}
		default:
			return d.Errf("meter: plan %s: unknown setting %q (expected monthly_quota, quota_unit, overage_cap, rate, page_limit, low_balance_threshold, retention_days or enabled)", name, sub)
		}
		if err != nil {
			return err
		}
	}
	if err := validatePlan(p); err != nil {
		return d.Errf("meter: %v", err)
	}
	a.Plans = append(a.Plans, p)
	return nil
}
