package workload

import (
	"context"
	"time"
)

// Helpers shared by the broken workloads. They keep the deliberate bug in each
// workload's own file and make everything around it stop promptly.

// slowCall stands in for a synchronous call that takes d: a disk write, an RPC
// without a deadline. To the runtime it is time.Sleep (wait reason "sleep"),
// which is what such a call looks like in a goroutine dump; it sleeps in steps
// of at most 50ms so that a stopped workload is not held up by it.
func slowCall(ctx context.Context, d time.Duration) {
	for d > 0 && ctx.Err() == nil {
		step := min(d, 50*time.Millisecond)
		time.Sleep(step)
		d -= step
	}
}

// burnCPU computes for d without blocking, yielding or allocating, and returns
// the result so the loop cannot be optimised away. It looks at the clock and at
// ctx every few thousand rounds, which costs no blocking: to the scheduler this
// is one goroutine that never gives its thread back, until it is preempted.
func burnCPU(ctx context.Context, d time.Duration) uint64 {
	start := time.Now()
	x := uint64(start.UnixNano()) | 1
	for {
		for range 1 << 12 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if time.Since(start) >= d || ctx.Err() != nil {
			return x
		}
	}
}
