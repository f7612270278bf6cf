package metercmd

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// The readable output of the meter subcommands (without --json).

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
	if st, _ := v["settings"].(map[string]any); str(st["plan"]) != "" {
		fmt.Fprintf(w, "plan %s\n", str(st["plan"]))
	}
}

func printAccounts(w io.Writer, v map[string]any) {
	rows := [][]string{{"ACCOUNT", "BALANCE", "RESERVED", "AVAILABLE", "ENABLED"}}
	data, _ := v["data"].([]any)
	for _, d := range data {
		a, _ := d.(map[string]any)
		st, _ := a["settings"].(map[string]any)
		enabled := "yes"
		if st["enabled"] == false {
			enabled = "no"
		}
		rows = append(rows, []string{str(a["id"]), str(a["balance"]), str(a["reserved"]), str(a["available"]), enabled})
	}
	table(w, rows)
	morePages(w, v, "accounts")
}

// morePages says when a listing has more pages, and how to get the next.
func morePages(w io.Writer, v map[string]any, what string) {
	if next := str(v["next_cursor"]); next != "" && v["has_more"] != false {
		fmt.Fprintf(w, "more %s: add --cursor %s for the next page\n", what, next)
	}
}

func printKeys(w io.Writer, v map[string]any) {
	rows := [][]string{{"ID", "MODE", "KEY", "CREATED", "REVOKED"}}
	data, _ := v["data"].([]any)
	for _, d := range data {
		k, _ := d.(map[string]any)
		rows = append(rows, []string{str(k["id"]), str(k["mode"]), str(k["prefix"]) + "_..." + str(k["last4"]), str(k["created_at"]), str(k["revoked_at"])})
	}
	table(w, rows)
}

func printRemoved(w io.Writer, v map[string]any) {
	fmt.Fprintf(w, "%s ledger entries removed\n", str(v["removed"]))
}

func printUsage(w io.Writer, v map[string]any) {
	p, _ := v["period"].(map[string]any)
	fmt.Fprintf(w, "period %s to %s\n", str(p["start"]), str(p["end"]))
	rows := [][]string{{"ROUTE", "REQUESTS", "PAGES", "CREDITS", "SHARE"}}
	data, _ := v["data"].([]any)
	for _, d := range data {
		u, _ := d.(map[string]any)
		n, _ := u["share"].(json.Number)
		share, _ := n.Float64()
		rows = append(rows, []string{str(u["route"]), str(u["requests"]), str(u["pages"]), str(u["credits"]), fmt.Sprintf("%.1f%%", share*100)})
	}
	t, _ := v["total"].(map[string]any)
	rows = append(rows, []string{"total", str(t["requests"]), str(t["pages"]), str(t["credits"]), ""})
	table(w, rows)
}

func printKey(w io.Writer, v map[string]any) {
	fmt.Fprintf(w, "API key %s for %s (%s), shown once; store it now:\n%s\n", str(v["id"]), str(v["account"]), str(v["mode"]), str(v["key"]))
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
	morePages(w, v, "entries")
}

func printJob(w io.Writer, v map[string]any) {
	table(w, [][]string{
		{"JOB", "UPSTREAM", "STATUS", "DEBITED", "RESERVED", "PAGES", "FAILED", "EXPIRES"},
		{str(v["id"]), str(v["upstream_id"]), str(v["status"]), str(v["credits_debited"]), str(v["credits_reserved"]),
			pagesByClass(v["pages"]), str(v["failed_pages"]), str(v["expires_at"])},
	})
}

// pagesByClass writes {"drawing": 2, "document": 3} as "document=3 drawing=2".
func pagesByClass(v any) string {
	m, _ := v.(map[string]any)
	parts := make([]string, 0, len(m))
	for c, n := range m {
		parts = append(parts, c+"="+str(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
