package workload

import (
	"context"
	"time"
)

// pauseFor waits for d or until ctx is done and reports whether the whole
// duration passed. Workloads use it instead of time.Sleep, which would keep a
// stopped workload's goroutines alive until the sleep ends; a broken workload
// that means to block uncooperatively uses slowCall instead.
func pauseFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// everyTick calls fn every d until ctx is done: the figures and shipments
// of a workload, beside its lesson.
func everyTick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
