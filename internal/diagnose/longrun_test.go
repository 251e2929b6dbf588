package diagnose

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// A serving goroutine whose long computation fills whole windows (a loaded
// machine stretches it) wakes nobody in them: the requests it answered
// before, within the history, are still its waiters, and long-run names it.
func TestLongRunThatFillsTheWindow(t *testing.T) {
	computing := api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 2, Polls: 40, LongestStretchNS: window / 2}
	fs := observeLongRun(t, computing, []api.Frame{burn, serve}, false)
	if len(fs) != 1 || fs[0].Rule != "long-run" || !strings.Contains(fs[0].Message, "ask.go:9") {
		t.Fatalf("findings %+v, want long-run with the requests it left waiting", fs)
	}
}

// On a loaded machine the OS may stop a thread for hundreds of
// milliseconds while its goroutine, in the trace, runs: a computation
// stays a long run however the OS splits it, but one preempted in a select
// was polling (or stopped there by the OS), not computing; a goroutine that
// never blocks but answers its waiters in the same window serves them
// (their wait is the OS's), while one that answers nobody in it keeps them
// waiting.
func TestLongRunLeavesTheOSAndSpinnersAlone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stats   api.TaskStats
		stretch []api.Frame
		served  bool
		want    bool
	}{
		{"runs of 200ms on a loaded machine, seconds in all", api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 2, Polls: 40,
			LongestRunNS: int64(200 * time.Millisecond), LongestStretchNS: window / 2}, []api.Frame{burn, serve}, false, true},
		{"preempted in a select", api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 4, IdleNS: window / 4, Polls: 40, LongestStretchNS: window / 2},
			[]api.Frame{{Function: "runtime.selectgo", File: "/go/src/runtime/select.go", Line: 351}, serve}, false, false},
		{"never blocking, serving its waiters all along", api.TaskStats{TotalNS: window, BusyNS: window * 3 / 4, SchedNS: window / 4, Polls: 400, LongestStretchNS: window},
			[]api.Frame{burn, serve}, true, false},
		{"never blocking, keeping them waiting", api.TaskStats{TotalNS: window, BusyNS: window * 3 / 4, SchedNS: window / 4, Polls: 400, LongestStretchNS: window},
			[]api.Frame{burn, serve}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := observeLongRun(t, tc.stats, tc.stretch, tc.served)
			if got := len(fs) == 1 && fs[0].Rule == "long-run"; got != tc.want {
				t.Errorf("findings %+v, want long-run: %v", fs, tc.want)
			}
		})
	}
}

var (
	serve = api.Frame{Function: "example.com/svc.serve", File: "/src/svc/serve.go", Line: 20}
	burn  = api.Frame{Function: "example.com/svc.burn", File: "/src/svc/serve.go", Line: 40}
	ask   = api.Frame{Function: "example.com/svc.ask", File: "/src/svc/ask.go", Line: 9}
)

// observeLongRun observes a server that first answers an asker, then runs
// with computing's figures for three windows, preempted in stretch, while
// the asker waits (and is still answered in them, if served): the findings
// after.
func observeLongRun(t *testing.T, computing api.TaskStats, stretch []api.Frame, served bool) []api.Finding {
	t.Helper()
	server := func(computes bool) api.Task {
		tk := api.Task{ID: 5, Name: "svc/server", State: "waiting", WaitReason: "select", Location: serve,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window / 10, IdleNS: window * 9 / 10, Polls: 200, LongestStretchNS: int64(time.Millisecond)}}
		if computes {
			tk.State, tk.WaitReason, tk.Location, tk.Stats = "running", "", burn, computing
		}
		return tk
	}
	asker := api.Task{ID: 6, Name: "svc/asker", State: "waiting", WaitReason: "chan send", Location: ask,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window}}
	site := func(computes bool) api.Site {
		s := api.Site{Reason: "chan send", Location: ask, Waiting: 1, WaitNS: window / 50, Wakeups: 200, Tasks: []int64{6},
			Wakers: []api.WakerSite{{Location: serve, Count: 200}}}
		if computes && !served {
			s.WaitNS, s.Wakeups, s.Wakers = window, 0, nil
		} else if computes {
			s.WaitNS = window / 2 // served, but kept waiting in between
		}
		return s
	}
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i, computes := range []bool{false, true, true, true} {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: []api.Task{server(computes), asker},
			Sites: []api.Site{site(computes)}, Process: api.Process{GOMAXPROCS: 2, Goroutines: 2, Leaked: -1}}
		fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return []api.Frame{serve} },
			StretchStack: func(int64) []api.Frame { return stretch }})
	}
	return fs
}

