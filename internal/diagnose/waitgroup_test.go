package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

var (
	wgWait   = api.Frame{Function: "example.com/svc.joinBatch", File: "/src/svc/join.go", Line: 40}
	wgSpawn  = api.Frame{Function: "example.com/svc.joinBatch", File: "/src/svc/join.go", Line: 31}
	wgCaller = api.Frame{Function: "example.com/svc.run", File: "/src/svc/run.go", Line: 12}
)

// joiner is a goroutine in WaitGroup.Wait at join.go:40 for inState.
func joiner(id int64, inState time.Duration) api.Task {
	return api.Task{ID: id, Name: "svc/joiner", State: "waiting", WaitReason: "sync.WaitGroup.Wait", ParentID: 1,
		Location: wgWait, CreatedBy: wgCaller,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: int64(min(inState, time.Duration(window)))}}
}

// child is a goroutine that joiner parent started, running.
func child(id, parent int64) api.Task {
	return api.Task{ID: id, Name: "svc/task", State: "waiting", WaitReason: "sleep", ParentID: parent,
		Location: api.Frame{Function: "example.com/svc.task", File: "/src/svc/join.go", Line: 50}, CreatedBy: wgSpawn,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window, Polls: 3}}
}

func wgSnap(at time.Duration, tasks ...api.Task) *api.Snapshot {
	return &api.Snapshot{Time: t0.Add(at), WindowNS: window, Tasks: tasks,
		Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: -1}}
}

// A joiner seen with its goroutines, which then all return while it still
// waits: waitgroup-stuck at the Wait, naming where they were created; none
// while they run, none for a waiter never seen starting goroutines, and the
// finding clears once the joiner returns.
func TestWaitGroupStuck(t *testing.T) {
	e := newEngine(t, Config{})
	if fs := e.Observe(Input{Snapshot: wgSnap(0, joiner(10, time.Second), child(11, 10), child(12, 10), joiner(20, 30*time.Second))}); len(fs) != 0 {
		t.Fatalf("goroutines still running: %+v, want nothing", fs)
	}
	fs := e.Observe(Input{Snapshot: wgSnap(time.Second, joiner(10, 2*time.Second), joiner(20, 31*time.Second))})
	if len(fs) != 1 || fs[0].Rule != "waitgroup-stuck" {
		t.Fatalf("its goroutines gone, the joiner waiting 2s: %+v, want one waitgroup-stuck", fs)
	}
	f := fs[0]
	if !strings.Contains(f.Title, "join.go:40") || len(f.Evidence.Tasks) != 2 || f.Evidence.Sites[0] != wgWait {
		t.Errorf("finding %q %+v: want the Wait's site and both waiters there", f.Title, f.Evidence)
	}
	if len(f.Evidence.Sites) < 2 || f.Evidence.Sites[1] != wgSpawn || !strings.Contains(f.Message, "join.go:31") {
		t.Errorf("finding %q sites %v: want where its goroutines were created", f.Message, f.Evidence.Sites)
	}
	if fs := e.Observe(Input{Snapshot: wgSnap(3*time.Second, joiner(20, 33*time.Second))}); len(fs) == 0 {
		t.Errorf("joiner 10 returned, 20 waits on but no snapshot saw it start anything: the finding lingers for now")
	}
	// Without the leak profile, a waiter so long alone is a suspect, no more.
	for _, f := range e.Observe(Input{Snapshot: wgSnap(14*time.Second, joiner(20, 44*time.Second))}) {
		if f.Rule != "leak-suspect" || f.Severity != Info {
			t.Errorf("only a waiter never seen starting goroutines: %+v, want at most a suspect", f)
		}
	}
}

// A goroutine waiting on a WaitGroup for goroutines others started (a
// supervisor waiting for a pool) is not a lost Done.
func TestWaitGroupWaiterWithoutChildren(t *testing.T) {
	e := newEngine(t, Config{})
	worker := child(11, 99) // started by someone else
	for i := range 5 {
		at := time.Duration(i) * time.Second
		if fs := e.Observe(Input{Snapshot: wgSnap(at, joiner(10, 10*time.Second+at), worker)}); len(fs) != 0 {
			t.Fatalf("at %v: %+v, want nothing", at, fs)
		}
	}
}

// A snapshot that lacks goroutines of the process cannot show that a
// joiner's goroutines are all gone: no finding from it.
func TestWaitGroupNotFromAnIncompleteSnapshot(t *testing.T) {
	e := newEngine(t, Config{})
	e.Observe(Input{Snapshot: wgSnap(0, joiner(10, time.Second), child(11, 10))})
	s := wgSnap(3*time.Second, joiner(10, 4*time.Second))
	s.Process.Goroutines = 50000 // the snapshot holds one of them
	if fs := e.Observe(Input{Snapshot: s}); len(fs) != 0 {
		t.Errorf("findings %+v from a snapshot of 1 of 50000 goroutines, want none", fs)
	}
}
