package metercmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The readable output of the meter subcommands (without --json). Answers
// are decoded into meter's domain types; the few shapes that only the
// admin API has (pages, reports) are declared here around them.

func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// ts prints a time as the admin API sent it (RFC 3339); "" when unset.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// page is one page of a listing.
type page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
	HasMore    *bool  `json:"has_more"`
}

// morePages says when a listing has more pages, and how to get the next.
func (p page[T]) morePages(w io.Writer, what string) {
	if p.NextCursor != "" && (p.HasMore == nil || *p.HasMore) {
		fmt.Fprintf(w, "more %s: add --cursor %s for the next page\n", what, p.NextCursor)
	}
}

func printAccount(w io.Writer, a meter.Account) {
	table(w, [][]string{
		{"ACCOUNT", "BALANCE", "RESERVED", "AVAILABLE"},
		{a.ID, a.Balance.String(), a.Reserved.String(), a.Available.String()},
	})
	if a.Settings.Plan != "" {
		fmt.Fprintf(w, "plan %s\n", a.Settings.Plan)
	}
	printGrants(w, a.Grants) // in the balance, spent first
}

func printAccounts(w io.Writer, p page[meter.Account]) {
	rows := [][]string{{"ACCOUNT", "BALANCE", "RESERVED", "AVAILABLE", "ENABLED"}}
	for _, a := range p.Data {
		enabled := "yes"
		if !a.Settings.IsEnabled() {
			enabled = "no"
		}
		rows = append(rows, []string{a.ID, a.Balance.String(), a.Reserved.String(), a.Available.String(), enabled})
	}
	table(w, rows)
	p.morePages(w, "accounts")
}

func printKeys(w io.Writer, p page[meter.Key]) {
	rows := [][]string{{"ID", "MODE", "KEY", "CREATED", "REVOKED"}}
	for _, k := range p.Data {
		rows = append(rows, []string{k.ID, string(k.Mode), k.Prefix + "_..." + k.Last4, ts(k.CreatedAt), ts(k.RevokedAt)})
	}
	table(w, rows)
}

func printRemoved(w io.Writer, v struct {
	Removed int64 `json:"removed"`
}) {
	fmt.Fprintf(w, "%d ledger entries removed\n", v.Removed)
}

// totals are the totals of a usage report.
type totals struct {
	Requests int64         `json:"requests"`
	Pages    int64         `json:"pages"`
	Credits  meter.Credits `json:"credits"`
}

func (t totals) row() []string {
	return []string{"total", fmt.Sprint(t.Requests), fmt.Sprint(t.Pages), t.Credits.String(), ""}
}

// usageReport is the admin API's usage of a period, by route.
type usageReport struct {
	Period meter.Period `json:"period"`
	Data   []struct {
		meter.RouteUsage
		Share float64 `json:"share"`
	} `json:"data"`
	Total totals `json:"total"`
}

func printUsage(w io.Writer, v usageReport) {
	fmt.Fprintf(w, "period %s to %s\n", ts(v.Period.Start), ts(v.Period.End))
	rows := [][]string{{"ROUTE", "REQUESTS", "PAGES", "CREDITS", "SHARE"}}
	for _, u := range v.Data {
		rows = append(rows, []string{u.Route, fmt.Sprint(u.Requests), fmt.Sprint(u.Pages), u.Credits.String(), fmt.Sprintf("%.1f%%", u.Share*100)})
	}
	rows = append(rows, v.Total.row())
	table(w, rows)
}

// newKey is a created key: its record and its secret, shown once.
type newKey struct {
	Secret string `json:"key"`
	meter.Key
}

func printKey(w io.Writer, k newKey) {
	fmt.Fprintf(w, "API key %s for %s (%s), shown once; store it now:\n%s\n", k.ID, k.AccountID, k.Mode, k.Secret)
}

func printGrant(w io.Writer, v struct {
	Entry   meter.LedgerEntry `json:"entry"`
	Account *meter.Account    `json:"account"`
}) {
	fmt.Fprintf(w, "%s %s recorded as %s\n", v.Entry.Type, v.Entry.Amount, v.Entry.ID)
	if v.Account != nil {
		printAccount(w, *v.Account)
	}
}

func printLedger(w io.Writer, p page[meter.LedgerEntry]) {
	rows := [][]string{{"ID", "CREATED", "TYPE", "AMOUNT", "BALANCE AFTER", "ROUTE", "DESCRIPTION"}}
	for _, e := range p.Data {
		rows = append(rows, []string{e.ID, ts(e.CreatedAt), e.Type, e.Amount.String(), e.BalanceAfter.String(), e.Route, e.Description})
	}
	table(w, rows)
	p.morePages(w, "entries")
}

func printJob(w io.Writer, j meter.Job) {
	table(w, [][]string{
		{"JOB", "UPSTREAM", "STATUS", "DEBITED", "RESERVED", "PAGES", "FAILED", "EXPIRES"},
		{j.ID, j.UpstreamID, j.Status, j.Debited.String(), j.Reserved.String(), pagesByClass(j.Pages), fmt.Sprint(j.Failed), ts(j.ExpiresAt)},
	})
}

// pagesByClass writes {"drawing": 2, "document": 3} as "document=3 drawing=2".
func pagesByClass(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for c, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// fields lists the members of v's JSON form as name=value, in name
// order, skipping skip: a plan's settings, whichever they are.
func fields(v any, skip ...string) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range skip {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + jsonText(m[k])
	}
	return strings.Join(parts, " ")
}

// jsonText prints a JSON value as fmt prints its decoded form: strings
// bare, objects as map[k:v ...] in key order.
func jsonText(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	return fmt.Sprint(v)
}
