package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcHeapGoal is the heap goal the collector is given while the live heap
// is small: the gateway's is 6-8 MB under load, so at Go's default
// (GOGC=100) it collected every ~340 requests, ~37 us of CPU a metered
// request; with this goal every ~1,780 requests, ~5 us. In paired runs:
// 40 us less gateway CPU a metered request and 0.03 ms less median latency
// at one connection, -0.5% to +2% throughput at 32 (bench/RESULTS.md,
// thirteenth session).
const gcHeapGoal = 64 << 20

// gcPercent is the GOGC that makes the next goal gcHeapGoal for a live
// heap of live bytes: (goal - live) / live, between 100 (never more often
// than Go's default: a live heap of half the goal or more is collected as
// without the tuner) and 500. So the heap grows at most to
// max(gcHeapGoal, 2 x live).
func gcPercent(live uint64) int {
	if live == 0 || live >= gcHeapGoal/2 {
		return 100
	}
	return min(500, int((gcHeapGoal-live)*100/live))
}

// tuneGC sets GOGC after every collection to gcPercent of the live heap
// then, unless the operator set GOGC (which turns it off: nil). Caddy's
// memory limit (GOMEMLIMIT, 90% of the cgroup's or the machine's memory)
// still bounds the heap. Per collection: a finalizer, re-armed each time
// (the way Go runs code after a collection), reads the live heap from
// runtime/metrics, which stops nothing. Not bytedance/gopkg's gctuner:
// it reads runtime.ReadMemStats (a stop of the world) at each collection,
// and its tuning reads the bounds its setters write without synchronizing
// (the race detector found it in this package's tests).
func tuneGC() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return nil
	}
	t := &gcTuner{last: 100}
	t.sample[0].Name = "/gc/heap/live:bytes"
	t.arm()
	return func() { t.stopped.Store(true) }
}

type gcTuner struct {
	stopped atomic.Bool
	last    int               // the GOGC set last: only the finalizer goroutine touches it
	sample  [1]metrics.Sample // the live heap's, named once
}

// gcSentinel is what each collection finalizes: it holds a pointer, so it
// is never a tiny allocation (whose finalizer may never run).
type gcSentinel struct{ t *gcTuner }

func (t *gcTuner) arm() { runtime.SetFinalizer(&gcSentinel{t}, collected) }

func collected(s *gcSentinel) {
	t := s.t
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample[:])
	if p := gcPercent(t.sample[0].Value.Uint64()); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
	t.arm()
}
