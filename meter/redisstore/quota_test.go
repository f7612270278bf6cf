package redisstore

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// The period helpers and pool assertions are the conformance suite's.
var (
	month         = storetest.Month
	reserveIn     = storetest.ReserveIn
	mustReserveIn = storetest.MustReserveIn
	qs            = storetest.QS
	ovs           = storetest.OVS
)

// use is a usage entry as a table states it (storetest.Use's fields).
type use struct{ Amount, Quota, Overage, After meter.Credits }

// expectPools is storetest.ExpectPools with this package's use literals.
func expectPools(t *testing.T, s *Store, id string, balance, reserved meter.Credits,
	q meter.QuotaState, o meter.OverageState, uses ...use) {
	t.Helper()
	us := make([]storetest.Use, len(uses))
	for i, u := range uses {
		us[i] = storetest.Use(u)
	}
	storetest.ExpectPools(t, s, id, balance, reserved, q, o, us...)
}
