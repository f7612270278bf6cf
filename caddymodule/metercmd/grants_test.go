package metercmd_test

import (
	"regexp"
	"strings"
	"testing"
)

// `meter grant add/list/void` through the admin API: the grant joins the
// balance and is shown with the account; void asks first, then takes
// what it has left with a grant_void entry; a retried add with its
// idempotency key grants once.
func TestGrantCommands(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "10")
	out := g.cli("grant", "add", "acme", "100", "--expires", "720h", "--priority", "2", "--description", "promo", "--idempotency-key", "p-1")
	id := regexp.MustCompile(`gr_[0-9]+-[0-9]+`).FindString(out)
	if id == "" || !strings.Contains(out, "active") {
		t.Fatalf("grant add printed:\n%s", out)
	}
	g.cli("grant", "add", "acme", "100", "--idempotency-key", "p-1")
	if b := g.balance("acme"); b != credits("110") {
		t.Fatalf("balance %s, want 110 (10 paid + 100 granted once)", b)
	}
	if out := g.cli("account", "get", "acme"); !strings.Contains(out, id) || !strings.Contains(out, "100") {
		t.Fatalf("account get does not show the grant:\n%s", out)
	}
	if out := g.cli("grant", "list", "acme"); !strings.Contains(out, id) {
		t.Fatalf("grant list:\n%s", out)
	}
	if e := g.cliErr("", false, "grant", "void", "acme", id); !strings.Contains(e, "--yes") {
		t.Fatalf("void without a terminal or --yes: %s", e)
	}
	if b := g.balance("acme"); b != credits("110") {
		t.Fatalf("balance %s after a refused void", b)
	}
	if out := g.cli("grant", "void", "acme", id, "--yes"); !strings.Contains(out, "voided") {
		t.Fatalf("void printed:\n%s", out)
	}
	if b := g.balance("acme"); b != credits("10") || g.entries("acme") != 3 {
		t.Fatalf("balance %s, %d entries after the void; want 10 and purchase, grant, grant_void", b, g.entries("acme"))
	}
	if e := g.cliErr("", false, "grant", "void", "acme", id, "--yes"); !strings.Contains(e, "grant_not_found") {
		t.Fatalf("void twice: %s", e)
	}
	if e := g.cliErr("", false, "grant", "add", "acme", "5", "--expires", "tomorrow"); !strings.Contains(e, "--expires") {
		t.Fatalf("bad --expires: %s", e)
	}
}
