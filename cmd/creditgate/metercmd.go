package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "meter",
		Usage: "<account|key|credits|transactions> ...",
		Short: "Manages meter accounts, API keys and credits through the admin API",
		Long: `
Manages creditgate's accounts, API keys and credits by calling the meter
admin API of a running creditgate (on Caddy's admin endpoint, by default
localhost:2019; use --address, or --config to read it from a config).

  creditgate meter account create acme --credits 100
  creditgate meter account get acme
  creditgate meter key create acme --mode live
  creditgate meter credits add acme 50 --type purchase
  creditgate meter transactions acme --limit 20

Every command prints a readable summary, or the API's JSON with --json.`,
		CobraFunc: buildMeterCommand,
	})
}

// client calls the admin API.
type client struct {
	address, config, adapter string
	json                     bool
	out                      io.Writer
}

func buildMeterCommand(cmd *cobra.Command) {
	c := &client{out: os.Stdout}
	cmd.PersistentFlags().StringVar(&c.address, "address", "", "admin API address (default: from --config, or localhost:2019)")
	cmd.PersistentFlags().StringVarP(&c.config, "config", "c", "", "config file to read the admin address from")
	cmd.PersistentFlags().StringVarP(&c.adapter, "adapter", "a", "", "name of the config adapter")
	cmd.PersistentFlags().BoolVar(&c.json, "json", false, "print the API's JSON")

	account := &cobra.Command{Use: "account", Short: "Creates, shows, lists and changes accounts"}
	var listLimit int
	var listCursor string
	var initial string
	create := &cobra.Command{
		Use: "create <id>", Short: "Creates an account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"id": args[0]}
			if initial != "" {
				body["credits"] = json.Number(initial)
			}
			return c.do(http.MethodPost, "/meter/accounts", body, printAccount)
		},
	}
	create.Flags().StringVar(&initial, "credits", "", "initial credits, recorded as a purchase")
	get := &cobra.Command{
		Use: "get <id>", Short: "Shows an account's balance", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0]), nil, printAccount)
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "Lists accounts in id order", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(listLimit)}, "cursor": {listCursor}}
			return c.do(http.MethodGet, "/meter/accounts?"+q.Encode(), nil, printAccounts)
		},
	}
	list.Flags().IntVar(&listLimit, "limit", 100, "accounts per page (1-1000)")
	list.Flags().StringVar(&listCursor, "cursor", "", "list accounts after this id")
	var sets []string
	update := &cobra.Command{
		Use:   "update <id> --set name=value...",
		Short: "Changes account settings (enabled, rates.<name>, page_limit, monthly_quota, quota_unit, overage_cap, low_balance_threshold, time_zone, period_anchor)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch, err := settingsPatch(sets)
			if err != nil {
				return err
			}
			if rates, ok := patch["rates"].(map[string]any); ok {
				// --set rates.x=... changes one rate and keeps the others.
				var cur map[string]any
				if err := c.call(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0]), nil, &cur); err != nil {
					return err
				}
				st, _ := cur["settings"].(map[string]any)
				old, _ := st["rates"].(map[string]any)
				for k, v := range old {
					if _, set := rates[k]; !set {
						rates[k] = v
					}
				}
			}
			return c.do(http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), patch, printAccount)
		},
	}
	update.Flags().StringArrayVar(&sets, "set", nil, "a setting, e.g. monthly_quota=10, rates.drawing=8, enabled=false, page_limit=null")
	toggle := func(name string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use: name + " <id>", Short: strings.ToUpper(name[:1]) + name[1:] + "s an account's API access", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.do(http.MethodPatch, "/meter/accounts/"+url.PathEscape(args[0]), map[string]any{"enabled": enabled}, printAccount)
			},
		}
	}
	var trimBefore string
	trim := &cobra.Command{
		Use: "trim <id> --before <date>", Short: "Removes ledger entries older than a date (balances are unchanged)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/trim", map[string]any{"before": trimBefore}, printRemoved)
		},
	}
	trim.Flags().StringVar(&trimBefore, "before", "", "YYYY-MM-DD or RFC 3339")
	account.AddCommand(create, get, list, update, toggle("disable", false), toggle("enable", true), trim)

	key := &cobra.Command{Use: "key", Short: "Creates API keys"}
	var mode string
	keyCreate := &cobra.Command{
		Use: "create <account>", Short: "Creates an API key; its secret is shown once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/keys", map[string]any{"mode": mode}, printKey)
		},
	}
	keyCreate.Flags().StringVar(&mode, "mode", "live", "live or test")
	keyList := &cobra.Command{
		Use: "list <account>", Short: "Lists an account's keys (prefix and last four characters only)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/keys", nil, printKeys)
		},
	}
	keyRevoke := &cobra.Command{
		Use: "revoke <account> <key-id>", Short: "Revokes a key; every gateway refuses it within key_cache_ttl", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodDelete, "/meter/accounts/"+url.PathEscape(args[0])+"/keys/"+url.PathEscape(args[1]), nil,
				func(w io.Writer, v map[string]any) { printKeys(w, map[string]any{"data": []any{v}}) })
		},
	}
	key.AddCommand(keyCreate, keyList, keyRevoke)

	credits := &cobra.Command{Use: "credits", Short: "Adds or adjusts credits"}
	var typ, desc, idem string
	add := &cobra.Command{
		Use: "add <account> <amount>", Short: "Adds credits (a purchase), or adjusts with --type adjustment", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"amount": json.Number(args[1]), "type": typ, "description": desc, "idempotency_key": idem}
			return c.do(http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/credits", body, printGrant)
		},
	}
	add.Flags().StringVar(&typ, "type", "purchase", "purchase or adjustment")
	add.Flags().StringVar(&desc, "description", "", "ledger description")
	add.Flags().StringVar(&idem, "idempotency-key", "", "records a retried grant once")
	var refundAmount, refundDesc string
	refund := &cobra.Command{
		Use: "refund <account> <usage-entry-id>", Short: "Refunds a usage entry, whole or --amount of it, once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"entry_id": args[1], "description": refundDesc}
			if refundAmount != "" {
				body["amount"] = json.Number(refundAmount)
			}
			return c.do(http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/refunds", body,
				func(w io.Writer, v map[string]any) { printLedger(w, map[string]any{"data": []any{v}}) })
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
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			for k, v := range map[string]string{"type": txType, "date_from": from, "date_to": to, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			return c.do(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/transactions?"+q.Encode(), nil, printLedger)
		},
	}
	transactions.Flags().IntVar(&limit, "limit", 50, "entries to show (1-1000)")
	transactions.Flags().StringVar(&txType, "type", "", "purchase, usage, refund or adjustment")
	transactions.Flags().StringVar(&from, "from", "", "first date (YYYY-MM-DD or RFC 3339)")
	transactions.Flags().StringVar(&to, "to", "", "last date, included")
	transactions.Flags().StringVar(&cursor, "cursor", "", "the next_cursor of the previous page")

	var period string
	usage := &cobra.Command{
		Use: "usage <account>", Short: "Shows an account's usage by route in a quota period", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/usage?period="+url.QueryEscape(period), nil, printUsage)
		},
	}
	usage.Flags().StringVar(&period, "period", "current", "current, previous, or a date (YYYY-MM-DD) in the period")

	job := &cobra.Command{Use: "job", Short: "Shows or cancels long-running jobs"}
	jobPath := func(args []string) string {
		return "/meter/accounts/" + url.PathEscape(args[0]) + "/jobs/" + url.PathEscape(args[1])
	}
	job.AddCommand(&cobra.Command{
		Use: "get <account> <job-id>", Short: "Shows a job's billing record (by its job_ id or the upstream's)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, jobPath(args), nil, printJob)
		},
	}, &cobra.Command{
		Use: "cancel <account> <job-id>", Short: "Cancels a job: its hold is released, its charges stay", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodPost, jobPath(args)+"/cancel", nil, printJob)
		},
	})

	cmd.AddCommand(account, key, credits, transactions, usage, job)
}

// call sends one admin request and decodes its JSON answer into out.
func (c *client) call(method, uri string, body any, out any) error {
	raw, err := c.send(method, uri, body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %s", raw)
	}
	return nil
}

// do sends one admin request and prints its answer.
func (c *client) do(method, uri string, body any, print func(io.Writer, map[string]any)) error {
	if c.json {
		raw, err := c.send(method, uri, body)
		if err != nil {
			return err
		}
		_, err = c.out.Write(raw)
		return err
	}
	var v map[string]any
	if err := c.call(method, uri, body, &v); err != nil {
		return err
	}
	print(c.out, v)
	return nil
}

// send sends one admin request and returns its body.
func (c *client) send(method, uri string, body any) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(c.address, nil, c.config, c.adapter)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return nil, friendlyAdminError(err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// friendlyAdminError turns "caddy responded with error: HTTP 409: {json}"
// into the API's own message.
func friendlyAdminError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "{"); i >= 0 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal([]byte(msg[i:]), &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
	}
	return err
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
