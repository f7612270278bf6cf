package main

import (
	"os"

	"github.com/bytedance/gopkg/util/gctuner"
)

// gcHeapGoal is the heap goal the collector is given while the live heap
// is small: the gateway's is 6-8 MB under load, so at Go's default
// (GOGC=100) it collected every ~340 requests, ~37 us of CPU a metered
// request. With this goal: 40 us less gateway CPU a metered request and
// 14% more metered throughput at 32 connections, latency at one no worse
// (bench/RESULTS.md, thirteenth session).
const gcHeapGoal = 64 << 20

// tuneGC sets GOGC after every collection so that the next goal is about
// gcHeapGoal: (goal - live) / live, between 100 (never more often than
// Go's default: a live heap of 32 MB or more is collected as without the
// tuner) and 500. So the heap grows at most to max(gcHeapGoal, 2 x live),
// and Caddy's memory limit (GOMEMLIMIT, 90% of the cgroup's or the
// machine's memory) still bounds it. An operator's GOGC turns it off.
func tuneGC() bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	gctuner.SetMinGCPercent(100)
	gctuner.SetMaxGCPercent(500)
	gctuner.Tuning(gcHeapGoal)
	return true
}
