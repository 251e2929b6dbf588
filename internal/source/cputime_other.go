//go:build !unix

package source

import "time"

var started = time.Now()

// ProcessCPU stands in for the process' CPU time where it cannot be read:
// the wall time since start on every core, which makes the overhead
// budget's share of it an upper bound.
func ProcessCPU() time.Duration { return time.Since(started) }

// ThreadCPU stands in for the thread's CPU time: the wall time, an upper
// bound.
func ThreadCPU() time.Duration { return time.Since(started) }
