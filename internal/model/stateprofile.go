package model

import (
	"time"

	"github.com/google/pprof/profile"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/stack"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// The goroutine-states profile: tokio-console's busy/scheduled/idle split as
// a pprof profile, for a flame graph (Pyroscope's, or `go tool pprof`'s).
//
// Every goroutine of a window contributes one sample per state it spent time
// in, weighted by that time in nanoseconds. The sample's stack is the
// goroutine's last known stack (top first) under a root frame that names the
// state: "running", "runnable", "syscall", or the wait reason of the time it
// spent waiting ("chan receive", "sync.Mutex.Lock", "select", "sleep", ...;
// "waiting" for waits of no known reason). The flame graph's first level
// then splits the window's goroutine time by state, and the levels above say
// which code was busy, queued or blocked, and on what.

// StateProfileSampleType is the sample type of the goroutine-states profile:
// goroutine time in nanoseconds.
const StateProfileSampleType = "goroutine_state_time"

// Root frames of the states that are not waits.
const (
	StateRunning  = "running"
	StateRunnable = "runnable"
	StateSyscall  = "syscall"
	// StateWaiting is the root frame of waiting time with no known reason.
	StateWaiting = "waiting"
)

// StateProfile builds the goroutine-states profile of window w. labels, if
// not nil, gives the labels of a goroutine (its pprof labels: workload,
// role, ...), which every sample of that goroutine carries; it may return nil.
func StateProfile(w *tracewin.Window, labels func(id int64) map[string]string) *profile.Profile {
	return stateProfile(w, time.Time{}, labels, nil)
}

// StateProfile builds the goroutine-states profile of snapshot snap, which
// m made from window win. Samples carry the labels the snapshot gave each
// task; goroutines that exited within the window, which the snapshot
// omits, carry what the last dump said of them or, if created since, their
// creator's labels. A goroutine whose stack the trace did not record gets
// the one the last dump saw.
func (m *Model) StateProfile(snap *api.Snapshot, win *tracewin.Window) *profile.Profile {
	tasks := make(map[int64]map[string]string, len(snap.Tasks))
	for i := range snap.Tasks {
		tasks[snap.Tasks[i].ID] = snap.Tasks[i].Labels
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var labelsOf func(id int64, depth int) map[string]string
	labelsOf = func(id int64, depth int) map[string]string {
		if l, ok := tasks[id]; ok {
			return l
		}
		if f := m.facts[id]; f != nil {
			return f.labels
		}
		if l, ok := m.inherited[id]; ok {
			return l
		}
		// Created and gone since the last dump: its creator's labels.
		if g := win.Get(id); g != nil && g.ParentID != 0 && depth < 8 {
			return labelsOf(g.ParentID, depth+1)
		}
		return nil
	}
	stk := func(g *tracewin.GoStats) []stack.Frame {
		if len(g.Stack) > 0 {
			return g.Stack
		}
		if f := m.facts[g.ID]; f != nil {
			return f.frames
		}
		return nil
	}
	start := snap.Time.Add(-time.Duration(win.Duration()))
	return stateProfile(win, start, func(id int64) map[string]string { return labelsOf(id, 0) }, stk)
}

// stateProfile builds the profile; start (if not zero) is the wall-clock
// time of the window's start, and stack (if not nil) picks a goroutine's
// stack instead of GoStats.Stack.
func stateProfile(w *tracewin.Window, start time.Time, labels func(id int64) map[string]string, stackOf func(g *tracewin.GoStats) []stack.Frame) *profile.Profile {
	st := &profile.ValueType{Type: StateProfileSampleType, Unit: "nanoseconds"}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{st},
		PeriodType:    &profile.ValueType{Type: StateProfileSampleType, Unit: "nanoseconds"},
		Period:        1,
		DurationNanos: w.Duration(),
	}
	if !start.IsZero() {
		p.TimeNanos = start.UnixNano()
	}
	b := stateProfileBuilder{p: p, funcs: map[funcKey]*profile.Function{}, locs: map[stack.Frame]*profile.Location{}}

	for g := range w.All() {
		id := g.ID
		if g.Busy+g.Sched+g.Idle+g.Syscall <= 0 {
			continue
		}
		frames := g.Stack
		if stackOf != nil {
			frames = stackOf(g)
		}
		if len(frames) == 0 && g.StartFunc != "" {
			frames = []stack.Frame{{Func: g.StartFunc}}
		}
		var l map[string]string
		if labels != nil {
			l = labels(id)
		}
		var sl map[string][]string
		if len(l) > 0 {
			sl = make(map[string][]string, len(l))
			for k, v := range l {
				sl[k] = []string{v}
			}
		}
		stackLocs := make([]*profile.Location, 0, len(frames)+1)
		for _, f := range frames {
			stackLocs = append(stackLocs, b.location(f))
		}
		add := func(state string, ns int64) {
			if ns <= 0 {
				return
			}
			locs := make([]*profile.Location, len(stackLocs), len(stackLocs)+1)
			copy(locs, stackLocs)
			// The root is the last location.
			locs = append(locs, b.location(stack.Frame{Func: state}))
			p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{ns}, Label: sl})
		}
		add(StateRunning, g.Busy)
		add(StateRunnable, g.Sched)
		add(StateSyscall, g.Syscall)
		known := int64(0)
		for _, r := range g.IdleByReason {
			reason := r.Reason
			if reason == "" {
				reason = StateWaiting
			}
			add(reason, r.NS)
			known += r.NS
		}
		add(StateWaiting, g.Idle-known)
	}
	return p
}

type funcKey struct{ name, file string }

type stateProfileBuilder struct {
	p     *profile.Profile
	funcs map[funcKey]*profile.Function
	locs  map[stack.Frame]*profile.Location
}

// location returns the one location of frame f (IDs from 1).
func (b *stateProfileBuilder) location(f stack.Frame) *profile.Location {
	if l := b.locs[f]; l != nil {
		return l
	}
	k := funcKey{f.Func, f.File}
	fn := b.funcs[k]
	if fn == nil {
		fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Func, SystemName: f.Func, Filename: f.File}
		b.funcs[k] = fn
		b.p.Function = append(b.p.Function, fn)
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Line: []profile.Line{{Function: fn, Line: int64(f.Line)}}}
	b.locs[f] = l
	b.p.Location = append(b.p.Location, l)
	return l
}
