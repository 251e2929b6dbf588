package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// leakedTask is a goroutine the leak detection proved blocked for good in
// reason at line of /src/bug/bug.go, created at creator's line.
func leakedTask(id int64, reason string, line, creatorLine int) api.Task {
	return api.Task{ID: id, Name: "bug", State: "waiting", WaitReason: reason, Leaked: true, WaitMinutes: 2,
		Location:  api.Frame{Function: "example.com/bug.run.func1", File: "/src/bug/bug.go", Line: line},
		CreatedBy: api.Frame{Function: "example.com/bug.run", File: "/src/bug/bug.go", Line: creatorLine},
		Stats:     api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
}

func provenSnap(at time.Duration, tasks ...api.Task) *api.Snapshot {
	return &api.Snapshot{Time: t0.Add(at), WindowNS: window, Tasks: tasks,
		Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: len(tasks)}}
}

// named returns the ids the goroutine-leak and deadlock findings name.
func named(fs []api.Finding) map[int64]bool {
	ids := map[int64]bool{}
	for _, f := range fs {
		if f.Rule == "goroutine-leak" || f.Rule == "deadlock" {
			for _, id := range f.Evidence.Tasks {
				ids[id] = true
			}
		}
	}
	return ids
}

// One goroutine the runtime proved leaked is a finding from the first
// snapshot on, whatever it waits on: a lock as much as a channel.
func TestEveryProvenLeakIsAFinding(t *testing.T) {
	for _, reason := range []string{"chan send", "chan receive", "select", "select (no cases)", "chan send (nil chan)",
		"chan receive (nil chan)", "sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock", "sync.WaitGroup.Wait", "sync.Cond.Wait"} {
		fs := newEngine(t, Config{}).Observe(Input{Snapshot: provenSnap(0, leakedTask(7, reason, 20, 10))})
		if len(fs) != 1 || !named(fs)[7] || fs[0].Severity != Critical {
			t.Errorf("one goroutine leaked in %s: findings %+v, want one critical finding that names it", reason, fs)
			continue
		}
		if !strings.Contains(fs[0].Title, reason+" at") || !strings.Contains(fs[0].Title, "bug.go:20") {
			t.Errorf("%s: title %q, want what it waits on and where", reason, fs[0].Title)
		}
	}
}

// A hundred thousand goroutines proven leaked at one site, and a fast leak
// that grows by thousands a second: the leak is reported, with every
// goroutine counted; the explosion may stand beside it, never instead.
func TestAFastLeakIsALeak(t *testing.T) {
	const n = 100_000
	tasks := make([]api.Task, 0, n)
	for id := range int64(n) {
		tk := leakedTask(1000+id, "chan send", 20, 10)
		tk.Stats.TotalNS = window / 2 // created within the window
		tasks = append(tasks, tk)
	}
	e := newEngine(t, Config{})
	fs := e.Observe(Input{Snapshot: provenSnap(0, tasks...)})
	var leak *api.Finding
	for i := range fs {
		if fs[i].Rule == "goroutine-leak" {
			leak = &fs[i]
		}
	}
	if leak == nil {
		t.Fatalf("100,000 proven leaked goroutines, created fast: findings %+v, want goroutine-leak", fs)
	}
	if leak.Evidence.Figures["leaked"] != n || !strings.Contains(leak.Title, "100000 goroutines blocked for good in chan send") {
		t.Errorf("leak finding %q %v, want all 100000 counted", leak.Title, leak.Evidence.Figures)
	}
}

