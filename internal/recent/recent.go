// Package recent keeps answers for a while, in two generations, for a
// call that may be repeated: meter/lease's settled carves and
// meter/boltstore's settled plain holds.
package recent

import "time"

// Answers maps keys to the answers recorded in the last Keep to 2*Keep:
// the current generation becomes the previous once it is Keep old, and
// the previous is dropped whole. So no answer needs bookkeeping of its
// own (dropping them one by one, oldest first, from a queue of ids was a
// tenth of a hot gateway's CPU, and the ids a live heap every GC cycle
// marked). The zero value, with Keep set, is ready; the caller locks.
type Answers[K comparable, V any] struct {
	Keep      time.Duration
	cur, prev map[K]V
	since     time.Time // when cur was started
}

// Rotate moves the generations on to now. A clock that stepped back
// drops both: nothing recorded is known to be recent.
func (a *Answers[K, V]) Rotate(now time.Time) {
	el := now.Sub(a.since)
	if el < a.Keep && el >= 0 {
		return
	}
	a.prev, a.cur = a.cur, make(map[K]V, len(a.cur)/2)
	if el >= 2*a.Keep || el < 0 {
		a.prev = nil // idle: nothing of the previous is recent
	}
	a.since = now
}

// Put records v for k at now; an earlier answer for k is replaced.
func (a *Answers[K, V]) Put(k K, v V, now time.Time) {
	a.Rotate(now)
	delete(a.prev, k)
	a.cur[k] = v
}

// Get is the answer kept for k, if any.
func (a *Answers[K, V]) Get(k K) (V, bool) {
	if v, ok := a.cur[k]; ok {
		return v, true
	}
	v, ok := a.prev[k]
	return v, ok
}

// Drop forgets k's answer.
func (a *Answers[K, V]) Drop(k K) {
	delete(a.cur, k)
	delete(a.prev, k)
}

// Len is the number of answers kept.
func (a *Answers[K, V]) Len() int { return len(a.cur) + len(a.prev) }
