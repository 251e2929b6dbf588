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
	benchObserve(b, tasks, sites, nil)
}

// benchObserve observes snapshots of tasks and sites, their stacks from
// stack (nil: none), and reports beside what an observation allocates the
// heap the engine keeps between them, per task (retained-B/g).
func benchObserve(b *testing.B, tasks []api.Task, sites []api.Site, stack func(int64) []api.Frame) {
	n := len(tasks)
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	observe := func(i int) {
		s := &api.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), WindowNS: window, Tasks: tasks, Sites: sites,
			Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(n), Leaked: -1}}
		e.Observe(Input{Snapshot: s, Stack: stack})
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	observe(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		observe(i + 1)
	}
	b.StopTimer()
	after := heap()
	runtime.KeepAlive(e)
	runtime.KeepAlive(tasks)
	b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "retained-B/g")
}

// BenchmarkObserveParkedUnknown is BenchmarkObserveParked as the agent sees
// goroutines parked before it traced: no creator (the trace began after
// them), their stacks from the source, half of them labelled (one label
// set per half of those, shared as the source shares them). It reports
// what an observation allocates (B/op: the burst the garbage collector
// must make room for) beside what the engine keeps.
func BenchmarkObserveParkedUnknown(b *testing.B) {
	const n = 100_000
	tasks := make([]api.Task, n)
	labels := []map[string]string{{"workload": "parked", "role": "a"}, {"workload": "parked", "role": "b"}}
	loc := api.Frame{Function: "example.com/svc.wait", File: "/src/svc/wait.go", Line: 10}
	stack := []api.Frame{{Function: "runtime.gopark"}, {Function: "runtime.chanrecv1"}, loc}
	for i := range tasks {
		tasks[i] = api.Task{ID: int64(i + 1), Name: "example.com/svc.wait", State: "waiting", WaitReason: "chan receive",
			Location: loc, Stats: api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: window}}
		if i%2 == 0 {
			tasks[i].Labels = labels[i%4/2]
			tasks[i].Name = "parked/" + tasks[i].Labels["role"]
		}
	}
	sites := []api.Site{{Reason: "chan receive", Location: loc, Waiting: n}}
	benchObserve(b, tasks, sites, func(int64) []api.Frame { return stack })
}
