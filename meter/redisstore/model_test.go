package redisstore

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter/storetest"
)

// Random operation sequences through the store and the money model
// (meter/ledger), compared after each step, on a single server and on a
// cluster of three masters. The clock is the server's: the short holds
// last modelTTL, and the run sleeps past it when it lets them expire (and
// before half of it has passed since the first of them was taken).
// MODEL_STEPS=n for a longer run.
const modelTTL = 400 * time.Millisecond

var modelClock = storetest.ModelClock{TTL: modelTTL, Real: true, Advance: time.Sleep, Now: time.Now}

func TestModel(t *testing.T) {
	storetest.RunModel(t, newStore(t, Options{}), modelClock, 1, storetest.ModelSteps(300))
}

func TestModelCluster(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.RunModel(t, s, modelClock, 3, storetest.ModelSteps(300))
}

// Where the scripts were found to differ from the money model
// (meter/ledger) and the embedded store, now fixed: on one server and on a
// cluster of three masters.
func TestModelDivergences(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	stores := map[string]func(t *testing.T) *Store{
		"single": func(t *testing.T) *Store { return newStore(t, Options{}) },
		"cluster": func(t *testing.T) *Store {
			s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Run("JobHoldIsNotAReservation", func(t *testing.T) {
				storetest.JobHoldIsNotAReservation(t, open(t))
			})
			t.Run("JobChargeBeyondItsHold", func(t *testing.T) {
				storetest.JobChargeBeyondItsHold(t, open(t))
			})
			t.Run("ExpiredHoldsBeyondOneSweep", func(t *testing.T) {
				storetest.ExpiredHoldsBeyondOneSweep(t, open(t), time.Second, time.Sleep)
			})
		})
	}
}

// Concurrent histories on the store, one server and a cluster of three
// masters, are linearizable against the model.
func TestLinearizable(t *testing.T) {
	storetest.Linearizable(t, newStore(t, Options{}), 6, 60, 1)
}

func TestLinearizableCluster(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.Linearizable(t, s, 6, 60, 2)
}
