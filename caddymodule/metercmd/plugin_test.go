package metercmd_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/freeport"
	"github.com/creditgate/creditgate/internal/pdftest"
)

// pluginMain is a stock Caddy main, as xcaddy writes it, with this module
// as the only plugin.
const pluginMain = `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/creditgate/creditgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
`

// buildPluginCaddy builds pluginMain in a module of its own that requires
// this checkout (a replace directive, as xcaddy --with <module>=<dir>
// does) at the versions of its go.mod and go.sum, so the module and build
// caches of the repository's own build serve it.
func buildPluginCaddy(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod := strings.Replace(string(gomod), "module github.com/creditgate/creditgate",
		"module example.com/mycaddy\n\nrequire github.com/creditgate/creditgate v0.0.0\n\nreplace github.com/creditgate/creditgate => "+root, 1)
	dir := t.TempDir()
	for name, data := range map[string]string{"go.mod": mod, "go.sum": string(gosum), "main.go": pluginMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of a stock Caddy with the module: %v\n%s", err, out)
	}
	return bin
}

// A Caddy built with the module, and nothing else of this repository,
// meters requests and has `caddy meter`.
func TestPluginInStockCaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Caddy binary")
	}
	bin := buildPluginCaddy(t)
	admin, site := freeAddr(t), freeAddr(t)
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	src := fmt.Sprintf(`{
	admin %s
	persist_config off
	meter {
		redis {$CREDITGATE_REDIS:off}
		data_dir %s
	}
}
http://%s {
	route {
		meter {
			per_page 1
		}
		respond "converted"
	}
}
`, admin, filepath.Join(t.TempDir(), "data"), site)
	if err := os.WriteFile(caddyfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDITGATE_") { // no CREDITGATE_REDIS: the embedded store
			env = append(env, kv)
		}
	}
	// Last, so that they win over the inherited ones.
	env = append(env, "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, "run", "--config", caddyfile)
	srv.Env = env
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("caddy output:\n%s", logs.String())
		}
	})
	freeport.WaitHTTP(t, "http://"+admin+"/config/")

	caddyMeter := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"meter"}, args...), "--address", admin)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy meter %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	caddyMeter("account", "create", "acme", "--credits", "10")
	key := keyPattern.FindString(caddyMeter("key", "create", "acme"))
	if key == "" {
		t.Fatal("caddy meter key create printed no key")
	}
	req, _ := http.NewRequest("POST", "http://"+site+"/convert", bytes.NewReader(pdftest.Pages(3)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/pdf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Cost") != "3" || resp.Header.Get("X-Remaining-Credits") != "7" {
		t.Fatalf("metered request: HTTP %d, cost %q, remaining %q", resp.StatusCode, resp.Header.Get("X-Request-Cost"), resp.Header.Get("X-Remaining-Credits"))
	}
	if out := caddyMeter("credits", "add", "acme", "-2.5", "--type", "adjustment"); !strings.Contains(out, "adjustment -2.5") {
		t.Fatalf("caddy meter credits add printed:\n%s", out)
	}
	if out := caddyMeter("account", "get", "acme"); !strings.Contains(out, "4.5") {
		t.Fatalf("caddy meter account get printed:\n%s", out)
	}
}
