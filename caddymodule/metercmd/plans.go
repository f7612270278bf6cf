package metercmd

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/creditgate/creditgate/meter"
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
			return do(c, http.MethodPut, "/meter/plans/"+url.PathEscape(args[0]), body, printPlan)
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
			return do(c, http.MethodDelete, "/meter/plans/"+url.PathEscape(args[0]), nil,
				func(w io.Writer, _ struct{}) { fmt.Fprintf(w, "plan %s deleted\n", args[0]) })
		},
	}
	yesFlag(del, &deleteYes)
	plan.AddCommand(&cobra.Command{
		Use: "list", Short: "Lists the plans of the config and of the store, and the default plan", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, "/meter/plans", nil, printPlans)
		},
	}, &cobra.Command{
		Use: "get <name>", Short: "Shows a plan", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, "/meter/plans/"+url.PathEscape(args[0]), nil, printPlan)
		},
	}, set, del)

	accountPlan = &cobra.Command{
		Use: "plan <id> <plan>|none", Short: "Puts an account on a plan (none: on no plan); its own settings still win", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name any = args[1]
			if args[1] == "none" {
				name = nil
			}
			return do(c, http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), map[string]any{"plan": name}, printAccount)
		},
	}
	return plan, accountPlan
}

// planView is a plan as the admin API shows it: where it is declared.
type planView struct {
	meter.Plan
	Source string `json:"source"`
}

func printPlans(w io.Writer, v struct {
	Plans       []planView `json:"plans"`
	DefaultPlan string     `json:"default_plan"`
}) {
	rows := [][]string{{"PLAN", "SOURCE", "SETTINGS"}}
	for _, p := range v.Plans {
		name := p.Name
		if name == v.DefaultPlan {
			name += " (default)"
		}
		rows = append(rows, []string{name, p.Source, fields(p.Settings)})
	}
	table(w, rows)
}

func printPlan(w io.Writer, p planView) {
	printPlans(w, struct {
		Plans       []planView `json:"plans"`
		DefaultPlan string     `json:"default_plan"`
	}{Plans: []planView{p}})
}
