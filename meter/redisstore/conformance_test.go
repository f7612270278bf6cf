package redisstore

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// The shared conformance suite, on the package's redis-server. Its cases
// use account ids of their own, so they share the server with the other
// tests.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) meter.Store { return newStore(t, Options{}) })
}

// withGrants exposes the Redis mirror of credit grants to the suite (the
// Store does not expose it yet: see grants.go).
type withGrants struct {
	meter.Store
	grants
}

func (w withGrants) Unwrap() meter.Store { return w.Store }

// TestConformanceGrants runs the credit grant cases on Redis.
func TestConformanceGrants(t *testing.T) {
	storetest.Run(t, func(t *testing.T) meter.Store {
		s := newStore(t, Options{})
		return withGrants{s, grants{s}}
	})
}
