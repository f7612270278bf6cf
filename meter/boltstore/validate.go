package boltstore

import "github.com/creditgate/creditgate/meter"

// MaxCredits bounds every amount and balance. It is redisstore's bound
// (2^53, where Lua's doubles stop being exact), kept here so that both
// stores accept and refuse the same amounts.
const MaxCredits = meter.Credits(1 << 53)

// Limits of caller-chosen strings, as redisstore's.
const (
	maxRefLen  = 128 // reservation ids
	maxIdemLen = 255 // idempotency keys
	maxTextLen = 1024
)

func invalid(format string, args ...any) error {
	return meter.Errorf(meter.ECodeInvalid, format, args...)
}

func checkAmount(what string, c meter.Credits) error {
	if c < 0 || c > MaxCredits {
		return invalid("%s must be between 0 and %s credits", what, MaxCredits)
	}
	return nil
}

func checkLen(what, s string, n int) error {
	if len(s) > n {
		return invalid("%s is longer than %d bytes", what, n)
	}
	return nil
}
