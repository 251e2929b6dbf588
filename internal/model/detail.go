package model

import (
	"fmt"
	"slices"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/stack"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// Task is task id of snap (which m made from win) with what only a task's
// own request carries: its histograms from the window, and its full stack
// (the dump's when that one is deeper). win may be nil (no trace). The
// error wraps api.ErrNoTask when snap has no such task.
func (m *Model) Task(snap *api.Snapshot, win *tracewin.Window, id int64) (*api.Task, error) {
	i, ok := slices.BinarySearchFunc(snap.Tasks, id, func(t api.Task, id int64) int { return int(t.ID - id) })
	if !ok {
		return nil, fmt.Errorf("goroutine %d: %w", id, api.ErrNoTask)
	}
	t := snap.Tasks[i]
	if win != nil {
		if g := win.Get(id); g != nil {
			// A goroutine that did not run (or wait to) in the window has
			// empty histograms, not none: the window was looked at.
			rh, dh := g.RunTimes.Histogram(), g.SchedDelays.Histogram()
			t.SetDetail(func(d *api.TaskDetail) { d.RunTimes, d.SchedDelay, d.Stack = &rh, &dh, stack.APIFrames(g.Stack) })
		}
	}
	m.mu.Lock()
	if f := m.facts[id]; f != nil && len(f.frames) > len(t.Stack()) {
		t.SetDetail(func(d *api.TaskDetail) { d.Stack = stack.APIFrames(f.frames) })
	}
	m.mu.Unlock()
	return &t, nil
}

// DumpStack returns the stack the last dump saw goroutine id at, or nil.
func (m *Model) DumpStack(id int64) []stack.Frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.facts[id]; f != nil {
		return f.frames
	}
	return nil
}
