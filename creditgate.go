// Package creditgate plugs creditgate into a Caddy build: importing it
// registers the meter modules, the meter Caddyfile directives and the
// `caddy meter` subcommands (it imports caddymodule, where they live). It
// is the module's root so that xcaddy can name the module itself:
//
//	xcaddy build v2.11.9 --with github.com/creditgate/creditgate=<checkout>
package creditgate

import _ "github.com/creditgate/creditgate/caddymodule"
