package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/freeport"
	"github.com/creditgate/creditgate/internal/pdftest"
)

// TestDemoCaddyfileWithCLI builds the creditgate binary, runs it with the
// repository's Caddyfile and the embedded store (as `make run` does), and drives it with the CLI
// exactly as the README shows.
func TestDemoCaddyfileWithCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "creditgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "run", "--config", "../../Caddyfile")
	// The demo uses the embedded store, in Caddy's data directory.
	srv.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		srv.Wait()
		if t.Failed() {
			t.Logf("creditgate output:\n%s", logs.String())
		}
	}()
	freeport.WaitHTTP(t, "http://localhost:2019/config/")

	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"meter"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("creditgate meter %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("account", "create", "acme", "--credits", "100"); !regexp.MustCompile(`acme\s+100\s+0\s+100`).MatchString(out) {
		t.Fatalf("account create printed:\n%s", out)
	}
	key := regexp.MustCompile(`sk_live_[a-z2-7]{32}`).FindString(cli("key", "create", "acme"))
	if key == "" {
		t.Fatal("key create printed no key")
	}

	req, _ := http.NewRequest("POST", "http://localhost:8080/v1/ocr", bytes.NewReader(pdftest.Pages(4)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Cost") != "10" || resp.Header.Get("X-Remaining-Credits") != "90" {
		t.Fatalf("demo request: %d cost %q remaining %q: %s", resp.StatusCode, resp.Header.Get("X-Request-Cost"), resp.Header.Get("X-Remaining-Credits"), body)
	}
	if !strings.Contains(string(body), `"status":"done"`) {
		t.Fatalf("demo upstream answered %s", body)
	}

	if out := cli("credits", "add", "acme", "2.5", "--idempotency-key", "inv-1"); !strings.Contains(out, "purchase 2.5") {
		t.Fatalf("credits add printed:\n%s", out)
	}
	cli("credits", "add", "acme", "2.5", "--idempotency-key", "inv-1")
	if out := cli("account", "get", "acme"); !regexp.MustCompile(`acme\s+92.5\s+0\s+92.5`).MatchString(out) {
		t.Fatalf("account get printed:\n%s", out)
	}
	out := cli("transactions", "acme")
	if !regexp.MustCompile(`usage\s+-10\s+90\s+ocr`).MatchString(out) || strings.Count(out, "purchase") != 2 {
		t.Fatalf("transactions printed:\n%s", out)
	}
	if out := cli("account", "get", "acme", "--json"); !strings.Contains(out, `"balance": 92.5`) {
		t.Fatalf("--json printed:\n%s", out)
	}
	if out := cli("transactions", "acme", "--type", "usage"); strings.Contains(out, "purchase") || !strings.Contains(out, "usage") {
		t.Fatalf("transactions --type usage printed:\n%s", out)
	}
	cli("account", "create", "beta")
	if out := cli("account", "list"); !regexp.MustCompile(`(?s)acme\s+92.5.*beta\s+0`).MatchString(out) {
		t.Fatalf("account list printed:\n%s", out)
	}
	// Rates name their route: both demo routes price "pages".
	cli("account", "update", "acme", "--set", "rates.convert.pages=0.5", "--set", "page_limit=100")
	out = cli("account", "update", "acme", "--set", "rates.ocr.pages=3", "--json")
	if !strings.Contains(out, `"convert.pages": 0.5`) || !strings.Contains(out, `"ocr.pages": 3`) || !strings.Contains(out, `"page_limit": 100`) {
		t.Fatalf("account update kept or set the wrong settings:\n%s", out)
	}
	cli("account", "disable", "acme")
	if out := cli("account", "list"); !regexp.MustCompile(`acme\s+92.5\s+0\s+92.5\s+no`).MatchString(out) {
		t.Fatalf("disabled account listed as:\n%s", out)
	}
	cli("account", "enable", "acme")
	keyID := regexp.MustCompile(`key_[0-9a-f]{16}`).FindString(cli("key", "list", "acme"))
	if out := cli("key", "revoke", "acme", keyID, "--yes"); !strings.Contains(out, keyID) || !regexp.MustCompile(`\d{4}-\d\d-\d\dT`).MatchString(out) {
		t.Fatalf("key revoke printed:\n%s", out)
	}
	resp, err = http.DefaultClient.Do(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a revoked key answered %d", resp.StatusCode)
	}
	if out := cli("account", "trim", "acme", "--before", "2999-01-01", "--yes"); !strings.Contains(out, "3 ledger entries removed") {
		t.Fatalf("trim printed:\n%s", out)
	}

	bad, err := exec.Command(bin, "meter", "account", "create", "acme").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "account_exists") {
		t.Fatalf("duplicate account: %v\n%s", err, bad)
	}
	// The demo has no job route: the job commands reach the admin API and
	// say so.
	bad, err = exec.Command(bin, "meter", "job", "cancel", "acme", "up-1", "--yes").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "job_not_found") {
		t.Fatalf("job cancel of an unknown job: %v\n%s", err, bad)
	}
}
