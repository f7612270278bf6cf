package redisstore

import (
	"testing"

	"github.com/creditgate/creditgate/meter/storetest"
)

func TestPaymentsConformance(t *testing.T) {
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return newStore(t, Options{}) })
}

func BenchmarkPurchase(b *testing.B) { storetest.BenchPurchase(b, newStore(b, Options{})) }
