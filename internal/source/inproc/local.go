package inproc

import (
	"context"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/stack"
)

// StackOf returns the latest stack the trace recorded for goroutine id in
// the window of the last snapshot built, top first; nil when it was not in
// that window. Goroutines with one stack share the slice returned:
// read-only.
func (c *Collector) StackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.apiStack(c.last.win.Stack(id, false))
}

// StretchStackOf returns where goroutine id computed during its longest
// stretch on CPU in the window of the last snapshot built (see
// tracewin.GoStats.StretchStack), or nil. Read-only, like StackOf's.
func (c *Collector) StretchStackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.apiStack(c.last.win.Stack(id, true))
}

// apiStack is stk, one of the window's stacks, in the API's form: made
// once per distinct stack. The diagnosis asks for the stack of every
// goroutine, most of which share a few stacks: a copy each would be
// 100,000 slices at 100,000 goroutines, alive until the diagnosis ends.
// Called with c.mu held.
func (b *built) apiStack(stk []stack.Frame) []api.Frame {
	if len(stk) == 0 {
		return nil
	}
	k := stackRef{unsafe.SliceData(stk), len(stk)}
	if f, ok := b.stacks[k]; ok {
		return f
	}
	if b.stacks == nil {
		b.stacks = map[stackRef][]api.Frame{}
	}
	f := stack.APIFrames(stk)
	b.stacks[k] = f
	return f
}

// stackRef identifies one of a window's stacks, which share their frames.
type stackRef struct {
	first *stack.Frame
	n     int
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
