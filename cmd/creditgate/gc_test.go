package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100}, // no reading yet
		{1 << 20, 500},
		{8 << 20, 500}, // 700, at the ceiling
		{16 << 20, 300},
		{31 << 20, 106},
		{32 << 20, 100}, // half the goal: Go's default
		{64 << 20, 100},
		{1 << 30, 100},
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// gogc is the collector's GOGC now.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestTuneGCLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	if tuneGC() != nil {
		t.Fatal("tuned with GOGC set")
	}
}

// A test binary's live heap is far below gcHeapGoal: after a collection
// the tuner raises GOGC above Go's default, at most to its ceiling.
func TestTuneGCRaisesASmallHeapsGoal(t *testing.T) {
	t.Setenv("GOGC", "")
	stop := tuneGC()
	if stop == nil {
		t.Fatal("not tuned without GOGC")
	}
	defer func() {
		stop()
		debug.SetGCPercent(100)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after collections, want it raised", gogc())
		}
		runtime.GC() // the tuner runs after a collection, on the finalizer goroutine
		time.Sleep(10 * time.Millisecond)
	}
	if g := gogc(); g > 500 {
		t.Fatalf("GOGC %d, above the tuner's ceiling", g)
	}
}
