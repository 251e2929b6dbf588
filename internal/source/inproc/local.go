package inproc

import (
	"context"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// StackOf returns the latest stack the trace recorded for goroutine id in
// the window of the last snapshot built, top first; nil when it was not in
// that window.
func (c *Collector) StackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.win.StackOf(id, false)
}

// StretchStackOf returns where goroutine id computed during its longest
// stretch on CPU in the window of the last snapshot built (see
// tracewin.GoStats.StretchStack), or nil.
func (c *Collector) StretchStackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.win.StackOf(id, true)
}

// StateProfile builds the goroutine-states profile (model.StateProfile) of
// the current window, the last window long, from the same snapshot
// Snapshot returns (it is shared within the CPU budget).
func (c *Collector) StateProfile(ctx context.Context, window time.Duration) (*profile.Profile, error) {
	b, err := c.build(ctx, window)
	if err != nil {
		return nil, err
	}
	return c.m.StateProfile(b.snap, b.win), nil
}