// In an overloaded process the starved are runnable much of the time too:
// goroutines that run for microseconds and queue for the rest (tickers,
// goroutines that yield) are not among the CPU-bound, and the finding
// names neither their sites nor them as its evidence; a pool's worker that
// rests between chunks is counted, but its site is not the hogs'.
func TestStarvationNamesTheHogsNotTheStarved(t *testing.T) {
	burn := api.Frame{Function: "example.com/app.burn", File: "/src/app/hog.go", Line: 33}
	tick := api.Frame{Function: "example.com/app.tick", File: "/src/app/tick.go", Line: 12}
	var tasks []api.Task
	for id := range int64(3) {
		tasks = append(tasks, api.Task{ID: 1 + id, Name: "hog", State: "runnable", Location: burn,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window * 6 / 10, SchedNS: window * 4 / 10, Polls: 300, LongestStretchNS: window / 2}})
	}
	for id := range int64(5) {
		tasks = append(tasks, api.Task{ID: 10 + id, Name: "ticker", State: "waiting", WaitReason: "select", Location: tick,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window / 100, SchedNS: window / 2, IdleNS: window * 49 / 100, Polls: 2000}})
	}
	// A pool's worker that computes in chunks and rests between them, as
	// hungry as the hogs over the window (a loaded machine stretches its
	// chunks) but never on CPU for long without a break.
	pool := api.Frame{Function: "example.com/app.countPrimes", File: "/src/app/pool.go", Line: 109}
	tasks = append(tasks, api.Task{ID: 20, Name: "pool/worker", State: "waiting", WaitReason: "select", Location: pool,
		Stats: api.TaskStats{TotalNS: window, BusyNS: window * 5 / 10, SchedNS: window * 4 / 10, IdleNS: window / 10, Polls: 400, LongestStretchNS: int64(6 * time.Millisecond)}})
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i := range 3 {
		fs = e.Observe(Input{Snapshot: spinSnap(time.Duration(i)*time.Second, nil, tasks...)})
	}
	if len(fs) != 1 || fs[0].Rule != "sched-starvation" || !strings.Contains(fs[0].Title, "4 CPU-bound goroutines") {
		t.Fatalf("findings %+v, want starvation by the three hogs", fs)
	}
	for _, s := range fs[0].Evidence.Sites {
		if s == tick || s == pool {
			t.Errorf("sites %v: the starved ticker or the resting pool named", fs[0].Evidence.Sites)
		}
	}
	for _, id := range fs[0].Evidence.Tasks {
		if id >= 10 && id < 20 {
			t.Errorf("tasks %v: a starved ticker among the evidence", fs[0].Evidence.Tasks)
		}
	}
}

// Starved Ps and a server that computes inline among the hogs: the
// starvation is reported, and the server's long runs, which keep its
// requester waiting, too (long-run looks before starvation claims).
func TestStarvationLeavesTheLongRunToLongRun(t *testing.T) {
	hog := api.Frame{Function: "example.com/app.burn", File: "/src/app/hog.go", Line: 33}
	var tasks []api.Task
	for id := range int64(3) {
		tasks = append(tasks, api.Task{ID: 1 + id, Name: "hog", State: "runnable", Location: hog,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window * 6 / 10, SchedNS: window * 4 / 10, Polls: 300, LongestStretchNS: window / 2}})
	}
	server := api.Task{ID: 5, Name: "svc/server", State: "running", Location: burn,
		Stats: api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window * 4 / 10, IdleNS: window / 10, Polls: 40, LongestStretchNS: window / 2}}
	asker := api.Task{ID: 6, Name: "svc/asker", State: "waiting", WaitReason: "chan send", Location: ask,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window}}
	site := api.Site{Reason: "chan send", Location: ask, Waiting: 1, WaitNS: window / 2, Wakeups: 2, Tasks: []int64{6},
		Wakers: []api.WakerSite{{Location: serve, Count: 2}}}
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i := range 3 {
		fs = e.Observe(Input{Snapshot: spinSnap(time.Duration(i)*5*time.Second, []api.Site{site}, append(slices.Clone(tasks), server, asker)...),
			Stack:        func(id int64) []api.Frame { return []api.Frame{serve} },
			StretchStack: func(id int64) []api.Frame { return []api.Frame{burn, serve} }})
	}
	rules := map[string]api.Finding{}
	for _, f := range fs {
		rules[f.Rule] = f
	}
	if _, ok := rules["sched-starvation"]; !ok {
		t.Errorf("findings %+v: want sched-starvation", fs)
	}
	if f, ok := rules["long-run"]; !ok || !strings.Contains(f.Title, "svc/server") {
		t.Errorf("findings %+v: want long-run naming the server", fs)
	}
}

