package metercmd_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
)

// usage --granularity prints one row per day or hour with the charged
// credits and a bar, and totals that match the requests.
func TestUsageSeriesTable(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "10")
	key := keyPattern.FindString(g.cli("key", "create", "acme"))
	for range 3 {
		req, _ := http.NewRequest("POST", "http://"+g.site+"/", bytes.NewReader(pdftest.Pages(1)))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	today := time.Now().UTC().Format("2006-01-02")
	out := g.cli("usage", "acme", "--granularity", "day", "--from", time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02"), "--to", today)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "DAY (UTC)") ||
		!regexp.MustCompile(`^`+today+`\s+3\s+3\s+3\s+█{30}$`).MatchString(lines[3]) ||
		!regexp.MustCompile(`^total\s+3\s+3\s+3`).MatchString(lines[4]) {
		t.Fatalf("usage --granularity day printed:\n%s", out)
	}
	if out := g.cli("usage", "acme", "--granularity", "hour"); strings.Count(out, "\n") != 26 || !strings.Contains(out, "HOUR (UTC)") {
		t.Fatalf("usage --granularity hour printed:\n%s", out)
	}
	for args, want := range map[string]string{
		"--granularity week":              `--granularity "week": expected day or hour`,
		"--granularity day --from monday": `--from "monday": expected a date`,
	} {
		if e := g.cliErr("", false, append([]string{"usage", "acme"}, strings.Fields(args)...)...); !strings.Contains(e, want) {
			t.Errorf("usage %s: %s", args, e)
		}
	}
}
