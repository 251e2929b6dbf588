package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

var (
	spinSelect = api.Frame{Function: "example.com/svc.merge", File: "/src/svc/merge.go", Line: 22}
	spinBody   = api.Frame{Function: "example.com/svc.merge", File: "/src/svc/merge.go", Line: 30}
)

// spinner is a goroutine on CPU the whole window that never blocks.
func spinner(id int64) api.Task {
	return api.Task{ID: id, Name: "svc/merge", State: "running", Location: spinBody,
		CreatedBy: api.Frame{Function: "example.com/svc.run", File: "/src/svc/run.go", Line: 9},
		Stats:     api.TaskStats{TotalNS: window, BusyNS: window * 9 / 10, SchedNS: window / 10, Polls: 500, LongestStretchNS: window}}
}

func spinSnap(at time.Duration, sites []api.Site, tasks ...api.Task) *api.Snapshot {
	return &api.Snapshot{Time: t0.Add(at), WindowNS: window, Tasks: tasks, Sites: sites,
		Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: -1}}
}

// The stacks of a spinner preempted in selectgo, and in its loop's body.
var (
	inSelect = []api.Frame{{Function: "runtime.selectgo", File: "/go/src/runtime/select.go", Line: 351}, spinSelect,
		{Function: "example.com/svc.run", File: "/src/svc/run.go", Line: 9}}
	inBody = []api.Frame{spinBody, {Function: "example.com/svc.run", File: "/src/svc/run.go", Line: 9}}
)

// A goroutine on CPU all the time, caught in a select: select-spin at the
// select's line, from the second snapshot in a row on; not when its stacks
// show no channel operation, nor when its channel traffic wakes others.
func TestSelectSpin(t *testing.T) {
	stackOf := func(st []api.Frame) func(int64) []api.Frame { return func(int64) []api.Frame { return st } }
	e := newEngine(t, Config{})
	in := Input{Snapshot: spinSnap(0, nil, spinner(7)), Stack: stackOf(inSelect)}
	if fs := e.Observe(in); len(fs) != 0 {
		t.Fatalf("first snapshot: %+v, want nothing yet (it must persist)", fs)
	}
	// It wakes a producer now and then, which waited little.
	now := []api.Site{{Reason: "chan send", Location: api.Frame{Function: "example.com/svc.produce"},
		WaitNS: window / 100, Wakers: []api.WakerSite{{Location: spinSelect, Count: 3}}}}
	in = Input{Snapshot: spinSnap(time.Second, now, spinner(7)), Stack: stackOf(inBody), StretchStack: stackOf(inSelect)}
	fs := e.Observe(in)
	if len(fs) != 1 || fs[0].Rule != "select-spin" {
		t.Fatalf("second snapshot: %+v, want one select-spin", fs)
	}
	if f := fs[0]; !strings.Contains(f.Title, "merge.go:22") || f.Evidence.Sites[0] != spinSelect || f.Evidence.Tasks[0] != 7 {
		t.Errorf("finding %q %+v: want the select's line and the goroutine", f.Title, f.Evidence)
	}
	// Sleepers whose timers fired while it ran seem woken by it: they do
	// not wait for it.
	e = newEngine(t, Config{})
	asleep := []api.Site{{Reason: "sleep", Location: api.Frame{Function: "example.com/svc.tick"},
		WaitNS: window, Wakers: []api.WakerSite{{Location: spinSelect, Count: 100}}}}
	for i := range 2 {
		fs = e.Observe(Input{Snapshot: spinSnap(time.Duration(i)*time.Second, asleep, spinner(7)), Stack: stackOf(inSelect)})
	}
	if len(fs) != 1 || fs[0].Rule != "select-spin" {
		t.Errorf("beside sleepers its timers woke: %+v, want select-spin", fs)
	}

	for name, in := range map[string]Input{
		"no channel operation in its stacks": {Snapshot: spinSnap(0, nil, spinner(7)), Stack: stackOf(inBody)},
		"producers wait for it": {Snapshot: spinSnap(0, []api.Site{{Reason: "chan send", Location: api.Frame{Function: "example.com/svc.produce"},
			WaitNS: window, Wakers: []api.WakerSite{{Location: spinSelect, Count: 100}}}}, spinner(7)), Stack: stackOf(inSelect)},
		"it blocks a quarter of the time": {Snapshot: spinSnap(0, nil, func() api.Task {
			t := spinner(7)
			t.Stats.BusyNS, t.Stats.SchedNS, t.Stats.IdleNS = window*3/4, 0, window/4
			return t
		}()), Stack: stackOf(inSelect)},
	} {
		e := newEngine(t, Config{})
		for i := range 3 {
			in.Snapshot.Time = t0.Add(time.Duration(i) * time.Second)
			for _, f := range e.Observe(in) {
				if f.Rule == "select-spin" {
					t.Errorf("%s: %+v, want no select-spin", name, f)
				}
			}
		}
	}
}

