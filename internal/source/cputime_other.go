//go:build !unix

package inproc

import "time"

var started = time.Now()

// processCPU stands in for the process' CPU time where it cannot be read:
// the wall time since start on every core, which makes the overhead
// budget's share of it an upper bound.
func processCPU() time.Duration { return time.Since(started) }

// threadCPU stands in for the thread's CPU time: the wall time, an upper
// bound.
func threadCPU() time.Duration { return time.Since(started) }
