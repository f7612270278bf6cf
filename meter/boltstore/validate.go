package boltstore

import "github.com/creditgate/creditgate/meter"

// MaxCredits is meter.MaxCredits, the bound every store applies to amounts
// and balances.
const MaxCredits = meter.MaxCredits

func invalid(format string, args ...any) error {
	return meter.Errorf(meter.ECodeInvalid, format, args...)
}
