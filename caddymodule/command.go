package caddymodule

// Every Caddy build that includes this module gets `caddy meter ...`:
// Caddy plugins register their subcommands from the module's package.
import _ "github.com/creditgate/creditgate/caddymodule/metercmd"
