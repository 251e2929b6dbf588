package source

import (
	"math"
	"time"
)

// DumpNSPerGoroutine is what a full goroutine dump costs per goroutine on a
// 2-core machine (about 6us, all of it stop-the-world); it guards the first
// dump, whose cost is not yet measured.
const DumpNSPerGoroutine = 6000

// Spacing is how long work that cost cost must wait before it runs again to
// stay within share of the time. It saturates rather than overflow: a tiny
// share means "practically never", not a negative wait.
func Spacing(cost time.Duration, share float64) time.Duration {
	d := float64(cost) / share
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}
