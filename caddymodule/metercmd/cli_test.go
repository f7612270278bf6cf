package metercmd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/creditgate/creditgate/caddymodule"
	"github.com/creditgate/creditgate/caddymodule/metercmd"
	"github.com/creditgate/creditgate/internal/freeport"
	"github.com/creditgate/creditgate/meter"
)

// The CLI against a gateway running in this process on the embedded
// store: each test starts its own (one Caddy per process, so these tests
// do not run in parallel).

type gateway struct {
	t           *testing.T
	admin, site string
}

func freeAddr(t *testing.T) string {
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{t: t, admin: freeAddr(t), site: freeAddr(t)}
	src := fmt.Sprintf(`{
	admin %s
	persist_config off
	meter {
		data_dir %s
	}
}
http://%s {
	route {
		meter {
			per_page 1
			# The tests' requests are text: free, so they leave the ledger alone.
			unpriced charge 0
		}
		respond "ok"
	}
}
`, g.admin, filepath.Join(t.TempDir(), "data"), g.site)
	cfg, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
	return g
}

// cli runs `meter args... --address <admin>` with no terminal and fails
// the test on an error.
func (g *gateway) cli(args ...string) string {
	g.t.Helper()
	out, err := metercmd.Run("", false, append(args, "--address", g.admin)...)
	if err != nil {
		g.t.Fatalf("meter %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// cliErr runs a command that must fail and returns its error text.
func (g *gateway) cliErr(in string, terminal bool, args ...string) string {
	g.t.Helper()
	out, err := metercmd.Run(in, terminal, append(args, "--address", g.admin)...)
	if err == nil {
		g.t.Fatalf("meter %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return out + err.Error()
}

// account reads an account from the admin API itself.
func (g *gateway) account(id string) (meter.Account, int) {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + "/meter/accounts/" + id)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a meter.Account
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return a, resp.StatusCode
}

func (g *gateway) balance(id string) meter.Credits {
	g.t.Helper()
	a, code := g.account(id)
	if code != 200 {
		g.t.Fatalf("account %s: HTTP %d", id, code)
	}
	return a.Balance
}

func (g *gateway) entries(id string) int {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + "/meter/accounts/" + id + "/transactions?limit=1000")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Data []meter.LedgerEntry }
	_ = json.NewDecoder(resp.Body).Decode(&page)
	return len(page.Data)
}

// request sends a metered request with key and returns its status.
func (g *gateway) request(key string) int {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.site+"/", strings.NewReader("plain text: one page"))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func credits(s string) meter.Credits {
	c, err := meter.ParseCredits(s)
	if err != nil {
		panic(err)
	}
	return c
}

var keyPattern = regexp.MustCompile(`sk_live_[a-z2-7]{32}`)

// README: `creditgate meter credits add acme -2.5 --type adjustment`.
func TestCreditsAddNegativeAmount(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "100")
	for _, tt := range []struct {
		name    string
		args    []string
		balance string
		printed string
	}{
		{"as the README writes it", []string{"credits", "add", "acme", "-2.5", "--type", "adjustment"}, "97.5", "adjustment -2.5"},
		{"flags first", []string{"credits", "add", "--type", "adjustment", "acme", "-0.5"}, "97", "adjustment -0.5"},
		{"flag=value, and a flag value that looks negative", []string{"credits", "add", "--type=adjustment", "acme", "-1", "--description", "-3 goodwill"}, "96", "adjustment -1"},
		{"positive", []string{"credits", "add", "acme", "6"}, "102", "purchase 6"},
	} {
		if out := g.cli(tt.args...); !strings.Contains(out, tt.printed) {
			t.Fatalf("%s: printed:\n%s", tt.name, out)
		}
		if b := g.balance("acme"); b != credits(tt.balance) {
			t.Fatalf("%s: balance %s, want %s", tt.name, b, tt.balance)
		}
	}
	// After --, everything is an argument.
	if out, err := metercmd.Run("", false, "--address", g.admin, "credits", "add", "--type", "adjustment", "--", "acme", "-2"); err != nil || g.balance("acme") != credits("100") {
		t.Fatalf("after --: %v\n%s", err, out)
	}
	if out := g.cli("transactions", "acme", "--type", "adjustment"); !strings.Contains(out, "-3 goodwill") {
		t.Fatalf("the description that looks like a number was not kept:\n%s", out)
	}
	// A purchase cannot be negative: the API refuses it, nothing changes.
	if e := g.cliErr("", false, "credits", "add", "acme", "-1"); !strings.Contains(e, "invalid") {
		t.Fatalf("negative purchase: %s", e)
	}
	if e := g.cliErr("", false, "credits", "add", "acme"); !strings.Contains(e, "accepts 2 arg(s), received 1") {
		t.Fatalf("missing amount: %s", e)
	}
	if b := g.balance("acme"); b != credits("100") {
		t.Fatalf("balance %s after refusals, want 100", b)
	}
}

func TestKeyCreateShowsItsID(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "10")
	out := g.cli("key", "create", "acme")
	id := regexp.MustCompile(`API key (key_[0-9a-f]{16}) for acme`).FindStringSubmatch(out)
	key := keyPattern.FindString(out)
	if id == nil || key == "" {
		t.Fatalf("key create printed:\n%s", out)
	}
	if list := g.cli("key", "list", "acme"); !strings.Contains(list, id[1]) {
		t.Fatalf("key list does not show %s:\n%s", id[1], list)
	}
	if out := g.cli("key", "create", "acme", "--json"); !regexp.MustCompile(`"id": "key_[0-9a-f]{16}"`).MatchString(out) {
		t.Fatalf("key create --json:\n%s", out)
	}
	g.cli("key", "revoke", "acme", id[1], "--yes")
	if code := g.request(key); code != 401 {
		t.Fatalf("the revoked key answered %d", code)
	}
}

