package metercmd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/creditgate/creditgate/meter"
)

// creditsValue checks an amount of credits given as `name` (a flag such as
// --credits, or a positional argument) before it becomes a JSON number,
// so that a typo is refused naming what was mistyped.
func creditsValue(name, v string) (json.Number, error) {
	c, err := meter.ParseCredits(v)
	if err != nil {
		return "", fmt.Errorf("%s %q: expected a number of credits such as 10 or 2.5 (at most three decimals)", name, v)
	}
	return json.Number(c.String()), nil
}

// dateValue checks a date flag as the admin API reads it.
func dateValue(name, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return nil
	}
	if _, err := time.Parse("2006-01-02", v); err == nil {
		return nil
	}
	return fmt.Errorf("%s %q: expected a date YYYY-MM-DD or RFC 3339", name, v)
}

// oneOf checks a flag whose value is one of a few words.
func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: expected %s", name, v, strings.Join(allowed, " or "))
}

var negativeNumber = regexp.MustCompile(`^-[0-9.]`)

// allowNegativeArgs lets cmd take negative numbers as arguments
// (`credits add acme -2.5`), which cobra's flag parser would read as the
// shorthand flags -2, -. and -5. Flags are parsed here instead: an
// argument that looks like a negative number is an argument, unless it is
// the value of the flag before it (`--description -1`).
func allowNegativeArgs(cmd *cobra.Command, nargs int) {
	cmd.DisableFlagParsing = true
	cmd.Args = cobra.ArbitraryArgs
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.InheritedFlags() // merges the parents' persistent flags into Flags()
		flags := cmd.Flags()
		var flagArgs, pos []string
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "--":
				pos = append(pos, args[i+1:]...)
				i = len(args)
			case !strings.HasPrefix(a, "-") || a == "-" || negativeNumber.MatchString(a):
				pos = append(pos, a)
			default:
				flagArgs = append(flagArgs, a)
				name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
				f := flags.Lookup(name)
				if !strings.HasPrefix(a, "--") && len(name) == 1 {
					f = flags.ShorthandLookup(name)
				}
				if f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
					i++
					flagArgs = append(flagArgs, args[i])
				}
			}
		}
		if err := flags.Parse(flagArgs); err != nil {
			return err
		}
		if help, _ := flags.GetBool("help"); help {
			return cmd.Help()
		}
		if len(pos) != nargs {
			return fmt.Errorf("accepts %d arg(s), received %d; usage: %s", nargs, len(pos), cmd.UseLine())
		}
		return run(cmd, pos)
	}
}

// settingsPatch turns --set name=value flags into a settings patch:
// values are JSON when they parse as JSON (numbers, true, null), strings
// otherwise; rates.<name>=<credits> sets one rate.
func settingsPatch(sets []string) (map[string]any, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("nothing to change: give --set name=value")
	}
	patch := map[string]any{}
	rates := map[string]any{}
	for _, kv := range sets {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--set %q: expected name=value", kv)
		}
		var v any = val
		var js any
		if json.Unmarshal([]byte(val), &js) == nil {
			v = json.RawMessage(val)
		}
		if r, isRate := strings.CutPrefix(name, "rates."); isRate {
			rates[r] = v
			continue
		}
		patch[name] = v
	}
	if len(rates) > 0 {
		patch["rates"] = rates
	}
	return patch, nil
}