// Waiters that began to wait before the trace window have no place in it:
// the finding says what they wait in and names no empty site.
func TestLongRunVictimsOfUnknownPlace(t *testing.T) {
	server := api.Task{ID: 5, Name: "svc/server", State: "running", Location: burn,
		Stats: api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 4, IdleNS: window / 4, Polls: 40, LongestStretchNS: window / 2}}
	asker := api.Task{ID: 6, Name: "svc/asker", State: "waiting", WaitReason: "chan send", Location: ask,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window}}
	unknown := api.Site{Reason: "chan send", Waiting: 1, WaitNS: window, Wakeups: 3,
		Wakers: []api.WakerSite{{Location: serve, Count: 3}}}
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i := range 3 {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: []api.Task{server, asker},
			Sites: []api.Site{unknown}, Process: api.Process{GOMAXPROCS: 2, Goroutines: 2, Leaked: -1}}
		fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return []api.Frame{burn, serve} },
			StretchStack: func(int64) []api.Frame { return []api.Frame{burn, serve} }})
	}
	if len(fs) != 1 || fs[0].Rule != "long-run" || !strings.Contains(fs[0].Message, "waiting in chan send (since before the window") {
		t.Fatalf("findings %+v, want long-run naming the victims by what they wait in", fs)
	}
	for _, s := range fs[0].Evidence.Sites {
		if s.Function == "" && s.File == "" {
			t.Errorf("evidence sites %v: an empty site", fs[0].Evidence.Sites)
		}
	}
}

// A worker that computes for long while goroutines wait whom it seems to
// wake because their timers fired while it ran: the runtime's scavenger,
// the inspector's own goroutines, a goroutine of the program asleep. It
// serves none of them.
func TestLongRunLeavesTheRuntimesWaitsAlone(t *testing.T) {
	worker := api.Task{ID: 5, Name: "pool/worker", State: "running", Location: burn,
		Stats: api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 4, IdleNS: window / 4, Polls: 40, LongestStretchNS: window / 4}}
	for _, site := range []api.Site{
		{Reason: "sleep", Location: api.Frame{Function: "runtime.(*scavengerState).sleep", File: "/go/src/runtime/mgcscavenge.go", Line: 504}},
		{Reason: "select", Location: api.Frame{Function: "github.com/inspectd/inspectd/internal/source/inproc.(*Collector).waitSlice",
			File: "/src/inspectd/internal/source/inproc/recorder.go", Line: 484}},
		{Reason: "sleep", Location: ask},
	} {
		site.Waiting, site.WaitNS, site.Wakeups, site.Wakers = 1, window/2, 3, []api.WakerSite{{Location: serve, Count: 3}}
		e := newEngine(t, Config{})
		var fs []api.Finding
		for i := range 3 {
			s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: []api.Task{worker},
				Sites: []api.Site{site}, Process: api.Process{GOMAXPROCS: 2, Goroutines: 1, Leaked: -1}}
			fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return []api.Frame{burn, serve} },
				StretchStack: func(int64) []api.Frame { return []api.Frame{burn, serve} }})
		}
		if len(fs) != 0 {
			t.Errorf("waiters in %s at %s: findings %+v, want none", site.Reason, site.Location.Function, fs)
		}
	}
}