// trim and key revoke cannot be undone: they ask on a terminal, and
// without one they need --yes.
func TestDestructiveOperationsAsk(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "10")
	g.cli("credits", "add", "acme", "1")
	key := keyPattern.FindString(g.cli("key", "create", "acme"))
	id := regexp.MustCompile(`key_[0-9a-f]{16}`).FindString(g.cli("key", "list", "acme"))
	trim := []string{"account", "trim", "acme", "--before", "2999-01-01"}
	revoke := []string{"key", "revoke", "acme", id}
	unchanged := func(when string) {
		t.Helper()
		if n := g.entries("acme"); n != 2 {
			t.Fatalf("%s: %d ledger entries, want 2", when, n)
		}
		if code := g.request(key); code != 200 {
			t.Fatalf("%s: the key answered %d", when, code)
		}
	}
	for _, args := range [][]string{trim, revoke} {
		// A script without --yes: refused, nothing asked or done.
		if e := g.cliErr("y\n", false, args...); !strings.Contains(e, "cannot be undone: add --yes to confirm (stdin is not a terminal to ask on)") {
			t.Fatalf("%v without a terminal: %s", args, e)
		}
		unchanged(args[0] + " without a terminal")
		// A terminal that answers no (or nothing).
		for _, answer := range []string{"n\n", "\n", ""} {
			e := g.cliErr(answer, true, args...)
			if !strings.Contains(e, "cannot be undone. Continue? [y/N]") || !strings.Contains(e, "canceled: nothing was changed") {
				t.Fatalf("%v answered %q: %s", args, answer, e)
			}
		}
		unchanged(args[0] + " answered no")
	}
	// A terminal that answers yes.
	out, err := metercmd.Run("y\n", true, append(trim, "--address", g.admin)...)
	if err != nil || !strings.Contains(out, "2 ledger entries removed") || g.entries("acme") != 0 {
		t.Fatalf("trim answered yes: %v\n%s", err, out)
	}
	if g.balance("acme") != credits("11") {
		t.Fatal("trim changed the balance")
	}
	// --yes in a script.
	if out := g.cli(append(revoke, "--yes")...); !strings.Contains(out, id) {
		t.Fatalf("revoke --yes printed:\n%s", out)
	}
	if code := g.request(key); code != 401 {
		t.Fatalf("the revoked key answered %d", code)
	}
	// Canceling a job asks too (this gateway has no job routes: the API
	// answers once it is asked).
	if e := g.cliErr("", false, "job", "cancel", "acme", "up-1"); !strings.Contains(e, "add --yes") {
		t.Fatalf("job cancel without a terminal: %s", e)
	}
	if e := g.cliErr("", false, "job", "cancel", "acme", "up-1", "-y"); !strings.Contains(e, "job_not_found") {
		t.Fatalf("job cancel -y: %s", e)
	}
}

