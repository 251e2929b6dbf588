package api

import (
	"cmp"
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
	// that are gone.
	Tasks   []Task  `json:"tasks"`
	Removed []int64 `json:"removed,omitempty"`
	// Sites, Process and Findings are small and sent whole.
	Sites    []Site    `json:"sites"`
	Process  Process   `json:"process"`
	Findings []Finding `json:"findings"`
	Notes    []string  `json:"notes,omitempty"`
	// Missed counts the updates this client did not get because it fell
	// behind (it read slower than the interval); the update still brings it
	// up to date.
	Missed int64 `json:"missed,omitempty"`
}

// Diff returns the update that turns prev into next. A nil prev gives a
// full update.
func Diff(prev, next *Snapshot) Update {
	u := Update{
		Time: next.Time, WindowNS: next.WindowNS, Source: next.Source,
		Sites: next.Sites, Process: next.Process, Findings: next.Findings, Notes: next.Notes,
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
		if o, ok := old[t.ID]; !ok || !reflect.DeepEqual(o, t) {
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
	state.Time, state.WindowNS, state.Source = u.Time, u.WindowNS, u.Source
	state.Sites, state.Process, state.Findings, state.Notes = u.Sites, u.Process, u.Findings, u.Notes
	if u.Full {
		state.Tasks = slices.Clone(u.Tasks)
		slices.SortFunc(state.Tasks, byTaskID)
		return
	}
	byID := make(map[int64]int, len(state.Tasks))
	for i, t := range state.Tasks {
		byID[t.ID] = i
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
