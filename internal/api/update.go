package api

import (
	"cmp"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Update is one event of GET /api/v1/watch: what changed since the previous
// update sent on the same stream, like tokio-console's WatchUpdates. The first
// update of a stream is Full: it carries every task.
type Update struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Full     bool      `json:"full,omitempty"`
	WindowNS int64     `json:"window_ns"`
	Source   string    `json:"source"`
	// Tasks are the tasks that are new or changed; Removed the ids of tasks
	// that are gone. A task whose numbers changed only with the window's
	// length is not sent: what spanned the whole previous window (total_ns
	// of a task that lived through it, idle_ns and in_state_ns of one that
	// waited all along, ...) spans the whole of this one (see Apply).
	Tasks   []Task  `json:"tasks"`
	Removed []int64 `json:"removed,omitempty"`
	// Sites, Process and Findings are small and sent whole.
	Sites    []Site    `json:"sites"`
	Process  Process   `json:"process"`
	Findings []Finding `json:"findings"`
	Notes    []string  `json:"notes,omitempty"`
	// ObservedNS and RecordingSince are the snapshot's (see Snapshot).
	ObservedNS     int64     `json:"observed_ns,omitempty"`
	RecordingSince time.Time `json:"recording_since,omitzero"`
	// View is what the stream's query selected (see Snapshot); Tasks
	// and Removed are of the selected tasks.
	View
	// Missed counts the updates this client did not get because it fell
	// behind (it read slower than the interval); the update still brings it
	// up to date.
	Missed int64 `json:"missed,omitempty"`
	// MissedBuilding is how many of Missed passed while the target built
	// the update, taking longer than the interval: the target was slow,
	// not the client.
	MissedBuilding int64 `json:"missed_building,omitempty"`
}

// Diff returns the update that turns prev into next. A nil prev gives a
// full update.
func Diff(prev, next *Snapshot) Update {
	u := Update{
		Time: next.Time, WindowNS: next.WindowNS, Source: next.Source,
		Sites: next.Sites, Process: next.Process, Findings: next.Findings, Notes: next.Notes,
		ObservedNS: next.ObservedNS, RecordingSince: next.RecordingSince, View: next.View,
	}
	if prev == nil {
		u.Full = true
		u.Tasks = next.Tasks
		return u
	}
	old := make(map[int64]*Task, len(prev.Tasks))
	for i := range prev.Tasks {
		old[prev.Tasks[i].ID] = &prev.Tasks[i]
	}
	u.Tasks = []Task{}
	for i := range next.Tasks {
		t := &next.Tasks[i]
		if o, ok := old[t.ID]; !ok || !sameTask(o, prev.WindowNS, t, next.WindowNS) {
			u.Tasks = append(u.Tasks, *t)
		}
		delete(old, t.ID)
	}
	for id := range old {
		u.Removed = append(u.Removed, id)
	}
	slices.Sort(u.Removed)
	return u
}

// Apply brings state up to date with u, as a watching client does. Tasks keep
// ascending id order.
func Apply(state *Snapshot, u Update) {
	prevNS := state.WindowNS
	state.Time, state.WindowNS, state.Source = u.Time, u.WindowNS, u.Source
	state.Sites, state.Process, state.Findings, state.Notes = u.Sites, u.Process, u.Findings, u.Notes
	state.ObservedNS, state.RecordingSince, state.View = u.ObservedNS, u.RecordingSince, u.View
	if u.Full {
		state.Tasks = slices.Clone(u.Tasks)
		slices.SortFunc(state.Tasks, byTaskID)
		return
	}
	byID := make(map[int64]int, len(state.Tasks))
	for i := range state.Tasks {
		byID[state.Tasks[i].ID] = i
		if prevNS > 0 && prevNS != u.WindowNS {
			rewindow(&state.Tasks[i].Stats, prevNS, u.WindowNS)
		}
	}
	for _, t := range u.Tasks {
		if i, ok := byID[t.ID]; ok {
			state.Tasks[i] = t
		} else {
			state.Tasks = append(state.Tasks, t)
		}
	}
	if len(u.Removed) > 0 {
		gone := make(map[int64]bool, len(u.Removed))
		for _, id := range u.Removed {
			gone[id] = true
		}
		state.Tasks = slices.DeleteFunc(state.Tasks, func(t Task) bool { return gone[t.ID] })
	}
	slices.SortFunc(state.Tasks, byTaskID)
}

func byTaskID(a, b Task) int { return cmp.Compare(a.ID, b.ID) }

// sameTask reports whether t, of a window of nextNS, is o, of a window of
// prevNS, but for the numbers that spanned the whole window: those span the
// whole of the new one (rewindow). Most tasks of a large program wait all
// the while, and the window's length varies by milliseconds between
// snapshots: without this, every update would resend them all.
func sameTask(o *Task, prevNS int64, t *Task, nextNS int64) bool {
	was, is := &o.Stats, &t.Stats
	same := func(x, y int64) bool {
		if prevNS > 0 && x == prevNS {
			return y == nextNS // the client moves it to the new window
		}
		return x == y
	}
	if !same(was.TotalNS, is.TotalNS) || !same(was.BusyNS, is.BusyNS) || !same(was.SchedNS, is.SchedNS) ||
		!same(was.IdleNS, is.IdleNS) || !same(was.SyscallNS, is.SyscallNS) || !same(was.InStateNS, is.InStateNS) ||
		was.Polls != is.Polls || was.LongestRunNS != is.LongestRunNS || was.LongestStretchNS != is.LongestStretchNS ||
		len(was.IdleByReason) != len(is.IdleByReason) {
		return false
	}
	for r, ns := range was.IdleByReason {
		if now, ok := is.IdleByReason[r]; !ok || !same(ns, now) {
			return false
		}
	}
	a, b := *o, *t
	a.Stats, b.Stats = TaskStats{}, TaskStats{}
	return reflect.DeepEqual(&a, &b)
}

// rewindow moves the numbers of s that spanned the whole of a window of
// prevNS to the whole of one of nextNS, as sameTask takes them.
func rewindow(s *TaskStats, prevNS, nextNS int64) {
	for _, x := range []*int64{&s.TotalNS, &s.BusyNS, &s.SchedNS, &s.IdleNS, &s.SyscallNS, &s.InStateNS} {
		if *x == prevNS {
			*x = nextNS
		}
	}
	cloned := false
	for r, ns := range s.IdleByReason {
		if ns == prevNS {
			if !cloned {
				// The map may be shared with another task or snapshot.
				s.IdleByReason, cloned = maps.Clone(s.IdleByReason), true
			}
			s.IdleByReason[r] = nextNS
		}
	}
}