func TestListingsSayWhenMorePagesExist(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "1")
	for i := range 3 {
		g.cli("credits", "add", "acme", fmt.Sprint(i+2))
	}
	more := regexp.MustCompile(`more entries: add --cursor (\S+) for the next page`)
	out := g.cli("transactions", "acme", "--limit", "3")
	m := more.FindStringSubmatch(out)
	if m == nil || strings.Count(out, "purchase") != 3 {
		t.Fatalf("first page:\n%s", out)
	}
	out = g.cli("transactions", "acme", "--limit", "3", "--cursor", m[1])
	if more.MatchString(out) || strings.Count(out, "purchase") != 1 || !regexp.MustCompile(`purchase\s+1\s+1`).MatchString(out) {
		t.Fatalf("last page:\n%s", out)
	}
	g.cli("account", "create", "beta")
	out = g.cli("account", "list", "--limit", "1")
	if !strings.Contains(out, "more accounts: add --cursor acme for the next page") {
		t.Fatalf("account list:\n%s", out)
	}
	if out := g.cli("account", "list", "--limit", "1", "--cursor", "acme"); !strings.Contains(out, "beta") || strings.Contains(out, "acme") {
		t.Fatalf("account list, second page:\n%s", out)
	}
}

// A mistyped value is refused before anything is sent, naming the flag
// or argument.
func TestBadValuesNameTheFlag(t *testing.T) {
	g := startGateway(t)
	g.cli("account", "create", "acme", "--credits", "10")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"account", "create", "beta", "--credits", "abc"}, `--credits "abc": expected a number of credits`},
		{[]string{"account", "create", "beta", "--credits", "1.2345"}, `--credits "1.2345"`},
		{[]string{"credits", "add", "acme", "abc"}, `amount "abc": expected a number of credits`},
		{[]string{"credits", "add", "acme", "5", "--type", "gift"}, `--type "gift": expected purchase or adjustment`},
		{[]string{"credits", "refund", "acme", "1-0", "--amount", "lots"}, `--amount "lots"`},
		{[]string{"transactions", "acme", "--from", "yesterday"}, `--from "yesterday": expected a date YYYY-MM-DD or RFC 3339`},
		{[]string{"transactions", "acme", "--limit", "many"}, `"--limit"`},
		{[]string{"key", "create", "acme", "--mode", "prod"}, `--mode "prod": expected live or test`},
		{[]string{"account", "trim", "acme", "--before", "soon", "--yes"}, `--before "soon"`},
		{[]string{"account", "trim", "acme", "--yes"}, `--before is required`},
		{[]string{"usage", "acme", "--period", "last"}, `--period "last": expected current, previous or a date`},
	} {
		if e := g.cliErr("", false, tt.args...); !strings.Contains(e, tt.want) {
			t.Errorf("meter %s: %s\nwant it to contain %s", strings.Join(tt.args, " "), e, tt.want)
		}
	}
	// Good values pass the same checks.
	for _, p := range []string{"current", "previous", "2026-11-15"} {
		if out := g.cli("usage", "acme", "--period", p); !strings.Contains(out, "period ") {
			t.Fatalf("usage --period %s printed:\n%s", p, out)
		}
	}
	if _, code := g.account("beta"); code != 404 {
		t.Fatalf("account beta: HTTP %d, want 404", code)
	}
	if b, n := g.balance("acme"), g.entries("acme"); b != credits("10") || n != 1 {
		t.Fatalf("acme: balance %s, %d entries after refusals", b, n)
	}
}

func TestUnreachableAdminAPI(t *testing.T) {
	down := freeAddr(t) // nothing listens there
	out, err := metercmd.Run("", false, "account", "get", "acme", "--address", down)
	want := "cannot reach the admin API at " + down + ": is the gateway running? Give its admin address with --address or CREDITGATE_ADMIN"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("gateway down: %v\n%s", err, out)
	}
	t.Setenv("CREDITGATE_ADMIN", down)
	if _, err := metercmd.Run("", false, "account", "get", "acme"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("CREDITGATE_ADMIN %s: %v", down, err)
	}
	// CREDITGATE_ADMIN names the gateway when --address does not.
	g := startGateway(t)
	t.Setenv("CREDITGATE_ADMIN", g.admin)
	if out, err := metercmd.Run("", false, "account", "create", "acme", "--credits", "3"); err != nil || g.balance("acme") != credits("3") {
		t.Fatalf("with CREDITGATE_ADMIN: %v\n%s", err, out)
	}
}
