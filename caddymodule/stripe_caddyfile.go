package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/creditgate/creditgate/meter"
)

// UnmarshalCaddyfile sets up the Stripe endpoint from Caddyfile tokens.
// Syntax:
//
//	meter_stripe {
//		secret    <whsec_... or {env.NAME}>
//		tolerance <duration>
//		account   client_reference_id|metadata.<key>...
//		credits   metadata.<key>
//		amount    <currency> <amount_total> <credits>   (repeatable)
//	}
func (s *Stripe) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] && name != "amount" {
			return d.Errf("meter_stripe: %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "secret":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			s.Secret = v
		case "tolerance":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || dur > 24*time.Hour {
				return d.Errf("meter_stripe: tolerance %q: use a duration up to 24h, e.g. 5m", v)
			}
			s.Tolerance = caddy.Duration(dur)
		case "account":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("meter_stripe: account needs client_reference_id or metadata.<key>")
			}
			for _, a := range args {
				if err := checkAccountSource(a); err != nil {
					return d.Errf("meter_stripe: %v", err)
				}
			}
			s.Account = args
		case "credits":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			k, ok := strings.CutPrefix(v, "metadata.")
			if !ok || k == "" {
				return d.Errf("meter_stripe: credits %q: use metadata.<key>", v)
			}
			s.CreditsMetadata = k
		case "amount":
			args := d.RemainingArgs()
			if len(args) != 3 {
				return d.Errf("meter_stripe: amount takes <currency> <amount_total> <credits>, e.g. usd 1000 100")
			}
			amt, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || amt <= 0 {
				return d.Errf("meter_stripe: amount %q: the amount_total in the currency's smallest unit (1000 is $10.00)", args[1])
			}
			c, err := meter.ParseCredits(args[2])
			if err != nil || c <= 0 {
				return d.Errf("meter_stripe: amount credits %q: a positive number of credits", args[2])
			}
			cur := args[0]
			if cur != strings.ToLower(cur) || len(cur) != 3 {
				return d.Errf("meter_stripe: amount currency %q: a lower-case ISO code, as Stripe sends it (usd)", cur)
			}
			for _, a := range s.Amounts {
				if a.Currency == cur && a.Amount == amt {
					return d.Errf("meter_stripe: amount %s %d given twice", cur, amt)
				}
			}
			s.Amounts = append(s.Amounts, StripeAmount{Currency: cur, Amount: amt, Credits: c})
		default:
			return d.Errf("meter_stripe: unknown subdirective %q", name)
		}
	}
	if s.Secret == "" {
		return d.Errf("meter_stripe: secret is required")
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Stripe)(nil)
