package boltstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter/storetest"
)

// Random operation sequences through the store and the money model
// (meter/ledger), compared after each step; the store's clock is a fake
// one, so expiry costs no time. MODEL_STEPS=n for a longer run.
func TestModel(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		clk := newClock()
		s := openTemp(t, Options{Now: clk.Now})
		s.db.NoSync = true // durability is not what this tests; fsync would be most of its time
		storetest.RunModel(t, s, storetest.ModelClock{TTL: 1, Advance: clk.Add, Now: clk.Now}, seed, storetest.ModelSteps(400))
	}
}

// Where the stores were found to differ from the model (or each other),
// both follow the model.
func TestModelDivergences(t *testing.T) {
	t.Run("JobHoldIsNotAReservation", func(t *testing.T) {
		storetest.JobHoldIsNotAReservation(t, openTemp(t, Options{}))
	})
	t.Run("JobChargeBeyondItsHold", func(t *testing.T) {
		storetest.JobChargeBeyondItsHold(t, openTemp(t, Options{}))
	})
	t.Run("ExpiredHoldsBeyondOneSweep", func(t *testing.T) {
		clk := newClock()
		storetest.ExpiredHoldsBeyondOneSweep(t, openTemp(t, Options{Now: clk.Now}), time.Second, clk.Add)
	})
}

// Concurrent histories on the store are linearizable against the model.
func TestLinearizable(t *testing.T) {
	storetest.Linearizable(t, openTemp(t, Options{}), 1, 200, 1)
	storetest.Linearizable(t, openTemp(t, Options{}), 4, 60, 1)
}
