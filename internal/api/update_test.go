package api

import (
	"reflect"
	"testing"
	"time"
)

func task(id int64, state string, busy int64) Task {
	return Task{ID: id, Name: "t", State: state, Stats: TaskStats{BusyNS: busy, IdleByReason: map[string]int64{"sleep": 1}}}
}

func TestDiffApply(t *testing.T) {
	t0 := time.Unix(100, 0)
	s1 := &Snapshot{Time: t0, Source: "trace", Tasks: []Task{task(1, "running", 5), task(2, "waiting", 0), task(3, "waiting", 0)}}
	s2 := &Snapshot{Time: t0.Add(time.Second), Source: "trace", Tasks: []Task{task(1, "running", 9), task(3, "waiting", 0), task(4, "runnable", 0)},
		Process: Process{Goroutines: 3}}

	full := Diff(nil, s1)
	if !full.Full || len(full.Tasks) != 3 {
		t.Fatalf("first update: full=%v with %d tasks", full.Full, len(full.Tasks))
	}
	u := Diff(s1, s2)
	var ids []int64
	for _, t := range u.Tasks {
		ids = append(ids, t.ID)
	}
	if u.Full || !reflect.DeepEqual(ids, []int64{1, 4}) || !reflect.DeepEqual(u.Removed, []int64{2}) {
		t.Errorf("update: full=%v changed %v removed %v; want changed [1 4] removed [2]", u.Full, ids, u.Removed)
	}

	var state Snapshot
	Apply(&state, full)
	Apply(&state, u)
	if !reflect.DeepEqual(state.Tasks, s2.Tasks) || state.Process.Goroutines != 3 || !state.Time.Equal(s2.Time) {
		t.Errorf("state after applying both:\n%+v\nwant\n%+v", state.Tasks, s2.Tasks)
	}
	if u := Diff(s2, s2); len(u.Tasks) != 0 || len(u.Removed) != 0 {
		t.Errorf("no change gave %d tasks, %d removed", len(u.Tasks), len(u.Removed))
	}
}
