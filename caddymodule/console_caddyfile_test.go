package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestConsoleCaddyfile: meter_console's subdirectives, rollup_interval
// among them, parse strictly and name the bad token.
func TestConsoleCaddyfile(t *testing.T) {
	c := new(Console)
	err := c.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`meter_console {
		prefix /ops
		page_size 20
		rollup_interval 45s
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "/ops" || c.PageSize != 20 || c.RollupInterval != caddy.Duration(45*time.Second) {
		t.Errorf("parsed %+v", c)
	}
	for _, bad := range []struct{ src, want string }{
		{"rollup_interval 0s", `rollup_interval "0s"`},
		{"rollup_interval 2h", `rollup_interval "2h"`},
		{"rollup_interval soon", `rollup_interval "soon"`},
		{"rollup_interval", "needs a value"},
		{"rollup_interval 30s\n\t\trollup_interval 30s", "given more than once"},
	} {
		err := new(Console).UnmarshalCaddyfile(caddyfile.NewTestDispenser("meter_console {\n\t\t" + bad.src + "\n\t}"))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.want)
		}
	}
	if err := (&Console{PageSize: 50, GatewayScan: 1000, RollupInterval: caddy.Duration(time.Millisecond)}).Validate(); err == nil {
		t.Error("a 1ms rollup_interval in JSON passed Validate")
	}
}
