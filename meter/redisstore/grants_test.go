package redisstore

import (
	"testing"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// The credit grant cases of the conformance suite (which TestConformance
// runs on one server) on a cluster of three masters: every script that
// reads or writes an account's lots touches its one slot.
func TestGrantsOnCluster(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.RunGrants(t, func(t *testing.T) meter.Store { return s })
}
