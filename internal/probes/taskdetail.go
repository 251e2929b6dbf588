package probes

import (
	"fmt"
	"slices"
	"sync"

	"github.com/inspectd/inspectd/internal/api"
)

// taskDetail is task id of snap with what only a task's own request
// carries: its histograms from the window, and its full stack (the dump's
// when that one is deeper). mu guards facts.
func taskDetail(snap *api.Snapshot, win *Window, mu *sync.Mutex, facts map[int64]*dumpFacts, id int64) (*api.Task, error) {
	i, ok := slices.BinarySearchFunc(snap.Tasks, id, func(t api.Task, id int64) int { return int(t.ID - id) })
	if !ok {
		return nil, fmt.Errorf("goroutine %d: %w", id, api.ErrNoTask)
	}
	t := snap.Tasks[i]
	if win != nil {
		if g := win.get(id); g != nil {
			// A goroutine that did not run (or wait to) in the window has
			// empty histograms, not none: the window was looked at.
			rh, dh := g.RunTimes.Histogram(), g.SchedDelays.Histogram()
			t.RunTimes, t.SchedDelay = &rh, &dh
			t.Stack = traceAPIFrames(g.Stack)
		}
	}
	mu.Lock()
	if f := facts[id]; f != nil && len(f.frames) > len(t.Stack) {
		t.Stack = traceAPIFrames(f.frames)
	}
	mu.Unlock()
	return &t, nil
}

// inheritLabels gives goroutine id, created since the last dump, the labels
// its creator had (from the dump, or inherited in turn) and remembers them.
func inheritLabels(facts map[int64]*dumpFacts, inherited map[int64]map[string]string, id, parent int64) map[string]string {
	var l map[string]string
	if pf := facts[parent]; pf != nil {
		l = pf.labels
	} else {
		l = inherited[parent]
	}
	inherited[id] = l
	return l
}
