package caddymodule

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// The console's read-only pages: the accounts list, one account, the
// gateway. Every list is a page of the store's own cursors; nothing loads
// all accounts or a whole ledger.

// accountRow is one line of the accounts list.
type accountRow struct {
	meter.Account
	PeriodCredits meter.Credits
	LastActivity  time.Time
}

func (c *Console) storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.storeCtx(r)
	defer cancel()
	s := c.app.Store()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	cursor := r.URL.Query().Get("cursor")
	sortKey := r.URL.Query().Get("sort")
	if !slices.Contains(meter.IndexSorts, sortKey) {
		sortKey = "" // id order
	}
	if q == "" && sortKey != "" {
		// Sorted over all accounts: a page of the store-wide index.
		rows, next, asOf, ok, err := c.sortedRows(ctx, sortKey, cursor)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if ok {
			c.render(w, http.StatusOK, "accounts.html", map[string]any{
				"P": c.Prefix, "Title": "Accounts", "Rows": rows, "Sort": sortKey, "Next": next,
				"Cursor": cursor, "AsOf": asOf, "Global": true,
			})
			return
		}
	}
	// Ids are listed in order, so the ids that start with q follow q: a
	// search is a page of the listing from q, cut at the first id that
	// does not start with it.
	var ids []string
	if q != "" && cursor == "" {
		if _, err := s.Account(ctx, q); err == nil {
			ids = append(ids, q)
		}
		cursor = q
	}
	page, err := s.ListAccounts(ctx, cursor, c.PageSize)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next := ""
	if len(page) == c.PageSize {
		next = page[len(page)-1]
	}
	for _, id := range page {
		if !strings.HasPrefix(id, q) {
			next = ""
			break
		}
		ids = append(ids, id)
	}
	rows := make([]accountRow, 0, len(ids))
	for _, id := range ids {
		row, err := c.accountRow(ctx, s, id)
		if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
			continue
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		rows = append(rows, row)
	}
	sortRows(rows, sortKey)
	c.render(w, http.StatusOK, "accounts.html", map[string]any{
		"P": c.Prefix, "Title": "Accounts", "Rows": rows, "Q": q, "Sort": sortKey, "Next": next,
		"Cursor": r.URL.Query().Get("cursor"),
	})
}

func (c *Console) accountRow(ctx context.Context, s consoleStore, id string) (accountRow, error) {
	acct, err := s.Account(ctx, id)
	if err != nil {
		return accountRow{}, err
	}
	row := accountRow{Account: acct}
	if p, err := acct.Settings.PeriodAt(time.Now(), acct.CreatedAt); err == nil {
		routes, err := s.Usage(ctx, id, p)
		if err != nil {
			return row, err
		}
		for _, u := range routes {
			row.PeriodCredits += u.Credits
		}
	}
	last, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1})
	if err != nil {
		return row, err
	}
	if len(last) > 0 {
		row.LastActivity = last[0].CreatedAt
	}
	return row, nil
}

// sortRows sorts one page of accounts: by balance, usage this period or
// last activity (largest or newest first), else by id.
func sortRows(rows []accountRow, key string) {
	less := map[string]func(a, b accountRow) bool{
		"balance":  func(a, b accountRow) bool { return a.Balance > b.Balance },
		"usage":    func(a, b accountRow) bool { return a.PeriodCredits > b.PeriodCredits },
		"activity": func(a, b accountRow) bool { return a.LastActivity.After(b.LastActivity) },
	}[key]
	if less != nil {
		sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
	}
}

// periodDays and periodHours are the choices of the period selectors:
// days of daily buckets, hours of hourly ones (the stores keep 7 days of
// hours).
var (
	periodDays  = []int{7, 30, 90, 365}
	periodHours = []int{24, 168}
)

