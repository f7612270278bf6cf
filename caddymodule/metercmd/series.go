package metercmd

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/creditgate/creditgate/meter"
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
	return do(c, http.MethodGet, "/meter/accounts/"+url.PathEscape(account)+"/usage?"+q.Encode(), nil, printSeries)
}

// seriesReport is the admin API's usage per day or hour.
type seriesReport struct {
	Granularity string `json:"granularity"`
	Buckets     []struct {
		Start    time.Time     `json:"start"`
		Requests int64         `json:"requests"`
		Pages    int64         `json:"pages"`
		Credits  meter.Credits `json:"credits"`
	} `json:"buckets"`
	Total totals `json:"total"`
}

// printSeries prints one row per bucket: its totals and a bar scaled to
// the largest bucket's credits.
func printSeries(w io.Writer, v seriesReport) {
	var most meter.Credits
	for _, b := range v.Buckets {
		most = max(most, b.Credits)
	}
	layout := "2006-01-02"
	if v.Granularity == "hour" {
		layout = "2006-01-02 15:00"
	}
	rows := [][]string{{strings.ToUpper(v.Granularity) + " (UTC)", "REQUESTS", "PAGES", "CREDITS", ""}}
	for _, b := range v.Buckets {
		bar := ""
		if most > 0 {
			bar = strings.Repeat("█", int(float64(b.Credits)/float64(most)*30+0.5))
		}
		rows = append(rows, []string{b.Start.UTC().Format(layout), fmt.Sprint(b.Requests), fmt.Sprint(b.Pages), b.Credits.String(), bar})
	}
	rows = append(rows, v.Total.row())
	table(w, rows)
}
