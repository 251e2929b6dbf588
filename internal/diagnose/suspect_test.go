package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// stuckTask is a goroutine blocked in reason at svc.go:line since before
// the window, started by goroutine 1 (gone unless the test adds it).
func stuckTask(id int64, reason string, line int) api.Task {
	return api.Task{ID: id, Name: "svc", State: "waiting", WaitReason: reason, ParentID: 1,
		Location:  api.Frame{Function: "example.com/svc.handle.func1", File: "/src/svc/svc.go", Line: line},
		CreatedBy: api.Frame{Function: "example.com/svc.handle", File: "/src/svc/svc.go", Line: 10},
		Stats:     api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
}

// observeFor feeds the engine a snapshot a second for secs seconds, with
// the tasks and stacks given, and returns the last findings.
func observeFor(t *testing.T, e *Engine, secs int, leaked int, stack func(int64) []api.Frame, tasks ...api.Task) []api.Finding {
	t.Helper()
	var fs []api.Finding
	for sec := range secs {
		s := &api.Snapshot{Time: t0.Add(time.Duration(sec) * time.Second), WindowNS: window, Tasks: tasks,
			Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: leaked}}
		fs = e.Observe(Input{Snapshot: s, Stack: stack})
	}
	return fs
}

// Without the leak profile, one goroutine left blocked by a request that
// returned is a suspect once it has waited stuck_for, at info severity,
// saying the proof is missing and how to get it; it is no suspect before,
// nor where the runtime's leak detection is there to ask.
func TestSuspectWithoutProof(t *testing.T) {
	recv1 := func(int64) []api.Frame {
		return []api.Frame{{Function: "runtime.chanrecv1"}, {Function: "example.com/svc.handle.func1", File: "/src/svc/svc.go", Line: 22}}
	}
	for _, reason := range []string{"chan send", "chan receive", "select", "sync.Mutex.Lock", "sync.WaitGroup.Wait", "sync.Cond.Wait", "chan receive (nil chan)"} {
		if fs := observeFor(t, newEngine(t, Config{}), 5, -1, recv1, stuckTask(7, reason, 22)); len(fs) != 0 {
			t.Errorf("%s, stuck 5s: %+v, want nothing yet", reason, fs)
		}
		fs := observeFor(t, newEngine(t, Config{}), 12, -1, recv1, stuckTask(7, reason, 22))
		if len(fs) != 1 || fs[0].Rule != "leak-suspect" || fs[0].Severity != Info || !strings.Contains(fs[0].Title, "unproven") ||
			!strings.Contains(fs[0].Title, "svc.go:22") {
			t.Errorf("%s, stuck 12s: %+v, want one info suspect at svc.go:22", reason, fs)
			continue
		}
		if m := fs[0].Message + strings.Join(fs[0].Evidence.Missing, " "); !strings.Contains(m, "Go 1.27") || !strings.Contains(m, "GOEXPERIMENT=goroutineleakprofile") {
			t.Errorf("%s: %q, want what proof is missing and how to get it", reason, m)
		}
		if fs := observeFor(t, newEngine(t, Config{}), 12, 0, recv1, stuckTask(7, reason, 22)); len(fs) != 0 {
			t.Errorf("%s with the leak profile read (nothing proven): %+v, want nothing", reason, fs)
		}
	}
}

// What rests without being lost is no suspect: a consumer waiting in a
// for-range receive, a goroutine whose starter lives on (a pool, a
// server's connections), one waiting for a child of its own, the standard
// library's goroutines, and one whose site wakes goroutines.
func TestNoSuspectAtRest(t *testing.T) {
	rangeRecv := func(int64) []api.Frame {
		return []api.Frame{{Function: "runtime.chanrecv2"}, {Function: "example.com/svc.handle.func1", File: "/src/svc/svc.go", Line: 22}}
	}
	noStack := func(int64) []api.Frame { return nil }
	starter := api.Task{ID: 1, Name: "main", State: "waiting", WaitReason: "IO wait",
		Location: api.Frame{Function: "main.main"}, Stats: api.TaskStats{TotalNS: window, IdleNS: window}}
	parentOf := stuckTask(7, "chan send", 22)
	parentOf.ParentID = 50
	child := stuckTask(8, "sleep", 30)
	child.ParentID = 7
	conn := api.Task{ID: 9, Name: "net/http.(*conn).serve", State: "waiting", WaitReason: "select", ParentID: 1,
		Location:  api.Frame{Function: "net/http.(*persistConn).writeLoop", File: "/go/src/net/http/transport.go", Line: 2600},
		CreatedBy: api.Frame{Function: "net/http.(*Transport).dialConn", File: "/go/src/net/http/transport.go", Line: 1900},
		Stats:     api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
	for name, tc := range map[string]struct {
		stack func(int64) []api.Frame
		tasks []api.Task
	}{
		"a consumer in for range": {rangeRecv, []api.Task{stuckTask(7, "chan receive", 22)}},
		"a receive with no stack": {noStack, []api.Task{stuckTask(7, "chan receive", 22)}},
		"its starter lives on":    {noStack, []api.Task{starter, stuckTask(7, "chan send", 22)}},
		"a worker whose starter lives on, in a select": {func(id int64) []api.Frame {
			return []api.Frame{{Function: "example.com/svc.handle", File: "/src/svc/svc.go", Line: 12}}
		}, []api.Task{starter, stuckTask(7, "select", 22)}},
		"it waits for a child":          {noStack, []api.Task{parentOf, child}},
		"a transport's idle connection": {noStack, []api.Task{conn}},
	} {
		if fs := observeFor(t, newEngine(t, Config{}), 15, -1, tc.stack, tc.tasks...); len(fs) != 0 {
			t.Errorf("%s: %+v, want nothing", name, fs)
		}
	}
}

// A request's handler that returned while its connection's goroutine lives
// on (keep-alive) leaves a send behind: its starter has returned.
func TestSuspectLeftByAHandler(t *testing.T) {
	conn := api.Task{ID: 1, Name: "net/http.(*conn).serve", State: "waiting", WaitReason: "IO wait",
		Location:  api.Frame{Function: "net/http.(*conn).serve", File: "/go/src/net/http/server.go", Line: 2100},
		CreatedBy: api.Frame{Function: "net/http.(*Server).Serve", File: "/go/src/net/http/server.go", Line: 3400},
		Stats:     api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
	connStack := func(id int64) []api.Frame {
		if id == 1 {
			return []api.Frame{{Function: "net/http.(*conn).serve", File: "/go/src/net/http/server.go", Line: 2100}}
		}
		return nil
	}
	fs := observeFor(t, newEngine(t, Config{}), 12, -1, connStack, conn, stuckTask(7, "chan send", 22))
	if len(fs) != 1 || fs[0].Rule != "leak-suspect" {
		t.Errorf("findings %+v, want the send left behind as a suspect", fs)
	}
	inHandler := func(id int64) []api.Frame {
		return append([]api.Frame{{Function: "example.com/svc.handle", File: "/src/svc/svc.go", Line: 12}}, connStack(1)...)
	}
	if fs := observeFor(t, newEngine(t, Config{}), 12, -1, inHandler, conn, stuckTask(7, "chan send", 22)); len(fs) != 0 {
		t.Errorf("the handler still runs (it will receive): %+v, want nothing", fs)
	}
}