// A poller that never yields: a select with one case and a default in a
// loop, no Gosched. It is on CPU the whole window, preempted by the runtime
// ~100 times a second (so it is not rescheduled thousands of times a
// second), and caught in the non-blocking receive: busy-poll at the
// select's line. The same goroutine caught computing is not a poller.
func TestBusyPollWithoutYielding(t *testing.T) {
	pollAt := api.Frame{Function: "example.com/svc.drain", File: "/src/svc/drain.go", Line: 14}
	poller := api.Task{ID: 9, Name: "svc/drain", State: "running", Location: pollAt,
		CreatedBy: api.Frame{Function: "example.com/svc.run", File: "/src/svc/run.go", Line: 9},
		Stats: api.TaskStats{TotalNS: window, BusyNS: window * 97 / 100, SchedNS: window * 3 / 100, Polls: 500,
			LongestRunNS: int64(10 * time.Millisecond), LongestStretchNS: window}}
	polling := []api.Frame{{Function: "runtime.chanrecv", File: "/go/src/runtime/chan.go", Line: 520},
		{Function: "runtime.selectnbrecv", File: "/go/src/runtime/chan.go", Line: 790}, pollAt,
		{Function: "example.com/svc.run.func1", File: "/src/svc/run.go", Line: 10}}
	computing := []api.Frame{{Function: "example.com/svc.crunch", File: "/src/svc/crunch.go", Line: 40}, pollAt}
	for _, tc := range []struct {
		name  string
		stack []api.Frame
		want  bool
	}{{"caught in the non-blocking receive", polling, true}, {"caught computing", computing, false}} {
		e := newEngine(t, Config{})
		var fs []api.Finding
		for i := range 3 {
			fs = e.Observe(Input{Snapshot: spinSnap(time.Duration(i)*time.Second, nil, poller),
				Stack: func(int64) []api.Frame { return tc.stack }, StretchStack: func(int64) []api.Frame { return tc.stack }})
		}
		got := len(fs) == 1 && fs[0].Rule == "busy-poll"
		if got != tc.want {
			t.Errorf("%s: findings %+v, want busy-poll %v", tc.name, fs, tc.want)
			continue
		}
		if got && (!strings.Contains(fs[0].Title, "drain.go:14") || fs[0].Evidence.Figures["polls_per_second"] > 200) {
			t.Errorf("%s: %q %v, want the select's line and ~100 runs a second", tc.name, fs[0].Title, fs[0].Evidence.Figures)
		}
	}
}

// A CPU-bound goroutine that computed the whole window and has just come to
// rest in a select (a hog between two bursts) did not spin in that select:
// its stack is where it blocked.
func TestNoSpinForAComputationAtRest(t *testing.T) {
	hog := spinner(7)
	hog.State, hog.WaitReason = "waiting", "select"
	computing := []api.Frame{{Function: "example.com/svc.burn", File: "/src/svc/burn.go", Line: 5}}
	e := newEngine(t, Config{})
	for i := range 3 {
		fs := e.Observe(Input{Snapshot: spinSnap(time.Duration(i)*time.Second, nil, hog),
			Stack: func(int64) []api.Frame { return inSelect }, StretchStack: func(int64) []api.Frame { return computing }})
		for _, f := range fs {
			if f.Rule == "select-spin" || f.Rule == "busy-poll" {
				t.Fatalf("a hog at rest in a select: %+v", f)
			}
		}
	}
}
