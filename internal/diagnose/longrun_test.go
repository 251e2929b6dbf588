package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// A serving goroutine whose long computation fills whole windows (a loaded
// machine stretches it) wakes nobody in them: the requests it answered
// before, within the history, are still its waiters, and long-run names it.
func TestLongRunThatFillsTheWindow(t *testing.T) {
	serve := api.Frame{Function: "example.com/svc.serve", File: "/src/svc/serve.go", Line: 20}
	burn := api.Frame{Function: "example.com/svc.burn", File: "/src/svc/serve.go", Line: 40}
	ask := api.Frame{Function: "example.com/svc.ask", File: "/src/svc/ask.go", Line: 9}
	server := func(computing bool) api.Task {
		tk := api.Task{ID: 5, Name: "svc/server", State: "waiting", WaitReason: "select", Location: serve,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window / 10, IdleNS: window * 9 / 10, Polls: 200, LongestStretchNS: int64(time.Millisecond)}}
		if computing {
			tk.State, tk.WaitReason, tk.Location = "running", "", burn
			tk.Stats = api.TaskStats{TotalNS: window, BusyNS: window / 2, SchedNS: window / 2, Polls: 40, LongestStretchNS: window / 2}
		}
		return tk
	}
	asker := api.Task{ID: 6, Name: "svc/asker", State: "waiting", WaitReason: "chan send", Location: ask,
		Stats: api.TaskStats{TotalNS: window, IdleNS: window}}
	site := func(computing bool) api.Site {
		s := api.Site{Reason: "chan send", Location: ask, Waiting: 1, WaitNS: window / 50, Wakeups: 200, Tasks: []int64{6},
			Wakers: []api.WakerSite{{Location: serve, Count: 200}}}
		if computing {
			s.WaitNS, s.Wakeups, s.Wakers = window, 0, nil
		}
		return s
	}
	stretch := func(int64) []api.Frame { return []api.Frame{burn, serve} }
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i, computing := range []bool{false, true, true, true} {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * 5 * time.Second), WindowNS: window, Tasks: []api.Task{server(computing), asker},
			Sites: []api.Site{site(computing)}, Process: api.Process{GOMAXPROCS: 2, Goroutines: 2, Leaked: -1}}
		fs = e.Observe(Input{Snapshot: s, Stack: func(int64) []api.Frame { return []api.Frame{serve} }, StretchStack: stretch})
	}
	if len(fs) != 1 || fs[0].Rule != "long-run" || !strings.Contains(fs[0].Message, "ask.go:9") {
		t.Fatalf("findings %+v, want long-run with the requests it left waiting", fs)
	}
}
