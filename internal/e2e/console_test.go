package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// Two gateway processes on one Redis: the console of either shows totals
// that include the usage both served (the sum of every account's
// series) and the refusals both answered, once their rollups ran.
func TestConsoleTotalsAcrossGateways(t *testing.T) {
	rs := redistest.New(t)
	up := newUpstream(t)
	cfg := config{Redis: rs.URL(), Upstream: up.addr, Console: true}
	g1, g2 := startGateway(t, cfg), startGateway(t, cfg)
	k1, k2 := g1.account("one", 10), g2.account("two", 10)
	ctx := context.Background()
	for _, r := range []result{
		send(ctx, up, g1.URL, k1, "one", "ok", "a", 3, false),
		send(ctx, up, g2.URL, k2, "two", "ok", "b", 2, false),
		send(ctx, up, g2.URL, k2, "two", "ok", "c", 4, false),
	} {
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", r.ID, r.Status, r.Code)
		}
	}
	before := up.count()
	refusals := []result{
		send(ctx, up, g1.URL, "sk_live_unknown", "one", "ok", "d", 1, false),
		send(ctx, up, g2.URL, k2, "two", "ok", "e", 9, false), // 4 credits left
	}
	if refusals[0].Code != meter.ECodeInvalidAPIKey || refusals[1].Code != meter.ECodeInsufficientCredits {
		t.Fatalf("refusals: %+v", refusals)
	}
	if up.count() != before {
		t.Fatal("a refused request reached the upstream")
	}
	s := openStore(t, rs.URL())
	var sum meter.Credits
	for _, id := range []string{"one", "two"} {
		day := meter.Bucket(time.Now(), meter.GranularityDay)
		pts, err := s.UsageSeries(ctx, meter.SeriesQuery{AccountID: id, Granularity: meter.GranularityDay, From: day, To: day.AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			sum += p.Credits
		}
	}
	if sum != 9*meter.Scale {
		t.Fatalf("series sum %s", sum)
	}
	total := regexp.MustCompile(`data-total="([^"]*)"`)
	refused := func(code string) *regexp.Regexp {
		return regexp.MustCompile(`<tr data-code="` + code + `"><td>refused</td><td>` + code + `</td><td class="n">1</td>`)
	}
	var page string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		for _, g := range []*gateway{g1, g2} {
			page = get(t, g.URL+"/console/gateway")
			m := total.FindStringSubmatch(page)
			if m != nil && m[1] == sum.String() && refused(meter.ECodeInvalidAPIKey).MatchString(page) &&
				refused(meter.ECodeInsufficientCredits).MatchString(page) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consoles never showed total %s and both gateways' refusals:\n%s", sum, page)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b)
}
