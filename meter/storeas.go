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