// chartPeriod reads ?hours= (hourly buckets) or ?days= (daily; default
// 30 days).
func chartPeriod(r *http.Request) (granularity string, n int) {
	for _, h := range periodHours {
		if r.URL.Query().Get("hours") == itoa(h) {
			return meter.GranularityHour, h
		}
	}
	for _, d := range periodDays {
		if r.URL.Query().Get("days") == itoa(d) {
			return meter.GranularityDay, d
		}
	}
	return meter.GranularityDay, 30
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.storeCtx(r)
	defer cancel()
	s := c.app.Store()
	id := r.PathValue("id")
	acct, err := s.Account(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// The settings in force, as the admin API shows them: an account on a
	// plan is read again once its record carries the plan's limits.
	inForce, err := c.app.settingsInForce(ctx, acct)
	if err == nil && acct.Settings.Plan != "" {
		acct, err = s.Account(ctx, id)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	lq, err := ledgerQuery(r, id, 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("limit") == "" {
		lq.Limit = c.PageSize
	}
	entries, err := s.Ledger(ctx, lq)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	keys, err := s.ListKeys(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rep, err := usageFor(ctx, s, r, acct)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	g, n := chartPeriod(r)
	chart, err := c.usageChart(ctx, s, []string{id}, g, n)
	if err == nil {
		err = addRefunds(ctx, s, id, &chart)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	events, pending, err := s.PendingEvents(ctx, id, 20)
	var jobs []meter.Job
	if err == nil {
		jobs, err = recentJobs(ctx, s, id)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := map[string]any{
		"P": c.Prefix, "Title": "Account " + id, "A": acct, "InForce": inForce, "Entries": entries, "Keys": keys,
		"Usage": rep, "Chart": chart, "PeriodDays": periodDays, "PeriodHours": periodHours,
		"LQ": lq, "Filter": r.URL.Query(), "Done": r.URL.Query().Get("done"),
		"RefundOf": r.URL.Query().Get("refund"), "Events": events, "Pending": pending, "Jobs": jobs,
	}
	if len(entries) == lq.Limit {
		data["NextCursor"] = entries[len(entries)-1].ID
	}
	_, data["GrantsKept"] = meter.StoreAs[meter.GrantStore](s)
	if ref := r.URL.Query().Get("job"); ref != "" {
		job, err := findJob(ctx, s, id, ref)
		if err != nil {
			_, body := errorBody(err)
			data["JobError"] = body["error"].(map[string]any)["message"]
		} else {
			data["Job"] = job
		}
	}
	c.render(w, http.StatusOK, "account.html", data)
}

// chartData is a usage chart and its table: one row per day (or hour),
// one column per route, credits (and the requests and pages totals of
// each bucket).
type chartData struct {
	Granularity string
	N           int // days or hours
	Days        []time.Time
	Routes      []string
	Credits     [][]meter.Credits // [route][day]
	Requests    []int64           // per day
	Pages       []int64           // per day
	Total       meter.Credits
	// ByAccount is each account's credits in these days (for the gateway
	// page's top accounts).
	ByAccount map[string]meter.Credits
	// Refunds is what refunds gave back in each bucket (account charts
	// only): a series of its own, not taken off the routes' credits.
	Refunds     []meter.Credits
	RefundTotal meter.Credits
	index       map[int64]int // bucket by Unix time
}

// Row is one day of the table.
type chartRow struct {
	Day      time.Time
	Credits  []meter.Credits
	Requests int64
	Pages    int64
	Refunds  meter.Credits
}

// Rows is the table form of the chart, newest day first.
func (d chartData) Rows() []chartRow {
	out := make([]chartRow, 0, len(d.Days))
	for i := len(d.Days) - 1; i >= 0; i-- {
		row := chartRow{Day: d.Days[i], Requests: d.Requests[i], Pages: d.Pages[i], Refunds: d.Refunds[i]}
		for r := range d.Routes {
			row.Credits = append(row.Credits, d.Credits[r][i])
		}
		out = append(out, row)
	}
	return out
}

// Label is a bucket's name in the table.
func (d chartData) Label(t time.Time) string {
	if d.Granularity == meter.GranularityHour {
		return t.UTC().Format("2006-01-02 15:00")
	}
	return t.UTC().Format("2006-01-02")
}

// newChart is an empty chart of the last n days or hours (UTC, the
// current one included).
func newChart(g string, n int) chartData {
	to := next(meter.Bucket(time.Now(), g), g)
	from := to.AddDate(0, 0, -n)
	if g == meter.GranularityHour {
		from = to.Add(-time.Duration(n) * time.Hour)
	}
	d := chartData{Granularity: g, N: n, ByAccount: map[string]meter.Credits{}, index: map[int64]int{}}
	for t := from; t.Before(to); t = next(t, g) {
		d.index[t.Unix()] = len(d.Days)
		d.Days = append(d.Days, t)
	}
	d.Requests = make([]int64, len(d.Days))
	d.Pages = make([]int64, len(d.Days))
	d.Refunds = make([]meter.Credits, len(d.Days))
	return d
}

// add sums an account's points (id "" for store-wide totals) into the
// chart's buckets.
func (d *chartData) add(id string, pts []meter.UsagePoint) {
	for _, p := range pts {
		i, ok := d.index[p.Start.Unix()]
		if !ok {
			continue
		}
		ri := slices.Index(d.Routes, p.Route)
		if ri < 0 {
			ri = len(d.Routes)
			d.Routes = append(d.Routes, p.Route)
			d.Credits = append(d.Credits, make([]meter.Credits, len(d.Days)))
		}
		d.Credits[ri][i] += p.Credits
		d.Requests[i] += p.Requests
		d.Pages[i] += p.Pages
		d.Total += p.Credits
		if id != "" {
			d.ByAccount[id] += p.Credits
		}
	}
}

// usageChart sums the series of accounts over the last n days or hours.
func (c *Console) usageChart(ctx context.Context, s consoleStore, accounts []string, g string, n int) (chartData, error) {
	d := newChart(g, n)
	from, to := d.Days[0], next(d.Days[len(d.Days)-1], g)
	for _, id := range accounts {
		pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: g, From: from, To: to})
		if meter.ErrorCode(err) == meter.ECodeAccountNotFound && len(accounts) > 1 {
			continue // listed, then removed
		}
		if err != nil {
			return d, err
		}
		d.add(id, pts)
	}
	return d, nil
}
