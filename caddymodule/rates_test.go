package caddymodule

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// startDemo runs the repository's own Caddyfile (the demo of `make run`)
// with the test's admin address, store, site and upstream addresses.
func startDemo(t *testing.T, global string) *gateway {
	t.Helper()
	src, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	up := freeAddr(t)
	_, upPort, _ := strings.Cut(up, ":")
	store := global[strings.Index(global, "\tmeter {"):strings.LastIndex(global, "}")]
	s := string(src)
	for old, repl := range map[string]string{
		"\tadmin localhost:2019\n": "\tadmin {ADMIN}\n\tpersist_config off\n\tauto_https off\n" + store,
		":8080 {":                  "http://{SITE} {",
		"localhost:9080":           up,
		":9080 {":                  "http://:" + upPort + " {",
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("../Caddyfile: no %q to replace", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	return startGateway(t, s)
}

// An account's rate applies to the route it names. In the demo, convert
// and ocr both price "pages": "convert.pages" cuts convert only, and /v1/ocr
// keeps 2.5 a page; an unscoped "pages" is refused as ambiguous, and one
// already stored (before scoping) changes neither route.
func TestRatesAreScopedToTheirRoute(t *testing.T) {
	eachStore(t, func(t *testing.T, global string) {
		g := startDemo(t, global)
		key := g.newAccount("demo_rates", 100, meter.ModeLive)
		var out map[string]any
		if code := g.adminDo("PATCH", "/meter/accounts/demo_rates", map[string]any{"rates": map[string]any{"pages": 0.5}}, &out); code != 400 {
			t.Fatalf("unscoped pages on two routes: HTTP %d %v, want 400", code, out)
		}
		if code := g.adminDo("PATCH", "/meter/accounts/demo_rates", map[string]any{"rates": map[string]any{"extract.pages": 0.5}}, &out); code != 400 {
			t.Fatalf("a route the gateway does not have: HTTP %d %v, want 400", code, out)
		}
		setRates(t, g, "demo_rates", map[string]any{"convert.pages": 0.5})

		expect(t, g, "/v1/convert", key, "application/pdf", pdftest.Pages(4), 200, "2", "98")
		expect(t, g, "/v1/ocr", key, "application/pdf", pdftest.Pages(2), 200, "5", "93")
		g.assertBalance("demo_rates", 93, 0)

		// Stored before rates were scoped (or written past the admin API).
		st := g.account("demo_rates").Settings
		st.Rates = map[string]meter.Credits{"pages": credits(0.5)}
		if _, err := activeStore(t).UpdateSettings(context.Background(), "demo_rates", st); err != nil {
			t.Fatal(err)
		}
		activeStoreApp(t).keys.dropAccount("demo_rates")
		expect(t, g, "/v1/ocr", key, "application/pdf", pdftest.Pages(2), 200, "5", "88")
		expect(t, g, "/v1/convert", key, "application/pdf", pdftest.Pages(2), 200, "2", "86")
		g.assertBalance("demo_rates", 86, 0)
	})
}
