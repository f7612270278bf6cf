package caddymodule

import (
	"fmt"
	"reflect"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// checkConsoles refuses a config in which a console is reachable with no
// authentication before it: the console moves money. It runs when the
// meter app starts, once every HTTP route is provisioned.
func (a *App) checkConsoles() error {
	if len(a.consoles) == 0 {
		return nil
	}
	ctx := a.consoles[0].ctx
	httpApp, err := ctx.AppIfConfigured("http")
	if err != nil {
		return nil // no HTTP app: the consoles serve nothing
	}
	unguarded := map[*Console]bool{}
	for _, srv := range httpApp.(*caddyhttp.App).Servers {
		walkGuards(srv.Routes, nil, unguarded)
	}
	for _, c := range a.consoles {
		if unguarded[c] && !c.InsecureNoAuth {
			return fmt.Errorf("meter_console at %s: no authentication before it on its route; "+
				"put basic_auth (or forward_auth) before meter_console in the same route, "+
				"or set insecure_no_auth if something else protects it", c.Prefix)
		}
	}
	return nil
}

// walkGuards marks the consoles of routes that no authentication handler
// runs before. guards holds the matcher sets of the routes whose
// authentication ran earlier in the chain; a route with no matcher guards
// every later route, one with matchers the later routes with the same.
func walkGuards(routes caddyhttp.RouteList, guards []caddyhttp.MatcherSets, unguarded map[*Console]bool) {
	guards = append([]caddyhttp.MatcherSets(nil), guards...)
	for _, rt := range routes {
		m := rt.MatcherSets
		guarded := false
		for _, g := range guards {
			if len(g) == 0 || reflect.DeepEqual(g, m) {
				guarded = true
			}
		}
		for _, h := range rt.Handlers {
			switch h := h.(type) {
			case *caddyauth.Authentication:
				guarded = true
			case *reverseproxy.Handler:
				// forward_auth is a reverse_proxy whose answers are
				// handled (copied headers, or the refusal passed on).
				if len(h.HandleResponse) > 0 {
					guarded = true
				}
			case *caddyhttp.Subroute:
				sub := guards
				if guarded {
					sub = append(sub, nil)
				}
				walkGuards(h.Routes, sub, unguarded)
			case *Console:
				if !guarded {
					unguarded[h] = true
				}
			}
		}
		if guarded {
			guards = append(guards, m)
		}
	}
}
