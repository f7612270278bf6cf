package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/bytedance/gopkg/util/gctuner"
)

// gogc is the collector's GOGC now.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestTuneGCLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	if tuneGC() {
		t.Fatal("tuned with GOGC set")
	}
}

// A test binary's live heap is far below gcHeapGoal: after a collection
// the tuner raises GOGC to its ceiling, never above it.
func TestTuneGCRaisesASmallHeapsGoal(t *testing.T) {
	t.Setenv("GOGC", "")
	if !tuneGC() {
		t.Fatal("not tuned without GOGC")
	}
	defer func() {
		gctuner.Tuning(0) // stops it
		debug.SetGCPercent(100)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != 500 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after collections, want 500", gogc())
		}
		runtime.GC() // the tuner runs after a collection, on the finalizer goroutine
		time.Sleep(10 * time.Millisecond)
	}
}
