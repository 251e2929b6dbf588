package inproc

import (
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

func findTasks(snap *api.Snapshot, name string) []api.Task {
	var out []api.Task
	for _, t := range snap.Tasks {
		if t.Name == name {
			out = append(out, t)
		}
	}
	return out
}

// The collector joins the window of its trace slices with a dump: a
// goroutine sleeping 10ms in a loop shows ~100 polls a second, idle in
// "sleep", and a mutex waiter shows as waiting in sync.Mutex.Lock at its
// Lock call, both named by their labels. Nothing was traced before the
// first request: its snapshot covers the window from the request on.
func TestCollectorKnownGoroutines(t *testing.T) {
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var mu sync.Mutex
	mu.Lock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ctx := context.Background()
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("workload", "test", "role", "sleeper"), func(context.Context) { sleepUntil(stop) })
	})
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("task", "locker"), func(context.Context) {
			mu.Lock()
			mu.Unlock()
		})
	})
	defer func() {
		close(stop)
		mu.Unlock()
		wg.Wait()
	}()
	// The locker must be waiting before tracing starts: on a busy machine
	// it may take its first steps late, within the window.
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "[sync.Mutex.Lock"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the locker never waited in sync.Mutex.Lock")
		}
	}
	asked := time.Now()
	snap, err := c.Snapshot(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(snap.Source, "trace-slices") || !strings.Contains(snap.Source, "dump") {
		t.Errorf("first snapshot source %q: want trace slices and a dump", snap.Source)
	}
	if snap.RecordingSince.Before(asked) || snap.RecordingSince.After(asked.Add(time.Second)) {
		t.Errorf("recording since %v; want the request's time, %v", snap.RecordingSince, asked)
	}
	if !snap.Time.After(asked.Add(1800 * time.Millisecond)) {
		t.Errorf("the first snapshot came %v after the request: want the 2s window recorded first", snap.Time.Sub(asked))
	}
	checkKnownGoroutines(t, snap)
	s := findTasks(snap, "test/sleeper")[0]

	task, err := c.Task(ctx, s.ID, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if task.RunTimes() == nil || task.RunTimes().Count == 0 || task.SchedDelay() == nil || len(task.Stack()) == 0 {
		t.Errorf("task detail lacks histograms or stack: %+v", task)
	}
	// The locker waited all the window: no run, but histograms all the same.
	locker, err := c.Task(ctx, findTasks(snap, "locker")[0].ID, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if locker.RunTimes() == nil || locker.RunTimes().Count != 0 || locker.SchedDelay() == nil || len(locker.Stack()) == 0 {
		t.Errorf("the locker's detail: run times %+v, sched delays %+v, %d frames; want empty histograms and a stack", locker.RunTimes(), locker.SchedDelay(), len(locker.Stack()))
	}
	if _, err := c.Task(ctx, 1<<40, 2*time.Second); !errors.Is(err, api.ErrNoTask) {
		t.Errorf("unknown task: %v", err)
	}
}

// A goroutine that computes in a leaf function since before the collector
// started leaves the trace no stack of its own (see leafHog): its name and
// location come from the dump.
func TestCollectorPlacesALeafHogFromTheDump(t *testing.T) {
	defer startLeafHog()()
	time.Sleep(50 * time.Millisecond)
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(1200 * time.Millisecond)
	ctx := context.Background()
	snap, err := c.Snapshot(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var hog *api.Task
	for i := range snap.Tasks {
		task := &snap.Tasks[i]
		if strings.HasPrefix(task.Name, "runtime.asyncPreempt") || strings.HasPrefix(task.Location.Function, "runtime.asyncPreempt") {
			t.Errorf("task %d is named or placed after its preemption: %q at %+v", task.ID, task.Name, task.Location)
		}
		if task.Stats.BusyNS > snap.WindowNS/2 && task.Name == "github.com/inspectd/inspectd/internal/source/inproc.leafHog" {
			hog = task
		}
	}
	if hog == nil {
		t.Fatalf("no task named leafHog busy half the window (source %s)", snap.Source)
	}
	if !strings.HasSuffix(hog.Location.File, "stateprofile_test.go") || hog.Location.Function != "github.com/inspectd/inspectd/internal/source/inproc.leafHog" {
		t.Errorf("hog located at %+v, want leafHog in stateprofile_test.go", hog.Location)
	}
	detail, err := c.Task(ctx, hog.ID, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(detail.Stack(), func(f api.Frame) bool {
		return f.Function == "github.com/inspectd/inspectd/internal/source/inproc.leafHog"
	}) {
		t.Errorf("hog's stack %+v, want leafHog in it", detail.Stack())
	}
}

func taskByID(snap *api.Snapshot, id int64) *api.Task {
	for i := range snap.Tasks {
		if snap.Tasks[i].ID == id {
			return &snap.Tasks[i]
		}
	}
	return nil
}

// sleepUntil sleeps 10 ms at a time until stop is closed.
func sleepUntil(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A burst of goroutines that came and went within the window leaves no
// task, but the snapshot's spawn sites show it: how many were created and
// how many were alive at once.
func TestCollectorSpawnsShowABurstThatEnded(t *testing.T) {
	// The whole budget: slices a second long, whatever this test process
	// costs to trace, with time left to see the whole burst.
	c, err := NewCollector(CollectorOptions{CPUBudget: 1e9, DumpBudget: 1e-9, OverheadBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Snapshot(ctx, 3*time.Second); err != nil { // the recorder starts
		t.Fatal(err)
	}
	// Goroutines that start and end between two slices are not seen: the
	// burst goes where a slice has time left to see all of it.
	midSlice(t, c, 600*time.Millisecond)
	burst(500, 200*time.Millisecond)
	snap, err := c.Snapshot(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(snap.Spawns, func(s api.SpawnSite) bool { return strings.HasSuffix(s.Site.Function, ".burst") })
	if i < 0 {
		t.Fatalf("no spawn site in burst among %+v (window %v, %d tasks, notes %q)", snap.Spawns, time.Duration(snap.WindowNS), len(snap.Tasks), snap.Notes)
	}
	if sp := snap.Spawns[i]; sp.Created != 500 || sp.Peak < 400 || sp.Peak > 500 || sp.Alive != 0 {
		t.Errorf("burst: %+v; want 500 created, 400-500 at once, none alive", sp)
	}
	if slices.ContainsFunc(snap.Tasks, func(t api.Task) bool { return strings.HasSuffix(t.CreatedBy.Function, ".burst") }) {
		t.Error("a goroutine of the burst is still a task")
	}
}

// midSlice waits until c's recorder is in a slice with at least d left.
func midSlice(t *testing.T, c *Collector, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		// c.plan is the slice in flight's until it ends.
		left := time.Until(c.tracing.Add(c.plan.on))
		in := !c.tracing.IsZero()
		c.mu.Unlock()
		if in && left >= d {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the recorder never had a slice with %v left", d)
}

// burst starts n goroutines that each sleep d, and waits for them.
func burst(n int, d time.Duration) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(d)
		}()
	}
	wg.Wait()
}

// Requests for another window than the last snapshot's keep to the CPU
// budget too: they wait for it to allow a build when that is soon, and are
// otherwise served the last snapshot, whose window says what it covers.
func TestCollectorBudgetHoldsForAnotherWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget float64
		built  bool
	}{
		{"far", 1e-6, false}, // no build for hours after the first
		{"soon", 0.9, true},  // a build a little after the last one ends
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCollector(CollectorOptions{CPUBudget: tc.budget, DumpBudget: 1e-9})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			last, err := c.Snapshot(ctx, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// A snapshot that requests will share for long says so.
			if says := slices.ContainsFunc(last.Notes, func(n string) bool { return strings.Contains(n, "the next comes in") }); says == tc.built {
				t.Errorf("budget %v: notes %q; want a note on when the next snapshot comes: %v", tc.budget, last.Notes, !tc.built)
			}
			for _, w := range []time.Duration{2 * time.Second, 3 * time.Second} {
				snap, err := c.Snapshot(ctx, w)
				if err != nil {
					t.Fatal(err)
				}
				if built := snap != last; built != tc.built {
					t.Fatalf("window %v, budget %v: built anew %v, want %v", w, tc.budget, built, tc.built)
				}
				last = snap
			}
		})
	}
}

// checkKnownGoroutines checks TestCollectorKnownGoroutines' snapshot.
func checkKnownGoroutines(t *testing.T, snap *api.Snapshot) {
	t.Helper()
	// Slices start and end where they do: about the window asked.
	if w := time.Duration(snap.WindowNS); w < 1400*time.Millisecond || w > 2600*time.Millisecond {
		t.Errorf("window %v, want about 2s", w)
	}
	sleepers := findTasks(snap, "test/sleeper")
	if len(sleepers) != 1 {
		t.Fatalf("%d tasks named test/sleeper", len(sleepers))
	}
	s := sleepers[0]
	perSec := float64(s.Stats.Polls) / (float64(s.Stats.TotalNS) / 1e9)
	if perSec < 50 || perSec > 110 {
		t.Errorf("sleeper: %.0f polls per second (%d in %v), want about 100", perSec, s.Stats.Polls, time.Duration(s.Stats.TotalNS))
	}
	if s.Stats.IdleByReason["sleep"] < s.Stats.TotalNS*8/10 {
		t.Errorf("sleeper: idle by sleep %v of %v", time.Duration(s.Stats.IdleByReason["sleep"]), time.Duration(s.Stats.TotalNS))
	}
	lockers := findTasks(snap, "locker")
	if len(lockers) != 1 {
		t.Fatalf("%d tasks named locker", len(lockers))
	}
	l := lockers[0]
	if l.State != "waiting" || l.WaitReason != "sync.Mutex.Lock" || !strings.HasSuffix(l.Location.File, "collector_test.go") ||
		l.LabelsStale || l.CreatedBy.Function == "" || l.ParentID == 0 {
		t.Errorf("locker: %+v", l)
	}

}

// Dumps stop the world, so they are taken only within their budget; between
// dumps a new goroutine that the goroutine profile cannot name carries its
// creator's labels, marked stale.
func TestCollectorDumpBudget(t *testing.T) {
	c, err := NewCollector(CollectorOptions{DumpBudget: 1e-9, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	started, spawn, childMade := make(chan struct{}), make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("workload", "parent", "role", "spawner"), func(context.Context) {
			close(started)
			<-spawn
			// Two children that wait at the same line with different labels:
			// the profile cannot tell them apart by stack.
			for _, role := range []string{"child-a", "child-b"} {
				wg.Go(func() {
					pprof.Do(ctx, pprof.Labels("role", role), func(context.Context) { <-stop })
				})
			}
			close(childMade)
			<-stop
		})
	})
	<-started
	c.Dump() // asked for, whatever the budget
	if snap, err := c.Snapshot(ctx, time.Second); err != nil || strings.Contains(snap.Source, "dump") {
		t.Fatalf("snapshot right after a dump: %v, source %q", err, snap.Source)
	}
	// A child created after the dump by a goroutine whose labels the dump
	// saw. Its creation must fall in a traced slice, not between two (the
	// recorder traces a part of each interval on a busy machine): spawned
	// while a slice is being traced.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		tracing := !c.tracing.IsZero()
		c.mu.Unlock()
		if tracing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recorder traced no slice within 30s")
		}
	}
	close(spawn)
	<-childMade
	var snap *api.Snapshot
	stale := 0
	// Until a window holds the creation: the first may be a shared one
	// built before it.
	for deadline := time.Now().Add(30 * time.Second); stale < 2 && time.Now().Before(deadline); {
		if snap, err = c.Snapshot(ctx, 900*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		stale = 0
		for _, tk := range snap.Tasks {
			if tk.LabelsStale && tk.Labels["workload"] == "parent" {
				stale++
			}
		}
	}
	if strings.Contains(snap.Source, "dump") {
		t.Errorf("a snapshot took a dump within a budget of 1e-9: source %q", snap.Source)
	}
	if len(snap.Notes) == 0 || !strings.Contains(strings.Join(snap.Notes, " "), "goroutine dump") {
		t.Errorf("notes do not say the labels come from an older dump: %v", snap.Notes)
	}
	if stale != 2 {
		t.Errorf("%d tasks created after the dump carry their creator's labels marked stale, want 2", stale)
	}
}

// Between dumps, labels come from the goroutine profile, joined by stack:
// goroutines that existed before the collector and were never dumped are
// still named by their labels.
func TestCollectorProfileLabels(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	ctx := context.Background()
	for range 5 {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("workload", "old", "role", "parked"), func(context.Context) { <-stop })
		})
	}
	c, err := NewCollector(CollectorOptions{DumpBudget: 1e-9, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(1500 * time.Millisecond) // a generation boundary records every goroutine's stack
	snap, err := c.Snapshot(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(snap.Source, "dump") || !strings.Contains(snap.Source, "profile") {
		t.Errorf("source %q: want the profile and no dump", snap.Source)
	}
	if n := len(findTasks(snap, "old/parked")); n != 5 {
		t.Errorf("%d of 5 never-dumped goroutines named old/parked from the profile's labels", n)
	}
}

// In a program whose goroutines keep both cores busy switching on
// channels, the recorder still gets its slices through, each kept small:
// snapshots keep coming, each newer than the last, and show the pairs.
func TestCollectorKeepsUpWithABusyProgram(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		a, b := make(chan int), make(chan int)
		wg.Go(func() {
			for {
				select {
				case v := <-a:
					b <- v
				case <-stop:
					return
				}
			}
		})
		wg.Go(func() { pingPong(stop, a, b) })
	}
	defer func() { close(stop); wg.Wait() }()
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var last time.Time
	for i := range 3 {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			snap, err := c.Snapshot(ctx, 2*time.Second)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			if err == nil && snap.Time.After(last) {
				if !slices.ContainsFunc(snap.Tasks, func(t api.Task) bool { return strings.HasSuffix(t.Location.Function, ".pingPong") }) {
					t.Errorf("snapshot %d: no ping-pong goroutine among %d tasks", i, len(snap.Tasks))
				}
				last = snap.Time
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("snapshot %d: none newer than %v in 2 minutes (last error: %v)", i, last, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.mu.Lock()
	cost, s := c.cost, c.slices[len(c.slices)-1]
	c.mu.Unlock()
	// A slice ends once it holds maxSliceBytes; what the runtime writes
	// while it stops (seconds of it, on a loaded machine) is kept to the
	// end of its generation, and analysed up to maxSliceEvents.
	if s.Events > maxSliceEvents {
		t.Errorf("the last slice analysed %d events (of %d bytes of trace written), want at most %d", s.Events, cost.bytes, maxSliceEvents)
	}
	t.Logf("the last slice: %d bytes of trace written, %d events analysed, %s traced", cost.bytes, s.Events, time.Duration(s.Duration()))
}

// pingPong sends on a and waits for the answer on b until stop closes.
//
//go:noinline
func pingPong(stop <-chan struct{}, a chan<- int, b <-chan int) {
	for {
		select {
		case a <- 1:
			<-b
		case <-stop:
			return
		}
	}
}

// newParked parks a goroutine labelled workload/role until stop closes: a
// stack of its own, which TestCollectorProfileLabels' goroutines do not
// share.
func newParked(ctx context.Context, workload string, stop <-chan struct{}) {
	pprof.Do(ctx, pprof.Labels("workload", workload, "role", "parked"), func(context.Context) { <-stop })
}

// The goroutine profile is read again for goroutines created after the
// last read: they get their labels, though the profile is read only when
// goroutines came since. (They are started with wg.Go: a go statement of
// this package starts the collector's own goroutines, which do not count.)
func TestCollectorProfileNamesNewGoroutines(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	ctx := context.Background()
	for range 3 {
		wg.Go(func() { newParked(ctx, "old", stop) })
	}
	c, err := NewCollector(CollectorOptions{DumpBudget: 1e-9, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.profEvery = 50 * time.Millisecond
	time.Sleep(1500 * time.Millisecond)
	snap, err := c.Snapshot(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(findTasks(snap, "old/parked")); n != 3 {
		t.Fatalf("%d of 3 goroutines named old/parked from the first profile", n)
	}
	for range 4 {
		wg.Go(func() { newParked(ctx, "new", stop) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		snap, err := c.Snapshot(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(findTasks(snap, "new/parked")) == 4 && len(findTasks(snap, "old/parked")) == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines created after the first profile read are not named by a later one: %d new/parked, %d old/parked (source %s)",
				len(findTasks(snap, "new/parked")), len(findTasks(snap, "old/parked")), snap.Source)
		}
	}
}

// A goroutine is new to the profile when the window's tasks have it and
// the profile's goroutines do not, unless the collector started it.
func TestNewGoroutines(t *testing.T) {
	task := func(id int64, createdBy string) api.Task {
		return api.Task{ID: id, CreatedBy: api.Frame{Function: createdBy}, Location: api.Frame{Function: "main.wait"}}
	}
	own := ownPackage + "(*stopper).stop.func1"
	for _, tc := range []struct {
		name  string
		known []int64
		tasks []api.Task
		want  bool
	}{
		{"the same", []int64{1, 5, 9}, []api.Task{task(1, "main.main"), task(5, "main.main"), task(9, "main.main")}, false},
		{"some gone", []int64{1, 5, 9}, []api.Task{task(5, "main.main")}, false},
		{"one new in between", []int64{1, 9}, []api.Task{task(1, "main.main"), task(5, "main.main"), task(9, "main.main")}, true},
		{"one new after", []int64{1, 5}, []api.Task{task(1, "main.main"), task(5, "main.main"), task(9, "main.main")}, true},
		{"one new before", []int64{5, 9}, []api.Task{task(1, "main.main"), task(5, "main.main")}, true},
		{"the collector's own", []int64{1, 9}, []api.Task{task(1, "main.main"), task(5, own), task(9, "main.main")}, false},
		{"the runtime's", []int64{1}, []api.Task{task(1, "main.main"), task(5, "runtime.traceStartReadCPU")}, false},
		{"by a WaitGroup", []int64{1}, []api.Task{task(1, "main.main"), task(5, "sync.(*WaitGroup).Go")}, true},
		{"none known", []int64{}, []api.Task{task(1, "main.main")}, true},
	} {
		c := &Collector{profIDs: tc.known}
		if got := c.newGoroutines(tc.tasks); got != tc.want {
			t.Errorf("%s: newGoroutines = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !strings.HasSuffix(ownPackage, "/internal/source/inproc.") {
		t.Errorf("ownPackage %q: want this package's path and a dot", ownPackage)
	}
}