// One bug that strands a lock wait in one goroutine and channel operations
// in two others (one run of one function) is one finding that names every
// site; a second bug elsewhere is a finding of its own.
func TestOneBugOneFindingWithAllItsSites(t *testing.T) {
	var tasks []api.Task
	// Three runs of the buggy function, each stranding three goroutines.
	for run := range int64(3) {
		tasks = append(tasks, leakedTask(100+10*run, "sync.Mutex.Lock", 31, 12), leakedTask(101+10*run, "chan send", 44, 13),
			leakedTask(102+10*run, "chan receive", 52, 14))
	}
	other := leakedTask(500, "sync.Cond.Wait", 9, 5)
	other.Location = api.Frame{Function: "example.com/cache.(*c).get", File: "/src/cache/cache.go", Line: 9}
	other.CreatedBy = api.Frame{Function: "example.com/cache.fill", File: "/src/cache/cache.go", Line: 5}
	tasks = append(tasks, other)
	slices.SortFunc(tasks, func(a, b api.Task) int { return int(a.ID - b.ID) })
	fs := newEngine(t, Config{}).Observe(Input{Snapshot: provenSnap(0, tasks...)})
	if len(fs) != 2 {
		t.Fatalf("findings %+v, want two: the bug of three sites and the other", fs)
	}
	for _, f := range fs {
		var lines []string
		for _, s := range f.Evidence.Sites {
			lines = append(lines, fmt.Sprintf("%s:%d", s.File[strings.LastIndexByte(s.File, '/')+1:], s.Line))
		}
		if slices.Contains(f.Evidence.Tasks, 500) {
			if len(f.Evidence.Tasks) != 1 || !slices.Contains(lines, "cache.go:9") {
				t.Errorf("the other bug: %q tasks %v sites %v", f.Title, f.Evidence.Tasks, lines)
			}
			continue
		}
		for _, want := range []string{"bug.go:31", "bug.go:44", "bug.go:52"} {
			if !slices.Contains(lines, want) || !strings.Contains(f.Message, want) {
				t.Errorf("the bug's finding %q (%s) sites %v: want %s among them", f.Title, f.Message, lines, want)
			}
		}
		if len(f.Evidence.Tasks) != 9 || !strings.Contains(f.Title, "9 goroutines blocked for good at 3 sites") {
			t.Errorf("the bug's finding %q names %v, want all nine goroutines", f.Title, f.Evidence.Tasks)
		}
	}
}

// Two or more goroutines of one bug proven stuck in Lock are a deadlock,
// at every lock site; goroutines stuck at the same site that the leak
// detection has not looked at yet are not a second finding.
func TestProvenDeadlockNamesEveryLock(t *testing.T) {
	a, b := leakedTask(10, "sync.Mutex.Lock", 31, 12), leakedTask(11, "sync.Mutex.Lock", 37, 13)
	late := leakedTask(12, "sync.Mutex.Lock", 31, 12)
	late.Leaked = false
	fs := newEngine(t, Config{}).Observe(Input{Snapshot: provenSnap(0, a, b, late)})
	if len(fs) != 1 || fs[0].Rule != "deadlock" || !strings.Contains(fs[0].Message, "bug.go:31") || !strings.Contains(fs[0].Message, "bug.go:37") {
		t.Fatalf("findings %+v, want one deadlock at both locks", fs)
	}
}

