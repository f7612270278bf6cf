package recent

import (
	"strconv"
	"testing"
	"time"
)

// keep is meter/lease's keepDone.
const keep = 10 * time.Second

// TestAnswersKeptForKeep drives Put with a clock through a burst, a lull
// and an idle spell: an answer is kept for at least Keep and, once
// answers go on, gone by twice that; a key answered again gives its last
// answer; Drop forgets one at once.
func TestAnswersKeptForKeep(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := &Answers[string, byte]{Keep: keep}
	at := map[string]time.Time{} // every id's last answer
	last := map[string]byte{}
	now := t0
	n := 0
	check := func() {
		t.Helper()
		for id, when := range at {
			d, kept := a.Get(id)
			switch age := now.Sub(when); {
			case age <= keep && (!kept || d != last[id]):
				t.Fatalf("at %v: %s (answered %v ago) kept %v state %c, want %c", now.Sub(t0), id, age, kept, d, last[id])
			case age > 2*keep && kept:
				t.Fatalf("at %v: %s answered %v ago still kept", now.Sub(t0), id, age)
			}
		}
	}
	step := func(count int, every time.Duration) {
		for range count {
			now = now.Add(every)
			id, state := strconv.Itoa(n), byte('c')
			if n%7 == 3 && n > 10 {
				id, state = strconv.Itoa(n-5), 'v' // answered again: the last answer is kept
			}
			n++
			a.Put(id, state, now)
			at[id], last[id] = now, state
		}
		check()
	}
	step(50_000, 400*time.Microsecond) // 20 s at 2.5k/s
	if k := a.Len(); k > 2*25_000 {
		t.Fatalf("%d answers kept at 2.5k/s: want at most 2 x Keep's", k)
	}
	step(30, time.Second) // a lull
	step(1, 25*time.Second)
	if k := a.Len(); k != 1 {
		t.Fatalf("%d answers kept after an idle spell: want the last alone", k)
	}
	step(1000, time.Millisecond)
	a.Drop("50100")
	if _, kept := a.Get("50100"); kept {
		t.Fatal("forgotten answer kept")
	}
}

// BenchmarkFinish is a carve's answer recorded, looked up and forgotten
// at a hot account's steady state (5k requests/s), as a request that
// settles does (meter/lease's answers are a few words each).
func BenchmarkFinish(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	a := &Answers[string, [6]int64]{Keep: keep}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "r" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := range b.N {
		now = now.Add(200 * time.Microsecond)
		id := ids[i%len(ids)]
		a.Put(id, [6]int64{}, now)
		if _, ok := a.Get(id); !ok {
			b.Fatal("not kept")
		}
		a.Drop(id)
	}
}
