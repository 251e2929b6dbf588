package diagnose

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// BenchmarkObserveParked observes snapshots of 100,000 goroutines parked at
// ten sites, as the agent's engine does in a large target, and reports the
// heap the engine keeps between snapshots per goroutine (retained-B/g): what
// its history adds to the target's memory in steady state.
func BenchmarkObserveParked(b *testing.B) {
	const n = 100_000
	tasks := make([]api.Task, n)
	var sites []api.Site
	for i := range tasks {
		loc := api.Frame{Function: "example.com/svc.wait", File: "/src/svc/wait.go", Line: 10 + i%10}
		// Each task its own strings, as a parsed snapshot has them.
		loc.File = fmt.Sprint("/src/svc/", "wait.go")
		tasks[i] = api.Task{ID: int64(i + 1), Name: "svc/worker", State: "waiting", WaitReason: fmt.Sprint("chan ", "receive"),
			Location: loc, CreatedBy: api.Frame{Function: "example.com/svc.start", File: "/src/svc/start.go", Line: 5},
			Stats: api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
		if i < 10 {
			sites = append(sites, api.Site{Reason: "chan receive", Location: loc, Waiting: n / 10})
		}
	}
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	observe := func(i int) {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), WindowNS: window, Tasks: tasks, Sites: sites,
			Process: api.Process{GOMAXPROCS: 2, Goroutines: n, Leaked: -1}}
		e.Observe(Input{Snapshot: s})
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	observe(0)
	b.ResetTimer()
	for i := range b.N {
		observe(i + 1)
	}
	b.StopTimer()
	after := heap()
	runtime.KeepAlive(e)
	runtime.KeepAlive(tasks)
	b.ReportMetric(float64(int64(after)-int64(before))/n, "retained-B/g")
}
