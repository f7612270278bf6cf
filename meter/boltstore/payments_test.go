package boltstore

import (
	"testing"

	"github.com/creditgate/creditgate/meter/storetest"
)

func TestPaymentsConformance(t *testing.T) {
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return openTemp(t, Options{}) })
}

func BenchmarkPurchase(b *testing.B) { storetest.BenchPurchase(b, openTemp(b, Options{})) }
