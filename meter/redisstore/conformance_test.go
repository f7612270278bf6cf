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
