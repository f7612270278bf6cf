package redisstore

import "github.com/creditgate/creditgate/meter"

// MaxCredits bounds every amount and balance: Lua holds numbers as
// doubles, exact up to 2^53 (meter.ParseCredits has the same bound).
const MaxCredits = meter.Credits(1 << 53)

// Limits of caller-chosen strings, which are stored as hash fields.
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
