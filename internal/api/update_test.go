package api

import (
	"math/rand/v2"
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

// whole is a task that waited all of a window of ns.
func whole(id, ns int64) Task {
	return Task{ID: id, Name: "parked", State: "waiting", WaitReason: "chan receive",
		Stats: TaskStats{TotalNS: ns, IdleNS: ns, InStateNS: ns, IdleByReason: map[string]int64{"chan receive": ns}}}
}

// Snapshots' windows differ by milliseconds: a task that waited all of both
// is not sent again, and the client moves its numbers to the new window.
func TestDiffLeavesOutTasksThatOnlyWaitedLonger(t *testing.T) {
	const w1, w2 = int64(2_002_000_000), int64(2_011_000_000)
	shared := map[string]int64{"chan receive": w1}
	a := whole(1, w1)
	b := whole(2, w1)
	a.Stats.IdleByReason, b.Stats.IdleByReason = shared, shared // as the Collector shares them
	waitedLess := whole(3, w1)
	waitedLess.Stats.InStateNS = w1 / 2
	hog := Task{ID: 4, Name: "hog", State: "running", Stats: TaskStats{TotalNS: w1, BusyNS: w1, InStateNS: w1, Polls: 1, LongestRunNS: w1}}
	s1 := &Snapshot{WindowNS: w1, Tasks: []Task{a, b, waitedLess, hog, whole(5, w1)}}

	c := whole(5, w2)
	c.State, c.WaitReason = "runnable", "" // woke up at the end
	s2 := &Snapshot{WindowNS: w2, Tasks: []Task{whole(1, w2), whole(2, w2), whole(3, w2), hog, c}}
	s2.Tasks[2].Stats.InStateNS = w1/2 + (w2 - w1) // it waited on: in its state longer
	s2.Tasks[3].Stats = TaskStats{TotalNS: w2, BusyNS: w2, InStateNS: w2, Polls: 1, LongestRunNS: w2}

	u := Diff(s1, s2)
	var ids []int64
	for _, t := range u.Tasks {
		ids = append(ids, t.ID)
	}
	// 3's time in its state grew by less than the window did: it is sent.
	// 4 ran on, and a run is not a share of the window: sent. 5 woke up.
	if !reflect.DeepEqual(ids, []int64{3, 4, 5}) {
		t.Errorf("sent %v, want [3 4 5]: tasks 1 and 2 only waited on", ids)
	}
	state := Snapshot{WindowNS: w1, Tasks: []Task{a, b, waitedLess, hog, whole(5, w1)}}
	Apply(&state, u)
	if !reflect.DeepEqual(state.Tasks, s2.Tasks) {
		t.Errorf("state after the update:\n%+v\nwant\n%+v", state.Tasks, s2.Tasks)
	}
	if shared["chan receive"] != w1 {
		t.Errorf("Apply changed a map the previous snapshot shares: %v", shared)
	}

	// A snapshot without a window (from a dump) has no whole window to move.
	s0 := &Snapshot{Tasks: []Task{{ID: 1, State: "waiting"}}}
	s1 = &Snapshot{WindowNS: w1, Tasks: []Task{{ID: 1, State: "waiting", Stats: TaskStats{TotalNS: w1}}}}
	if u := Diff(s0, s1); len(u.Tasks) != 1 {
		t.Errorf("from a snapshot without a window: %d tasks sent, want 1", len(u.Tasks))
	}
}

// Whatever the numbers, applying the diff of two snapshots to the first
// gives the second.
func TestDiffApplyRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		w1, w2 := rng.Int64N(3)*1000, 1000+rng.Int64N(3)*7 // w1 may be 0, or equal w2
		pick := func(w int64) int64 {
			switch rng.IntN(4) {
			case 0:
				return 0
			case 1:
				return w
			case 2:
				return w1 + w2 - w // the other window
			}
			return rng.Int64N(2000)
		}
		mk := func(w int64) *Snapshot {
			s := &Snapshot{WindowNS: w}
			for id := range int64(6) {
				if rng.IntN(5) == 0 {
					continue
				}
				st := TaskStats{TotalNS: pick(w), BusyNS: pick(w), IdleNS: pick(w), InStateNS: pick(w), Polls: rng.Int64N(2)}
				if rng.IntN(2) == 0 {
					st.IdleByReason = map[string]int64{"sleep": pick(w), "chan receive": pick(w)}
				}
				s.Tasks = append(s.Tasks, Task{ID: id, State: []string{"waiting", "running"}[rng.IntN(2)], Stats: st})
			}
			return s
		}
		s1, s2 := mk(w1), mk(w2)
		var state Snapshot
		Apply(&state, Diff(nil, s1))
		Apply(&state, Diff(s1, s2))
		if len(state.Tasks) == 0 && len(s2.Tasks) == 0 {
			continue
		}
		if !reflect.DeepEqual(state.Tasks, s2.Tasks) {
			t.Fatalf("round %d (windows %d, %d):\n got %+v\nwant %+v", round, w1, w2, state.Tasks, s2.Tasks)
		}
	}
}
