package pricing

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/creditgate/creditgate/meter"
)

// RateNames lists the rates of the rules that an account may override:
// each rule's line name ("pages", "ocr_api", a page class), or for a tier
// table each tier's ("pages.5", "pages.more"). Sorted.
func (rs Rules) RateNames() []string {
	var out []string
	for _, r := range rs {
		switch r := r.(type) {
		case *countRule:
			out = append(out, r.sched.rateNames()...)
		case *responseRule:
			out = append(out, r.sched.rateNames()...)
		case perCall:
			out = append(out, r.name)
		case *jsonRule:
			out = append(out, r.name)
		case *classRule:
			out = append(out, r.names()...)
		}
	}
	sort.Strings(out)
	return out
}

func (s schedule) rateNames() []string {
	if s.tiers == nil {
		return []string{s.name}
	}
	out := make([]string, len(s.tiers))
	for i := range s.tiers {
		out[i] = s.tierRateName(i)
	}
	return out
}

// Scope knows the rates of every route of a gateway, so that an account's
// rate applies to the route it names and no other. An account's rate is
// keyed "<route>.<rate>" ("convert.pages": that route only) or "<rate>"
// ("pages": only while exactly one route has a rate of that name; where
// several have it, the name is ambiguous: refused by Check, ignored by
// For). Safe for concurrent use.
type Scope struct {
	mu      sync.RWMutex
	routes  map[string]map[string]bool // route -> its rate names
	unnamed int
}

// unnamedPrefix starts the scope's name of a route without a name: no
// rate key can spell it, so such a route gets only unambiguous unscoped
// rates.
const unnamedPrefix = "\x00unnamed-"

// Add records a route's rate names (RateNames) and returns the route's
// name in the scope, to give For. A route added twice (the same name on
// two sites) has the union of both; each route without a name ("") is
// its own.
func (s *Scope) Add(route string, names []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routes == nil {
		s.routes = map[string]map[string]bool{}
	}
	if route == "" {
		s.unnamed++
		route = fmt.Sprintf("%s%d", unnamedPrefix, s.unnamed)
	}
	set := s.routes[route]
	if set == nil {
		set = map[string]bool{}
		s.routes[route] = set
	}
	for _, n := range names {
		set[n] = true
	}
	return route
}

// owners lists the routes that have the rate name, sorted. Callers hold mu.
func (s *Scope) owners(name string) []string {
	var out []string
	for r, set := range s.routes {
		if set[name] {
			if strings.HasPrefix(r, unnamedPrefix) {
				r = "a route without a name"
			}
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// For returns the account's rates that apply on route, keyed by the
// route's own rate names: Input.Rates for that route. A scoped rate wins
// over an unscoped one of the same name.
func (s *Scope) For(rates map[string]meter.Credits, route string) map[string]meter.Credits {
	if len(rates) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := s.routes[route]
	out := make(map[string]meter.Credits, len(rates))
	for k, v := range rates {
		if rest, ok := strings.CutPrefix(k, route+"."); ok && names[rest] {
			out[rest] = v
		}
	}
	for k, v := range rates {
		if _, scoped := out[k]; !scoped && names[k] && len(s.owners(k)) == 1 {
			out[k] = v
		}
	}
	return out
}

// Check refuses account rates that would not apply as their key says: a
// key that names no rate of any route (a typo would silently keep the
// full price), and an unscoped key that several routes have. A gateway
// without metered routes cannot tell, and accepts any name.
func (s *Scope) Check(rates map[string]meter.Credits) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.routes) == 0 {
		return nil
	}
	keys := make([]string, 0, len(rates))
	for k := range rates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s.scoped(k) {
			continue
		}
		switch owners := s.owners(k); len(owners) {
		case 1:
		case 0:
			return meter.Errorf(meter.ECodeInvalid, "rates: %q is not a rate of any route; use <route>.<rate>, one of %s", k, s.known())
		default:
			return meter.Errorf(meter.ECodeInvalid, "rates: %q is a rate of several routes (%s): name the one it is for, e.g. %q",
				k, strings.Join(owners, ", "), owners[0]+"."+k)
		}
	}
	return nil
}

// scoped reports whether k is "<route>.<rate>" of a known route.
func (s *Scope) scoped(k string) bool {
	for r, set := range s.routes {
		if rest, ok := strings.CutPrefix(k, r+"."); ok && set[rest] {
			return true
		}
	}
	return false
}

// known lists every scoped rate name, for error messages.
func (s *Scope) known() string {
	var all []string
	for r, set := range s.routes {
		if strings.HasPrefix(r, unnamedPrefix) {
			continue
		}
		for n := range set {
			all = append(all, r+"."+n)
		}
	}
	sort.Strings(all)
	return listSome(all, 8)
}
