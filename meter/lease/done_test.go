package lease

import (
	"strconv"
	"testing"
	"time"
)

// TestPruneDoneKeepsExactlyTheWindow drives finish with a clock through
// bursts and lulls: an answer is kept for keepDone and no longer, a
// repeated id keeps its last answer, and the queue's array follows the
// traffic down again.
func TestPruneDoneKeepsExactlyTheWindow(t *testing.T) {
	a := &account{done: map[string]doneCarve{}}
	t0 := time.Unix(1_700_000_000, 0)
	at := map[string]time.Time{} // every id's last answer
	check := func(now time.Time) {
		t.Helper()
		for id, when := range at {
			_, kept := a.done[id]
			if want := now.Sub(when) <= keepDone; kept != want {
				t.Fatalf("at %v: %s (answered %v) kept %v, want %v", now.Sub(t0), id, when.Sub(t0), kept, want)
			}
		}
		if live := len(a.doneOrder) - a.doneHead; live < len(a.done) {
			t.Fatalf("queue holds %d ids for %d answers", live, len(a.done))
		}
	}
	now := t0
	n := 0
	step := func(count int, every time.Duration) {
		for range count {
			now = now.Add(every)
			id := strconv.Itoa(n)
			if n%7 == 3 && n > 10 {
				id = strconv.Itoa(n - 5) // a repeated call's answer replaces the first
			}
			n++
			a.finish(id, doneCarve{at: now, state: 'c'})
			at[id] = now
		}
		check(now)
	}
	step(50_000, 400*time.Microsecond) // 20 s at 2.5k/s
	peak := cap(a.doneOrder)
	step(20, time.Second) // a lull: nearly everything goes
	if len(a.done) > 11 {
		t.Fatalf("%d answers kept after the lull", len(a.done))
	}
	step(200, 100*time.Millisecond)
	if c := cap(a.doneOrder); c >= peak/4 {
		t.Fatalf("queue kept an array of %d after traffic fell (peak %d)", c, peak)
	}
	step(30_000, 100*time.Microsecond)
	step(1, keepDone+time.Millisecond)
	if len(a.done) != 1 || len(a.doneOrder)-a.doneHead != 1 {
		t.Fatalf("after keepDone alone: %d answers, %d queued", len(a.done), len(a.doneOrder)-a.doneHead)
	}
}

// BenchmarkFinish is a carve's answer recorded at a hot account's steady
// state: 10 s (keepDone) of answers kept at 5k requests/s.
func BenchmarkFinish(b *testing.B) {
	a := &account{done: map[string]doneCarve{}}
	now := time.Unix(1_700_000_000, 0)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "r" + strconv.Itoa(i)
	}
	for i := range 60_000 {
		now = now.Add(200 * time.Microsecond)
		a.finish(ids[i%len(ids)], doneCarve{at: now, state: 'c'})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(200 * time.Microsecond)
		a.finish(ids[i%len(ids)], doneCarve{at: now, state: 'c'})
	}
}
