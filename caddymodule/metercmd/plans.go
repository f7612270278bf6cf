package metercmd

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"

	"github.com/spf13/cobra"
)

// planCommands returns `meter plan ...` and `meter account plan`.
func (c *client) planCommands() (plan, accountPlan *cobra.Command) {
	plan = &cobra.Command{Use: "plan", Short: "Lists, shows, sets and deletes plans (named settings shared by accounts)"}
	var sets []string
	set := &cobra.Command{
		Use:   "set <name> --set name=value...",
		Short: "Creates or replaces a plan made through the API (monthly_quota, quota_unit, overage_cap, rates.<name>, page_limit, low_balance_threshold, retention_days, enabled); its accounts get it within key_cache_ttl",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := settingsPatch(sets)
			if err != nil {
				return err
			}
			return c.do(http.MethodPut, "/meter/plans/"+url.PathEscape(args[0]), body, printPlan)
		},
	}
	set.Flags().StringArrayVar(&sets, "set", nil, "a setting, e.g. monthly_quota=10, rates.drawing=8")
	var deleteYes bool
	del := &cobra.Command{
		Use: "delete <name>", Short: "Deletes a plan made through the API; its accounts keep only their own settings; asks first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(deleteYes, fmt.Sprintf("Deleting plan %s", args[0])); err != nil {
				return err
			}
			return c.do(http.MethodDelete, "/meter/plans/"+url.PathEscape(args[0]), nil,
				func(w io.Writer, _ map[string]any) { fmt.Fprintf(w, "plan %s deleted\n", args[0]) })
		},
	}
	yesFlag(del, &deleteYes)
	plan.AddCommand(&cobra.Command{
		Use: "list", Short: "Lists the plans of the config and of the store, and the default plan", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, "/meter/plans", nil, printPlans)
		},
	}, &cobra.Command{
		Use: "get <name>", Short: "Shows a plan", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, "/meter/plans/"+url.PathEscape(args[0]), nil, printPlan)
		},
	}, set, del)

	accountPlan = &cobra.Command{
		Use: "plan <id> <plan>|none", Short: "Puts an account on a plan (none: on no plan); its own settings still win", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name any = args[1]
			if args[1] == "none" {
				name = nil
			}
			return c.do(http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), map[string]any{"plan": name}, printAccount)
		},
	}
	return plan, accountPlan
}

// planSettings are a plan's settings in a fixed order, as name=value.
func planSettings(p map[string]any) string {
	var keys []string
	for k := range p {
		if k != "name" && k != "source" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := ""
	for _, k := range keys {
		if out != "" {
			out += " "
		}
		out += k + "=" + str(p[k])
	}
	return out
}

func printPlans(w io.Writer, v map[string]any) {
	rows := [][]string{{"PLAN", "SOURCE", "SETTINGS"}}
	data, _ := v["plans"].([]any)
	for _, d := range data {
		p, _ := d.(map[string]any)
		name := str(p["name"])
		if name == str(v["default_plan"]) {
			name += " (default)"
		}
		rows = append(rows, []string{name, str(p["source"]), planSettings(p)})
	}
	table(w, rows)
}

func printPlan(w io.Writer, v map[string]any) {
	printPlans(w, map[string]any{"plans": []any{v}})
}
