package redisstore

import (
	"testing"

	"github.com/creditgate/creditgate/meter/storetest"
)

func TestPaymentsConformance(t *testing.T) {
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return newStore(t, Options{}) })
}

// On a cluster node, which refuses a script whose keys span slots: the
// payment scripts stay in the account's slot, the index and the review
// queue are written apart.
func TestPaymentsOnCluster(t *testing.T) {
	cl := oneNodeCluster(t)
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return New(cl, Options{}) })
}

func BenchmarkPurchase(b *testing.B) { storetest.BenchPurchase(b, newStore(b, Options{})) }
