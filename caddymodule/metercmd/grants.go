package metercmd

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/creditgate/creditgate/meter"
)

// grantCommand is `meter grant [list|add|void]`: credit grants, spent
// before the paid balance and possibly expiring.
func (c *client) grantCommand() *cobra.Command {
	grant := &cobra.Command{Use: "grant", Short: "Lists, adds or voids credit grants (promotional credits that may expire)"}
	list := &cobra.Command{
		Use: "list <account>", Short: "Lists an account's credit grants in spending order", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(args[0])+"/grants", nil, printGrantList)
		},
	}
	var expires, desc, idem string
	var priority int64
	add := &cobra.Command{
		Use: "add <account> <credits>", Short: "Grants credits, spent before the paid balance; --expires to make them expire", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := creditsValue("credits", args[1])
			if err != nil {
				return err
			}
			body := map[string]any{"amount": amount, "priority": priority, "description": desc, "idempotency_key": idem}
			if expires != "" {
				t, err := expiryValue(expires)
				if err != nil {
					return err
				}
				body["expires_at"] = t.Format(time.RFC3339Nano)
			}
			return do(c, http.MethodPost, "/meter/accounts/"+url.PathEscape(args[0])+"/grants", body, printGrantAnswer)
		},
	}
	add.Flags().StringVar(&expires, "expires", "", "when the grant expires: RFC 3339, YYYY-MM-DD (midnight UTC) or a duration from now such as 720h (default: never)")
	add.Flags().Int64Var(&priority, "priority", 0, "grants of higher priority are spent first")
	add.Flags().StringVar(&desc, "description", "", "ledger description")
	add.Flags().StringVar(&idem, "idempotency-key", "", "records a retried grant once")
	var yes bool
	void := &cobra.Command{
		Use: "void <account> <grant-id>", Short: "Voids a grant: what it has left leaves the balance; asks first", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(yes, fmt.Sprintf("Voiding credit grant %s of %s (what it has left leaves the balance)", args[1], args[0])); err != nil {
				return err
			}
			return do(c, http.MethodDelete, "/meter/accounts/"+url.PathEscape(args[0])+"/grants/"+url.PathEscape(args[1]), nil, printGrantAnswer)
		},
	}
	yesFlag(void, &yes)
	grant.AddCommand(list, add, void)
	return grant
}

// expiryValue reads --expires: a time, a date or a duration from now.
func expiryValue(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return time.Now().Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: expected RFC 3339, YYYY-MM-DD or a positive duration such as 720h", v)
}

type grantList struct {
	Grants []meter.CreditGrant `json:"grants"`
}

type grantAnswer struct {
	Grant   meter.CreditGrant `json:"grant"`
	Account meter.Account     `json:"account"`
}

func printGrantList(w io.Writer, v grantList) { printGrants(w, v.Grants) }

func printGrantAnswer(w io.Writer, v grantAnswer) {
	printGrants(w, []meter.CreditGrant{v.Grant})
	printAccount(w, v.Account)
}

// printGrants prints grants as a table (nothing when there are none).
func printGrants(w io.Writer, gs []meter.CreditGrant) {
	if len(gs) == 0 {
		return
	}
	rows := [][]string{{"GRANT", "AMOUNT", "REMAINING", "HELD", "PRIORITY", "EXPIRES", "STATE"}}
	for _, g := range gs {
		exp := "never"
		if g.ExpiresAt != nil {
			exp = ts(*g.ExpiresAt)
		}
		rows = append(rows, []string{g.ID, g.Amount.String(), g.Remaining.String(), g.Held.String(),
			strconv.FormatInt(g.Priority, 10), exp, g.State})
	}
	table(w, rows)
}
