package meter

// StoreAs finds the optional side T of a store (PaymentStore, a rollup
// store) through the wrappers in front of it, each of which names the
// store it wraps with Unwrap: a wrapper need not pass every optional
// interface through.
func StoreAs[T any](s Store) (T, bool) {
	for range 8 {
		if t, ok := s.(T); ok {
			return t, true
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Forgetter is a store that keeps settled reservations' answers in
// memory for a repeated Commit or Void (meter/lease keeps a carved
// request's for 10 to 20 s, meter/boltstore a plain request's). Forget says that no call for this reservation
// will come again: a gateway's request calls it once it settled, so a
// busy gateway keeps only the answers of requests still retrying. A
// later call is answered as the store answers an unknown reservation.
type Forgetter interface {
	Forget(accountID, reservationID string)
}
