// Package metercmd is the `meter` subcommand of every Caddy build that
// includes github.com/creditgate/creditgate/caddymodule (which imports
// it): `caddy meter ...` (or `creditgate meter ...`) manages accounts,
// keys and credits through the meter admin API of a running gateway.
package metercmd

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/creditgate/creditgate/meter"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "meter",
		Usage: "<account|key|credits|grant|transactions|usage|job|plan|stripe> ...",
		Short: "Manages meter accounts, API keys and credits through the admin API",
		Long: `
Manages creditgate's accounts, API keys and credits by calling the meter
admin API of a running creditgate (on Caddy's admin endpoint, by default
localhost:2019; use --address or CREDITGATE_ADMIN, or --config to read it
from a config).

  caddy meter account create acme --credits 100
  caddy meter account get acme
  caddy meter key create acme --mode live
  caddy meter credits add acme 50 --type purchase
  caddy meter credits add acme -2.5 --type adjustment
  caddy meter grant add acme 100 --expires 2026-01-01 --description "January promotion"
  caddy meter grant void acme gr_1767225600000-0
  caddy meter transactions acme --limit 20
  caddy meter plan set team --set monthly_quota=100 --set overage_cap=20
  caddy meter account plan acme team

Operations that cannot be undone (trim, key revoke, job cancel) ask first,
or take --yes. Every command prints a readable summary, or the API's JSON
with --json.`,
		CobraFunc: func(cmd *cobra.Command) { newClient().addCommands(cmd) },
	})
}

