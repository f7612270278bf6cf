package metercmd_test

import (
	"strings"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// The plan commands: a plan made through the API, an account put on it
// and taken off, a deletion that asks first.
func TestCLIPlans(t *testing.T) {
	g := startGateway(t)
	out := g.cli("plan", "set", "team", "--set", "monthly_quota=100", "--set", "rates.pages=2", "--set", "quota_unit=pages")
	if !strings.Contains(out, "team") || !strings.Contains(out, "monthly_quota=100") || !strings.Contains(out, "store") {
		t.Errorf("plan set printed:\n%s", out)
	}
	if out := g.cli("plan", "list"); !strings.Contains(out, "team") || !strings.Contains(out, "rates=map[pages:2]") {
		t.Errorf("plan list printed:\n%s", out)
	}
	g.cli("account", "create", "acme", "--credits", "5", "--plan", "team")
	a, _ := g.account("acme")
	if a.Settings.Plan != "team" || a.Quota.Limit != meter.Credits(100_000) || a.Balance != meter.Credits(5000) {
		t.Errorf("account on team: plan %q quota %s balance %s", a.Settings.Plan, a.Quota.Limit, a.Balance)
	}
	if out := g.cli("account", "get", "acme"); !strings.Contains(out, "plan team") {
		t.Errorf("account get printed:\n%s", out)
	}
	g.cli("account", "plan", "acme", "none")
	if a, _ := g.account("acme"); a.Settings.Plan != "" || a.Quota.Limit != 0 || a.Balance != meter.Credits(5000) {
		t.Errorf("off the plan: plan %q quota %s balance %s", a.Settings.Plan, a.Quota.Limit, a.Balance)
	}
	if msg := g.cliErr("", false, "account", "plan", "acme", "nope"); !strings.Contains(msg, `no plan "nope"`) {
		t.Errorf("unknown plan: %s", msg)
	}
	if msg := g.cliErr("", false, "plan", "delete", "team"); !strings.Contains(msg, "--yes") {
		t.Errorf("delete without --yes: %s", msg)
	}
	g.cli("plan", "delete", "team", "--yes")
	if msg := g.cliErr("", false, "plan", "get", "team"); !strings.Contains(msg, `no plan "team"`) {
		t.Errorf("deleted plan: %s", msg)
	}
}
