package metercmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// usageSeries prints an account's usage by day or hour as a table with a
// bar per bucket.
func usageSeries(c *client, account, granularity, from, to string) error {
	if granularity != "day" && granularity != "hour" {
		return fmt.Errorf("--granularity %q: expected day or hour", granularity)
	}
	q := url.Values{"granularity": {granularity}}
	for name, v := range map[string]string{"from": from, "to": to} {
		if v == "" {
			continue
		}
		if _, err := time.Parse("2006-01-02", v); err != nil {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				return fmt.Errorf("--%s %q: expected a date YYYY-MM-DD or RFC 3339", name, v)
			}
		}
		q.Set(name, v)
	}
	return c.do(http.MethodGet, "/meter/accounts/"+url.PathEscape(account)+"/usage?"+q.Encode(), nil, printSeries)
}

// printSeries prints one row per bucket: its totals and a bar scaled to
// the largest bucket's credits.
func printSeries(w io.Writer, v map[string]any) {
	buckets, _ := v["buckets"].([]any)
	most := 0.0
	for _, b := range buckets {
		m, _ := b.(map[string]any)
		n, _ := m["credits"].(json.Number)
		f, _ := n.Float64()
		most = max(most, f)
	}
	layout := "2006-01-02"
	if v["granularity"] == "hour" {
		layout = "2006-01-02 15:00"
	}
	rows := [][]string{{strings.ToUpper(str(v["granularity"])) + " (UTC)", "REQUESTS", "PAGES", "CREDITS", ""}}
	for _, b := range buckets {
		m, _ := b.(map[string]any)
		n, _ := m["credits"].(json.Number)
		f, _ := n.Float64()
		bar := ""
		if most > 0 {
			bar = strings.Repeat("█", int(f/most*30+0.5))
		}
		start, _ := time.Parse(time.RFC3339, str(m["start"]))
		rows = append(rows, []string{start.UTC().Format(layout), str(m["requests"]), str(m["pages"]), str(m["credits"]), bar})
	}
	t, _ := v["total"].(map[string]any)
	rows = append(rows, []string{"total", str(t["requests"]), str(t["pages"]), str(t["credits"]), ""})
	table(w, rows)
}