// An explosion that happened before the inspector attached: 60,000
// goroutines from one go statement, none created within the window, and
// no growth between snapshots. It is reported whether the source knows
// where they were created (a dump) or only what they run (a goroutine
// profile of a target too large to dump).
func TestExplosionThatAlreadyHappened(t *testing.T) {
	worker := api.Frame{Function: "example.com/svc.worker", File: "/src/svc/worker.go", Line: 30}
	spawn := api.Frame{Function: "example.com/svc.start", File: "/src/svc/start.go", Line: 12}
	stack := []api.Frame{{Function: "runtime.gopark"}, {Function: "runtime.chanrecv1"}, worker, {Function: "runtime.goexit"}}
	for _, tc := range []struct {
		name    string
		creator api.Frame
		want    string
	}{{"creators known", spawn, "start.go:12"}, {"creators unknown", api.Frame{}, "worker.go:30"}} {
		tasks := make([]api.Task, 0, 60_000)
		for id := range int64(60_000) {
			tasks = append(tasks, api.Task{ID: 100 + id, Name: "svc.worker", State: "waiting", WaitReason: "chan receive",
				Location: worker, CreatedBy: tc.creator, Stats: api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}})
		}
		e := newEngine(t, Config{})
		var fs []api.Finding
		for i := range 3 {
			s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: tasks,
				Process: api.Process{GOMAXPROCS: 2, Goroutines: 60_000, Leaked: -1}}
			fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return stack }})
		}
		if len(fs) == 0 || fs[0].Rule != "goroutine-explosion" || fs[0].Severity != Critical || !strings.Contains(fs[0].Title, "60000 goroutines") ||
			!strings.Contains(fs[0].Title, tc.want) {
			t.Errorf("%s: findings %+v, want a critical explosion of 60000 at %s", tc.name, fs, tc.want)
		}
	}
}

// Goroutines started through a wrapper (pprof.Do, a spawn helper) are
// counted by the function the wrapper runs, not the wrapper's, and where
// the window saw some of them created, the finding names that go
// statement.
func TestExplosionThroughAWrapper(t *testing.T) {
	body := api.Frame{Function: "example.com/svc.(*storm).fib.func1", File: "/src/svc/storm.go", Line: 83}
	spawn := api.Frame{Function: "example.com/svc.(*storm).fib", File: "/src/svc/storm.go", Line: 81}
	stack := []api.Frame{{Function: "runtime.gopark"}, {Function: "runtime.chanrecv1"}, body,
		{Function: "github.com/inspectd/inspectd/internal/workload.(*Env).run", File: "/src/workload/workload.go", Line: 240},
		{Function: "runtime/pprof.Do", File: "/go/src/runtime/pprof/runtime.go", Line: 57},
		{Function: "github.com/inspectd/inspectd/internal/workload.(*Env).Spawn.func1", File: "/src/workload/workload.go", Line: 210},
		{Function: "runtime.goexit"}}
	tasks := make([]api.Task, 0, 60_010)
	for id := range int64(60_010) {
		task := api.Task{ID: 100 + id, Name: "svc.node", State: "waiting", WaitReason: "chan receive",
			Location: body, Stats: api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
		if id >= 60_000 { // the few the window saw created
			task.CreatedBy, task.Stats.TotalNS, task.Stats.IdleNS = spawn, window/2, window/2
		}
		tasks = append(tasks, task)
	}
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i := range 3 {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: tasks,
			Process: api.Process{GOMAXPROCS: 2, Goroutines: 60_010, Leaked: -1}}
		fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return stack }})
	}
	if len(fs) == 0 || fs[0].Rule != "goroutine-explosion" || !strings.Contains(fs[0].Title, "fib.func1 storm.go:83") {
		t.Fatalf("findings %+v, want an explosion of the goroutines fib.func1 runs", fs)
	}
	if sites := fs[0].Evidence.Sites; len(sites) == 0 || sites[0] != spawn {
		t.Errorf("sites %+v, want the go statement %+v first", sites, spawn)
	}
}

// Leaked goroutines the profile counts but the snapshot cannot place (its
// goroutines lack the marks) are a finding still, with their count.
func TestLeaksCountedButNotPlaced(t *testing.T) {
	tk := leakedTask(7, "chan send", 20, 10)
	tk.Leaked = false
	s := provenSnap(0, tk)
	s.Process.Leaked, s.Process.Goroutines = 54650, 60000 // a dump cut short
	fs := newEngine(t, Config{}).Observe(Input{Snapshot: s})
	if len(fs) != 1 || fs[0].Rule != "goroutine-leak" || fs[0].Severity != Critical || !strings.Contains(fs[0].Title, "54650 goroutines") {
		t.Fatalf("findings %+v, want the 54650 leaked goroutines counted", fs)
	}
}
