package caddymodule

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
)

// pricingSubdirectives are the meter subdirectives that add a pricing
// rule. Unlike the others they may repeat: a route's price is the sum of
// its rules.
var pricingSubdirectives = map[string]bool{
	"per_page": true, "blocks": true, "tiers": true, "per_call": true,
	"json": true, "per_unit": true,
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// unmarshalPricing parses one pricing subdirective into h.Rules and
// reports whether the current token was one. Syntax (see docs/pricing.md):
//
//	per_page [<name>] <credits> [<response options>]
//	per_page {
//		<class> <credits> [larger_than <size>]
//		...
//	}
//	blocks   [<name>] <pages> <credits> [per_file|per_request] [<response options>]
//	tiers    [<name>] <up_to>:<credits>... *:<credits> [per_file|per_request] [<response options>]
//	per_call [<name>] <credits>
//	json     <name> <credits> [part <field>] <query>...
//	per_unit [<name>] <credits> header <field> <reserve>
//
// where <response options> are `output` or `header <field>`, then
// `reserve <n>` or `reserve input` (the estimate that is reserved; the
// real count is charged), then optionally `at_least <n>` (the smallest
// count held when the account cannot hold the estimate) or `ceiling` (the
// reservation is the most charged).
//
// Each rule is compiled as it is read, so a bad rule is reported at its
// own line.
func (h *Handler) unmarshalPricing(d *caddyfile.Dispenser) (bool, error) {
	kind := d.Val()
	if !pricingSubdirectives[kind] {
		return false, nil
	}
	spec, err := parseRule(d, kind)
	if err != nil {
		return true, err
	}
	for _, prev := range h.Rules {
		if spec.Name == "" && prev.Name == "" && sameKind(prev, spec) && spec.PageClasses == nil {
			// Two unnamed rules of a kind would be one line name twice.
			return true, d.Errf("meter: name one of them (%s <name> ...): %s given more than once", kind, kind)
		}
	}
	h.Rules = append(h.Rules, spec)
	if _, err := pricing.Compile(h.Rules); err != nil {
		h.Rules = h.Rules[:len(h.Rules)-1]
		return true, d.Errf("meter: %s: %v", kind, err)
	}
	return true, nil
}

func sameKind(a, b pricing.Spec) bool {
	return (a.PerPage != nil) == (b.PerPage != nil) && a.Output == b.Output &&
		(a.Blocks != nil) == (b.Blocks != nil) && (a.Tiers != nil) == (b.Tiers != nil) &&
		(a.PerCall != nil) == (b.PerCall != nil) && (a.PerUnit != nil) == (b.PerUnit != nil)
}

func parseRule(d *caddyfile.Dispenser, kind string) (pricing.Spec, error) {
	var s pricing.Spec
	args := d.RemainingArgs()
	nesting := d.Nesting()
	if kind == "per_page" && len(args) == 0 && d.NextBlock(nesting) {
		return parseClasses(d, nesting)
	}
	if d.NextBlock(nesting) {
		return s, d.Errf("meter: %s takes no block", kind)
	}
	if len(args) == 0 {
		return s, d.Errf("meter: %s needs a value", kind)
	}
	// An optional line name first: names start with a letter, amounts do not.
	if len(args) > 1 && ruleNameRE.MatchString(args[0]) {
		s.Name, args = args[0], args[1:]
	}
	if kind == "json" && s.Name == "" {
		return s, d.Errf("meter: json: expected `json <name> <credits> <query>...`")
	}
	amount := func(what string) (meter.Credits, error) {
		if len(args) == 0 {
			return 0, d.Errf("meter: %s: missing %s", kind, what)
		}
		c, err := meter.ParseCredits(args[0])
		if err != nil || c < 0 {
			return 0, d.Errf("meter: %s: expected a non-negative number of %s (up to 3 decimals), got %q", kind, what, args[0])
		}
		args = args[1:]
		return c, nil
	}
	var err error
	switch kind {
	case "per_page", "per_call", "per_unit", "json":
		var c meter.Credits
		if c, err = amount("credits"); err != nil {
			return s, err
		}
		switch kind {
		case "per_page":
			s.PerPage = &c
		case "per_call":
			s.PerCall = &c
		case "per_unit":
			s.PerUnit = &c
		case "json":
			s.PerMatch = &c
			if len(args) > 0 && args[0] == "part" {
				if len(args) < 2 {
					return s, d.Errf("meter: json %s: part needs the multipart field's name, e.g. `part instructions`", s.Name)
				}
				s.Part, args = args[1], args[2:]
			}
			s.JSON, args = args, nil
			if len(s.JSON) == 0 {
				return s, d.Errf("meter: json %s: missing the JSON query, e.g. \"$..actions[?@.type=='ocr']\"", s.Name)
			}
		}
	case "blocks":
		if len(args) == 0 {
			return s, d.Errf("meter: blocks: expected `blocks <pages> <credits>`")
		}
		n, perr := strconv.ParseInt(args[0], 10, 64)
		if perr != nil || n < 1 {
			return s, d.Errf("meter: blocks: block size must be a positive whole number of pages, got %q", args[0])
		}
		args = args[1:]
		c, err := amount("credits per block")
		if err != nil {
			return s, err
		}
		s.Blocks = &pricing.Blocks{Pages: n, Credits: c}
	case "tiers":
		for len(args) > 0 && strings.Contains(args[0], ":") {
			upTo, cs, _ := strings.Cut(args[0], ":")
			var t pricing.Tier
			if upTo != "*" {
				if t.UpTo, err = strconv.ParseInt(upTo, 10, 64); err != nil || t.UpTo < 1 {
					return s, d.Errf("meter: tiers: %q: expected <up_to>:<credits> with a positive whole up_to, or *:<credits>", args[0])
				}
			}
			if t.Credits, err = meter.ParseCredits(cs); err != nil || t.Credits < 0 {
				return s, d.Errf("meter: tiers: %q: expected a non-negative number of credits after the colon", args[0])
			}
			s.Tiers = append(s.Tiers, t)
			args = args[1:]
		}
		if len(s.Tiers) == 0 {
			return s, d.Errf("meter: tiers: expected a table such as `tiers 1:1 5:2 10:3 *:8`")
		}
	}
	return s, parseOptions(d, kind, &s, args)
}

// parseOptions reads the trailing options of a counted rule.
func parseOptions(d *caddyfile.Dispenser, kind string, s *pricing.Spec, args []string) error {
	for len(args) > 0 {
		opt := args[0]
		args = args[1:]
		val := func() (string, error) {
			if len(args) == 0 {
				return "", d.Errf("meter: %s: %s needs a value", kind, opt)
			}
			v := args[0]
			args = args[1:]
			return v, nil
		}
		switch {
		case opt == "per_file" && s.Per == "":
			s.Per = "file"
		case opt == "per_request" && s.Per == "":
			s.Per = "request"
		case opt == "output" && !s.Output:
			s.Output = true
		case opt == "header" && s.Header == "":
			v, err := val()
			if err != nil {
				return err
			}
			s.Header = v
		case opt == "reserve" && s.Reserve == 0 && !s.ReserveInput:
			v, err := val()
			if err != nil {
				return err
			}
			if v == "input" {
				s.ReserveInput = true
				break
			}
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n < 1 {
				return d.Errf("meter: %s: reserve: expected a positive whole count or `input`, got %q", kind, v)
			}
			s.Reserve = n
		case opt == "at_least" && s.AtLeast == 0:
			v, err := val()
			if err != nil {
				return err
			}
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n < 1 {
				return d.Errf("meter: %s: at_least: expected a positive whole count, got %q", kind, v)
			}
			s.AtLeast = n
		case opt == "ceiling" && !s.Ceiling:
			s.Ceiling = true
		case kind != "blocks" && kind != "tiers" && isNumber(opt):
			return d.Errf("meter: %s takes one value, got extra %q", kind, opt)
		default:
			return d.Errf("meter: %s: unexpected or repeated %q (options: per_file, per_request, output, header <field>, reserve <n>|input, at_least <n>, ceiling)", kind, opt)
		}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// parseClasses reads the block of per_page { <class> <credits> [larger_than <size>] }.
func parseClasses(d *caddyfile.Dispenser, nesting int) (pricing.Spec, error) {
	var s pricing.Spec
	for ok := true; ok; ok = d.NextBlock(nesting) {
		name := d.Val()
		args := d.RemainingArgs()
		if len(args) != 1 && (len(args) != 3 || args[1] != "larger_than") {
			return s, d.Errf("meter: per_page class %q: expected `<class> <credits> [larger_than <size>]`", name)
		}
		c, err := meter.ParseCredits(args[0])
		if err != nil || c < 0 {
			return s, d.Errf("meter: per_page class %q: expected a non-negative number of credits, got %q", name, args[0])
		}
		pc := pricing.PageClass{Name: name, PerPage: c}
		if len(args) == 3 {
			if _, err := pricing.ParseSize(args[2]); err != nil {
				return s, d.Errf("meter: per_page class %q: %v", name, err)
			}
			pc.LargerThan = args[2]
		}
		s.PageClasses = append(s.PageClasses, pc)
	}
	return s, nil
}