// addCommands adds the meter subcommands and flags to cmd.
func (c *client) addCommands(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.address, "address", "", "admin API address (default: CREDITGATE_ADMIN, the admin option of --config, or localhost:2019)")
	cmd.PersistentFlags().StringVarP(&c.config, "config", "c", "", "config file to read the admin address from")
	cmd.PersistentFlags().StringVarP(&c.adapter, "adapter", "a", "", "name of the config adapter")
	cmd.PersistentFlags().BoolVar(&c.json, "json", false, "print the API's JSON")

	account := &cobra.Command{Use: "account", Short: "Creates, shows, lists and changes accounts"}
	var listLimit int
	var listCursor string
	var initial, createPlan string
	create := &cobra.Command{
		Use: "create <id>", Short: "Creates an account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"id": args[0]}
			if initial != "" {
				n, err := creditsValue("--credits", initial)
				if err != nil {
					return err
				}
				body["credits"] = n
			}
			if cmd.Flags().Changed("plan") {
				body["plan"] = createPlan
				if createPlan == "none" {
					body["plan"] = ""
				}
			}
			return do(c, http.MethodPost, "/meter/accounts", body, printAccount)
		},
	}
	create.Flags().StringVar(&initial, "credits", "", "initial credits, recorded as a purchase")
	create.Flags().StringVar(&createPlan, "plan", "", "the account's plan (default: the default_plan; none: no plan)")
	get := &cobra.Command{
		Use: "get <id>", Short: "Shows an account's balance", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0]), nil, printAccount)
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "Lists accounts in id order", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(listLimit)}, "cursor": {listCursor}}
			return do(c, http.MethodGet, "/meter/accounts?"+q.Encode(), nil, printAccounts)
		},
	}
	list.Flags().IntVar(&listLimit, "limit", 100, "accounts per page (1-1000)")
	list.Flags().StringVar(&listCursor, "cursor", "", "list accounts after this id")
	var sets []string
	update := &cobra.Command{
		Use:   "update <id> --set name=value...",
		Short: "Changes account settings (plan, enabled, rates.<name>, page_limit, monthly_quota, quota_unit, overage_cap, low_balance_threshold, retention_days, time_zone, period_anchor); they win over the plan's",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch, err := settingsPatch(sets)
			if err != nil {
				return err
			}
			if rates, ok := patch["rates"].(map[string]any); ok {
				// --set rates.x=... changes one rate and keeps the others.
				var cur meter.Account
				if err := c.call(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0]), nil, &cur); err != nil {
					return err
				}
				for k, v := range cur.Settings.Rates {
					if _, set := rates[k]; !set {
						rates[k] = v
					}
				}
			}
			return do(c, http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), patch, printAccount)
		},
	}
	update.Flags().StringArrayVar(&sets, "set", nil, "a setting, e.g. monthly_quota=10, rates.drawing=8, enabled=false, page_limit=null")
	toggle := func(name string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use: name + " <id>", Short: strings.ToUpper(name[:1]) + name[1:] + "s an account's API access", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return do(c, http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), map[string]any{"enabled": enabled}, printAccount)
			},
		}
	}
	var trimBefore string
	var trimYes bool
	trim := &cobra.Command{
		Use: "trim <id> --before <date>", Short: "Removes ledger entries older than a date (balances are unchanged); asks first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if trimBefore == "" {
				return fmt.Errorf("--before is required: the date before which entries are removed")
			}
			if err := dateValue("--before", trimBefore); err != nil {
				return err
			}
			if err := c.confirm(trimYes, fmt.Sprintf("Removing the ledger entries of %s before %s", args[0], trimBefore)); err != nil {
				return err
			}
			return do(c, http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/trim", map[string]any{"before": trimBefore}, printRemoved)
		},
	}
	trim.Flags().StringVar(&trimBefore, "before", "", "YYYY-MM-DD or RFC 3339")
	yesFlag(trim, &trimYes)
	plan, accountPlan := c.planCommands()
	account.AddCommand(create, get, list, update, toggle("disable", false), toggle("enable", true), trim, accountPlan)

	key := &cobra.Command{Use: "key", Short: "Creates API keys"}
	var mode string
	keyCreate := &cobra.Command{
		Use: "create <account>", Short: "Creates an API key; its secret is shown once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("--mode", mode, "live", "test"); err != nil {
				return err
			}
			return do(c, http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/keys", map[string]any{"mode": mode}, printKey)
		},
	}
	keyCreate.Flags().StringVar(&mode, "mode", "live", "live or test")
	keyList := &cobra.Command{
		Use: "list <account>", Short: "Lists an account's keys (prefix and last four characters only)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/keys", nil, printKeys)
		},
	}
	var revokeYes bool
	keyRevoke := &cobra.Command{
		Use: "revoke <account> <key-id>", Short: "Revokes a key; every gateway refuses it within key_cache_ttl; asks first", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(revokeYes, fmt.Sprintf("Revoking key %s of %s", args[1], args[0])); err != nil {
				return err
			}
			return do(c, http.MethodDelete, "/meter/accounts/"+url.PathEscape(args[0])+"/keys/"+url.PathEscape(args[1]), nil,
				func(w io.Writer, k meter.Key) { printKeys(w, page[meter.Key]{Data: []meter.Key{k}}) })
		},
	}
	yesFlag(keyRevoke, &revokeYes)
	key.AddCommand(keyCreate, keyList, keyRevoke)

	credits := &cobra.Command{Use: "credits", Short: "Adds or adjusts credits"}
	var typ, desc, idem string
	add := &cobra.Command{
		Use: "add <account> <amount>", Short: "Adds credits (a purchase), or adjusts with --type adjustment (a negative amount takes credits away)",
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := creditsValue("amount", args[1])
			if err != nil {
				return err
			}
			if err := oneOf("--type", typ, "purchase", "adjustment"); err != nil {
				return err
			}
			body := map[string]any{"amount": amount, "type": typ, "description": desc, "idempotency_key": idem}
			return do(c, http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/credits", body, printGrant)
		},
	}
	add.Flags().StringVar(&typ, "type", "purchase", "purchase or adjustment")
	add.Flags().StringVar(&desc, "description", "", "ledger description")
	add.Flags().StringVar(&idem, "idempotency-key", "", "records a retried grant once")
	allowNegativeArgs(add, 2)
	var refundAmount, refundDesc string
	refund := &cobra.Command{
		Use: "refund <account> <usage-entry-id>", Short: "Refunds a usage entry, whole or --amount of it, once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"entry_id": args[1], "description": refundDesc}
			if refundAmount != "" {
				n, err := creditsValue("--amount", refundAmount)
				if err != nil {
					return err
				}
				body["amount"] = n
			}
			return do(c, http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/refunds", body,
				func(w io.Writer, e meter.LedgerEntry) {
					printLedger(w, page[meter.LedgerEntry]{Data: []meter.LedgerEntry{e}})
				})
		},
	}
	refund.Flags().StringVar(&refundAmount, "amount", "", "credits to refund (default: all the entry took)")
	refund.Flags().StringVar(&refundDesc, "description", "", "ledger description")
	credits.AddCommand(add, refund)

	var limit int
	var txType, from, to, cursor string
	transactions := &cobra.Command{
		Use: "transactions <account>", Short: "Lists an account's ledger, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for name, v := range map[string]string{"--from": from, "--to": to} {
				if err := dateValue(name, v); err != nil {
					return err
				}
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			for k, v := range map[string]string{"type": txType, "date_from": from, "date_to": to, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/transactions?"+q.Encode(), nil, printLedger)
		},
	}
	transactions.Flags().IntVar(&limit, "limit", 50, "entries to show (1-1000)")
	transactions.Flags().StringVar(&txType, "type", "", "purchase, usage, refund, adjustment, grant, expiration or grant_void")
	transactions.Flags().StringVar(&from, "from", "", "first date (YYYY-MM-DD or RFC 3339)")
	transactions.Flags().StringVar(&to, "to", "", "last date, included")
	transactions.Flags().StringVar(&cursor, "cursor", "", "the next_cursor of the previous page")

	var period, granularity string
	usage := &cobra.Command{
		Use: "usage <account>", Short: "Shows an account's usage by route in a quota period, or by day or hour (--granularity)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if granularity != "" {
				return usageSeries(c, args[0], granularity, from, to)
			}
			if _, err := time.Parse("2006-01-02", period); err != nil && period != "current" && period != "previous" {
				return fmt.Errorf("--period %q: expected current, previous or a date YYYY-MM-DD in the period", period)
			}
			return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/usage?period="+url.QueryEscape(period), nil, printUsage)
		},
	}
	usage.Flags().StringVar(&period, "period", "current", "current, previous, or a date (YYYY-MM-DD) in the period")
	usage.Flags().StringVar(&granularity, "granularity", "", "day or hour: usage over time instead of by period")
	usage.Flags().StringVar(&from, "from", "", "with --granularity: first day or time (YYYY-MM-DD or RFC 3339; default 30 days, or 24 hours, ago)")
	usage.Flags().StringVar(&to, "to", "", "with --granularity: last day (included) or time")

	job := &cobra.Command{Use: "job", Short: "Shows or cancels long-running jobs"}
	jobPath := func(args []string) string {
		return "/meter/accounts/" + url.PathEscape(args[0]) + "/jobs/" + url.PathEscape(args[1])
	}
	var cancelYes bool
	cancel := &cobra.Command{
		Use: "cancel <account> <job-id>", Short: "Cancels a job: its hold is released, its charges stay; asks first", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cancelYes, fmt.Sprintf("Canceling job %s of %s", args[1], args[0])); err != nil {
				return err
			}
			return do(c, http.MethodPost, jobPath(args)+"/cancel", nil, printJob)
		},
	}
	yesFlag(cancel, &cancelYes)
	job.AddCommand(cancel, &cobra.Command{
		Use: "get <account> <job-id>", Short: "Shows a job's billing record (by its job_ id or the upstream's)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, jobPath(args), nil, printJob)
		},
	})

	cmd.AddCommand(account, key, credits, transactions, usage, job, plan, c.stripeCommand(), c.grantCommand())
}

// yesFlag adds --yes (-y) to a command that asks before it acts.
func yesFlag(cmd *cobra.Command, yes *bool) {
	cmd.Flags().BoolVarP(yes, "yes", "y", false, "do it without asking (needed when stdin is not a terminal)")
}
