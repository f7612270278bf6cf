// Command creditgate is Caddy with the standard modules and the meter
// modules, whose package also brings the `creditgate meter ...`
// subcommands (caddymodule/metercmd) that drive the meter admin API.
// `creditgate run --config Caddyfile` works like `caddy run`.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/creditgate/creditgate/caddymodule"
)

func main() {
	tuneGC()
	caddycmd.Main()
}
