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
	"text/tabwriter"

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

	account := &cobra.Command{Use: "account", Short: "Creates and shows accounts"}
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
	account.AddCommand(create, get)

	key := &cobra.Command{Use: "key", Short: "Creates API keys"}
	var mode string
	keyCreate := &cobra.Command{
		Use: "create <account>", Short: "Creates an API key; its secret is shown once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/keys", map[string]any{"mode": mode}, printKey)
		},
	}
	keyCreate.Flags().StringVar(&mode, "mode", "live", "live or test")
	key.AddCommand(keyCreate)

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
	credits.AddCommand(add)

	var limit int
	transactions := &cobra.Command{
		Use: "transactions <account>", Short: "Lists an account's ledger, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(http.MethodGet, fmt.Sprintf("/meter/accounts/%s/transactions?limit=%d", url.PathEscape(args[0]), limit), nil, printLedger)
		},
	}
	transactions.Flags().IntVar(&limit, "limit", 50, "entries to show (1-1000)")

	cmd.AddCommand(account, key, credits, transactions)
}

// do sends one admin request and prints its answer.
func (c *client) do(method, uri string, body any, print func(io.Writer, map[string]any)) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(c.address, nil, c.config, c.adapter)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return friendlyAdminError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if c.json {
		_, err = c.out.Write(raw)
		return err
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %s", raw)
	}
	print(c.out, v)
	return nil
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

func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func printAccount(w io.Writer, v map[string]any) {
	table(w, [][]string{
		{"ACCOUNT", "BALANCE", "RESERVED", "AVAILABLE"},
		{str(v["id"]), str(v["balance"]), str(v["reserved"]), str(v["available"])},
	})
}

func printKey(w io.Writer, v map[string]any) {
	fmt.Fprintf(w, "API key for %s (%s), shown once; store it now:\n%s\n", str(v["account"]), str(v["mode"]), str(v["key"]))
}

func printGrant(w io.Writer, v map[string]any) {
	e, _ := v["entry"].(map[string]any)
	fmt.Fprintf(w, "%s %s recorded as %s\n", str(e["type"]), str(e["amount"]), str(e["id"]))
	if a, ok := v["account"].(map[string]any); ok {
		printAccount(w, a)
	}
}

func printLedger(w io.Writer, v map[string]any) {
	rows := [][]string{{"ID", "CREATED", "TYPE", "AMOUNT", "BALANCE AFTER", "ROUTE", "DESCRIPTION"}}
	data, _ := v["data"].([]any)
	for _, d := range data {
		e, _ := d.(map[string]any)
		rows = append(rows, []string{str(e["id"]), str(e["created_at"]), str(e["type"]), str(e["amount"]), str(e["balance_after"]), str(e["route"]), str(e["description"])})
	}
	table(w, rows)
}
