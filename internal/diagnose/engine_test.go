package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const window = int64(5 * time.Second)

// lockWaiter is a goroutine blocked in Lock at deadlock.go:78 for inState.
func lockWaiter(id int64, inState time.Duration) api.Task {
	return api.Task{ID: id, Name: "deadlock/transfer", State: "waiting", WaitReason: "sync.Mutex.Lock",
		Location:  api.Frame{Function: "example.com/bank.transfer", File: "/src/bank/deadlock.go", Line: 78},
		CreatedBy: api.Frame{Function: "example.com/bank.start", File: "/src/bank/deadlock.go", Line: 66},
		Stats:     api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: int64(inState)}}
}

func snap(at time.Duration, tasks ...api.Task) *api.Snapshot {
	return &api.Snapshot{Time: t0.Add(at), WindowNS: window, Tasks: tasks,
		Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: -1},
		Sites:   []api.Site{{Reason: "sync.Mutex.Lock", Location: api.Frame{Function: "example.com/bank.transfer", File: "/src/bank/deadlock.go", Line: 78}, Waiting: len(tasks)}}}
}

func newEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Two goroutines stuck in Lock with no wake-up: nothing before stuck_for,
// a critical deadlock after, with the site and the tasks; the tasks carry
// the rule as a warning; the finding keeps its first-seen time, and clears
// once the goroutines are gone for longer than Linger.
func TestDeadlockLifecycle(t *testing.T) {
	e := newEngine(t, Config{})
	if fs := e.Observe(Input{Snapshot: snap(0, lockWaiter(10, time.Second), lockWaiter(11, time.Second))}); len(fs) != 0 {
		t.Fatalf("after 1s: %+v, want nothing yet", fs)
	}
	s := snap(3*time.Second, lockWaiter(10, 4*time.Second), lockWaiter(11, 4*time.Second))
	fs := e.Observe(Input{Snapshot: s})
	if len(fs) != 1 || fs[0].Rule != "deadlock" || fs[0].Severity != Critical {
		t.Fatalf("after 4s stuck: %+v, want one critical deadlock", fs)
	}
	f := fs[0]
	if !strings.Contains(f.Title, "deadlock.go:78") || len(f.Evidence.Tasks) != 2 || f.Advice == "" || f.Lesson == "" {
		t.Errorf("finding %+v: want the site, both tasks, advice and lesson", f)
	}
	if len(f.Evidence.Missing) == 0 {
		t.Errorf("no leak profile: the finding should say it is inferred")
	}
	if len(s.Findings) != 1 || len(s.Tasks[0].Warnings()) != 1 || s.Tasks[0].Warnings()[0] != "deadlock" {
		t.Errorf("snapshot not annotated: findings %d, task warnings %v", len(s.Findings), s.Tasks[0].Warnings())
	}
	fs = e.Observe(Input{Snapshot: snap(5*time.Second, lockWaiter(10, 5*time.Second), lockWaiter(11, 5*time.Second))})
	if len(fs) != 1 || !fs[0].FirstSeen.Equal(f.FirstSeen) || !fs[0].LastSeen.After(f.LastSeen) {
		t.Fatalf("seen again: %+v, want the same first-seen and a later last-seen", fs)
	}
	// The goroutines are gone: the finding lingers, then clears.
	if fs := e.Observe(Input{Snapshot: snap(7 * time.Second)}); len(fs) != 1 {
		t.Errorf("2s after the evidence went: %d findings, want it to linger", len(fs))
	}
	if fs := e.Observe(Input{Snapshot: snap(11 * time.Second)}); len(fs) != 0 {
		t.Errorf("6s after the evidence went: %+v, want it cleared", fs)
	}
	// A snapshot not newer than the last changes nothing.
	if fs := e.Observe(Input{Snapshot: snap(11*time.Second, lockWaiter(10, time.Hour), lockWaiter(11, time.Hour))}); len(fs) != 0 {
		t.Errorf("an old snapshot was diagnosed: %+v", fs)
	}
}

// A lock that wakes its waiters is not a deadlock, however long they wait.
func TestDeadlockNeedsNoWakeups(t *testing.T) {
	e := newEngine(t, Config{})
	for i := range 5 {
		s := snap(time.Duration(i)*time.Second, lockWaiter(10, 5*time.Second), lockWaiter(11, 5*time.Second))
		s.Sites[0].Wakeups = 40
		if fs := e.Observe(Input{Snapshot: s}); len(fs) != 0 {
			t.Fatalf("%+v", fs)
		}
	}
}

func TestAllowDenyAndThresholds(t *testing.T) {
	stuck := func(e *Engine) []api.Finding {
		e.Observe(Input{Snapshot: snap(0, lockWaiter(10, 5*time.Second), lockWaiter(11, 5*time.Second))})
		return e.Observe(Input{Snapshot: snap(time.Second, lockWaiter(10, 5*time.Second), lockWaiter(11, 5*time.Second))})
	}
	if fs := stuck(newEngine(t, Config{Deny: []string{"deadlock"}})); len(fs) != 0 {
		t.Errorf("denied rule fired: %+v", fs)
	}
	if fs := stuck(newEngine(t, Config{Allow: []string{"busy-poll"}})); len(fs) != 0 {
		t.Errorf("rule outside the allow list fired: %+v", fs)
	}
	if fs := stuck(newEngine(t, Config{Thresholds: map[string]string{"deadlock.stuck_for": "1m"}})); len(fs) != 0 {
		t.Errorf("stuck_for=1m fired after 6s: %+v", fs)
	}
	if fs := stuck(newEngine(t, Config{Thresholds: map[string]string{"deadlock.min_goroutines": "3"}})); len(fs) != 0 {
		t.Errorf("min_goroutines=3 fired with 2: %+v", fs)
	}
	if fs := stuck(newEngine(t, Config{})); len(fs) != 1 {
		t.Errorf("defaults: %d findings, want 1", len(fs))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Allow: []string{"nope"}}, `no rule "nope"`},
		{Config{Deny: []string{"leak"}}, `no rule "leak"`},
		{Config{Thresholds: map[string]string{"deadlock": "3"}}, "want rule.name"},
		{Config{Thresholds: map[string]string{"deadlock.nope": "3"}}, `has no threshold "nope" (it has: stuck_for, min_goroutines)`},
		{Config{Thresholds: map[string]string{"deadlock.stuck_for": "soon"}}, "positive duration"},
		{Config{Thresholds: map[string]string{"busy-poll.max_idle": "2"}}, "share from 0 to 1"},
		{Config{Thresholds: map[string]string{"goroutine-leak.min_goroutines": "-1"}}, "number >= 0"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	var c Config
	if err := c.SetThreshold("deadlock"); err == nil {
		t.Error("SetThreshold without = accepted")
	}
}

// Every rule is documented, with thresholds that have help and defaults.
func TestDocs(t *testing.T) {
	docs := Docs()
	if len(docs) != 15 {
		t.Fatalf("%d rules, want 15", len(docs))
	}
	for _, d := range docs {
		if d.Help == "" || d.Lesson == "" || len(d.Thresholds) == 0 {
			t.Errorf("rule %s: missing help, lesson or thresholds", d.ID)
		}
		for _, th := range d.Thresholds {
			if th.Help == "" || th.Default <= 0 {
				t.Errorf("rule %s threshold %s: help %q default %v", d.ID, th.Name, th.Help, th.Default)
			}
		}
	}
}

// sender is a goroutine blocked in chan send at leak.go:71 for inState.
func sender(id int64, inState time.Duration) api.Task {
	return api.Task{ID: id, Name: "svc/worker", State: "waiting", WaitReason: "chan send",
		Location: api.Frame{Function: "example.com/svc.fetch.func1", File: "/src/svc/leak.go", Line: 71},
		Stats:    api.TaskStats{TotalNS: window, IdleNS: window, InStateNS: int64(inState)}}
}

func sendSnap(at time.Duration, tasks []api.Task) *api.Snapshot {
	return &api.Snapshot{Time: t0.Add(at), WindowNS: window, Tasks: tasks, Process: api.Process{GOMAXPROCS: 2, Leaked: -1},
		Sites: []api.Site{{Reason: "chan send", Location: tasks[0].Location, Waiting: len(tasks)}}}
}

// Without the leak profile, goroutines stuck at one channel send in growing
// numbers are a leak, and stay one once they stop growing; as many stuck
// there that never grew (an idle pool) are not.
func TestLeakFallback(t *testing.T) {
	e := newEngine(t, Config{})
	var fs []api.Finding
	for i := range 6 {
		var tasks []api.Task
		for id := range 4 + 3*i { // three more every second
			tasks = append(tasks, sender(int64(100+id), time.Duration(i+5-id/3)*time.Second))
		}
		fs = e.Observe(Input{Snapshot: sendSnap(time.Duration(i)*time.Second, tasks)})
	}
	if len(fs) != 1 || fs[0].Rule != "goroutine-leak" || fs[0].Severity != Warning || !strings.Contains(fs[0].Title, "leak.go:71") ||
		len(fs[0].Evidence.Missing) == 0 || fs[0].Evidence.Figures["growth"] < 3 {
		t.Fatalf("growing senders: %+v", fs)
	}
	// The pile stops growing (the bug fixed): what is stuck stays a leak.
	for i := 6; i < 20; i++ {
		var tasks []api.Task
		for id := range 4 + 3*5 {
			tasks = append(tasks, sender(int64(100+id), time.Duration(i+5-id/3)*time.Second))
		}
		fs = e.Observe(Input{Snapshot: sendSnap(time.Duration(i)*time.Second, tasks)})
	}
	if len(fs) != 1 || fs[0].Rule != "goroutine-leak" || !strings.Contains(fs[0].Title, "no longer growing") {
		t.Fatalf("senders stuck after the growth stopped: %+v", fs)
	}

	e = newEngine(t, Config{})
	for i := range 6 {
		var tasks []api.Task
		for id := range 10 {
			tasks = append(tasks, sender(int64(100+id), time.Hour))
		}
		if fs := e.Observe(Input{Snapshot: sendSnap(time.Duration(i)*time.Second, tasks)}); len(fs) != 0 {
			t.Fatalf("a steady pool: %+v", fs)
		}
	}

	// Servers started together, each leaving a goroutine waiting for its
	// shutdown: six at once, then no more.
	e = newEngine(t, Config{})
	other := api.Task{ID: 1, Name: "svc/main", State: "running", Stats: api.TaskStats{TotalNS: window}}
	for i := range 20 {
		tasks := []api.Task{other}
		if i >= 3 {
			for id := range 6 {
				tasks = append(tasks, sender(int64(100+id), time.Duration(i-3)*time.Second))
			}
		}
		s := sendSnap(time.Duration(i)*time.Second, tasks)
		s.Sites[0].Location = tasks[len(tasks)-1].Location
		if fs := e.Observe(Input{Snapshot: s}); len(fs) != 0 {
			t.Fatalf("%ds: six goroutines that came at once: %+v", i, fs)
		}
	}
}

// A lock whose waiters wait long is held across a blocking call only when
// the goroutine that unlocks it blocks inside the critical section: one
// that sleeps after its Unlock (contending workers pausing between two
// critical sections, long on a loaded machine) is not the holder. The
// finding names the holder's call inside the section, even when it was
// caught waiting for something other than what it mostly waits for (a
// handler in the select of its client call, mostly waiting on the network).
func TestLockHeldNeedsTheHolderInside(t *testing.T) {
	const fn, file = "example.com/app.worker", "/src/app/work.go"
	lockAt := api.Frame{Function: fn, File: file, Line: 10}
	unlockAt := api.Frame{Function: fn, File: file, Line: 12}
	for _, tc := range []struct {
		line   int    // where the sleeper is blocked in fn
		reason string // what it waits for there; it mostly sleeps
		want   bool
	}{
		{11, "sleep", true},  // between Lock and Unlock
		{11, "select", true}, // there, but not at its usual wait
		{14, "sleep", false}, // after the Unlock
		{8, "sleep", false},  // before the Lock
	} {
		var tasks []api.Task
		for id := range int64(4) {
			tasks = append(tasks, api.Task{ID: 10 + id, Name: "app/worker", State: "waiting", WaitReason: "sync.Mutex.Lock",
				Location: lockAt, Stats: api.TaskStats{TotalNS: window, IdleNS: window, IdleByReason: map[string]int64{"sync.Mutex.Lock": window}}})
		}
		sleeper := api.Task{ID: 20, Name: "app/worker", State: "waiting", WaitReason: tc.reason,
			Location: api.Frame{Function: fn, File: file, Line: tc.line},
			Stats:    api.TaskStats{TotalNS: window, IdleNS: window * 7 / 10, IdleByReason: map[string]int64{"sleep": window * 7 / 10}}}
		tasks = append(tasks, sleeper)
		s := &api.Snapshot{Time: t0, WindowNS: window, Tasks: tasks,
			Process: api.Process{GOMAXPROCS: 2, Goroutines: int64(len(tasks)), Leaked: -1},
			Sites: []api.Site{{Reason: "sync.Mutex.Lock", Location: lockAt, Waiting: 4, WaitNS: 4 * window, Wakeups: 100,
				Wakers: []api.WakerSite{{Location: unlockAt, Count: 100}}}}}
		stack := func(id int64) []api.Frame {
			if id == sleeper.ID {
				return []api.Frame{{Function: "time.Sleep"}, sleeper.Location}
			}
			return []api.Frame{{Function: "sync.(*Mutex).Lock"}, lockAt}
		}
		got := false
		for _, f := range newEngine(t, Config{}).Observe(Input{Snapshot: s, Stack: stack}) {
			if f.Rule != "lock-held-blocking" {
				continue
			}
			got = true
			if !strings.HasSuffix(f.Title, "work.go:11") {
				t.Errorf("the holder in %s at line 11: %q, want the call at work.go:11 named", tc.reason, f.Title)
			}
		}
		if got != tc.want {
			t.Errorf("the unlocking goroutine in %s at line %d (Lock at 10, Unlock at 12): lock-held-blocking %v, want %v", tc.reason, tc.line, got, tc.want)
		}
	}
}

// A burst of goroutines that came and went within the window (a storm
// between two snapshots) is an explosion by the window's spawn sites,
// with no task left; a site whose goroutines come and go a few at a time
// is not, however many it creates.
func TestExplosionSeenAfterTheBurst(t *testing.T) {
	site := api.Frame{Function: "example.com/fib.(*storm).fib", File: "/src/fib/storm.go", Line: 71}
	server := api.Frame{Function: "net/http.(*Server).Serve", File: "/go/src/net/http/server.go", Line: 3454}
	e := newEngine(t, Config{})
	s := snap(0)
	// The server creates and ends 600 a second and keeps 1,200 alive.
	s.Spawns = []api.SpawnSite{{Site: site, Created: 90000, Peak: 85000}, {Site: server, Created: 3000, Start: 1200, Peak: 1230, Alive: 1200}}
	fs := e.Observe(Input{Snapshot: s})
	if len(fs) != 1 || fs[0].Rule != "goroutine-explosion" || fs[0].Severity != Critical {
		t.Fatalf("findings %+v, want one critical explosion", fs)
	}
	f := fs[0]
	if !strings.Contains(f.Title, "up to 85000 goroutines from") || !strings.Contains(f.Title, "storm.go:71") ||
		!strings.Contains(f.Message, "(0 now)") || !strings.Contains(f.Message, "17000 per second") {
		t.Errorf("finding %q: %q; want the peak, the site, none left, the rate", f.Title, f.Message)
	}
	// Between two bursts of a storm that recurs, it stays; long after the
	// last, it clears.
	for _, at := range []time.Duration{10 * time.Second, 20 * time.Second} {
		if fs := e.Observe(Input{Snapshot: snap(at)}); len(fs) != 1 {
			t.Errorf("%v after the burst: %d findings, want the explosion still", at, len(fs))
		}
	}
	for _, at := range []time.Duration{32 * time.Second, 40 * time.Second} {
		fs = e.Observe(Input{Snapshot: snap(at)})
	}
	if len(fs) != 0 {
		t.Errorf("40s after the burst: %+v, want it cleared", fs)
	}
}

// heapAt is a heap profile with inuse bytes at each site, by function.
func heapAt(sites map[string]int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}}}
	id := uint64(0)
	for fn, bytes := range sites {
		id++
		f := &profile.Function{ID: id, Name: fn, Filename: "/src/app/queue.go"}
		loc := &profile.Location{ID: id, Line: []profile.Line{{Function: f, Line: 42}}}
		p.Function, p.Location = append(p.Function, f), append(p.Location, loc)
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1, bytes}})
	}
	return p
}

// A large heap that grows slowly: the heap in use saws between the live
// heap and twice it, so its lows never pass its old highs within a minute,
// and the heap profile changes only at a GC (every 8s here), so growth
// since the read just before is mostly nothing. The live heap and the
// profile's growth since the growth began show it; after a drop (the
// buffer freed), the growth that follows is judged from the drop.
func TestGrowthOfALargeHeap(t *testing.T) {
	const mb = 1 << 20
	e := newEngine(t, Config{})
	// A snapshot every 2s from sec to until, the live heap live(t) as of
	// the last GC (every 8s from sec), the heap in use sawing above it, and
	// the queue's bytes in the heap profile the live heap less rest.
	grow := func(sec, until int, live func(int) uint64, rest int64) (fs []api.Finding) {
		for lastGC := sec; sec <= until; sec += 2 {
			if sec-lastGC >= 8 {
				lastGC = sec
			}
			s := snap(time.Duration(sec) * time.Second)
			s.Process.HeapLiveBytes = live(lastGC)
			s.Process.HeapBytes = live(lastGC) * uint64(100+(sec-lastGC)*12) / 100
			prof := heapAt(map[string]int64{"example.com/app.(*queue).push": int64(live(lastGC)) - rest, "example.com/app.other": 20 * mb})
			fs = e.Observe(Input{Snapshot: s, Profile: func(string) (*profile.Profile, error) { return prof, nil }})
		}
		return fs
	}
	fs := grow(0, 40, func(sec int) uint64 { return uint64(300*mb + sec*7*mb/2) }, 280*mb)
	if len(fs) != 1 || fs[0].Rule != "unbounded-growth" || !strings.Contains(fs[0].Title, "queue.go:42") {
		t.Fatalf("after 40s of growth: %+v, want unbounded growth at queue.go:42", fs)
	}
	// A second queue grows beside it as fast: a finding of its own.
	e2 := newEngine(t, Config{})
	for sec := 0; sec <= 40; sec += 2 {
		s := snap(time.Duration(sec) * time.Second)
		s.Process.HeapLiveBytes = uint64(100*mb + sec*8*mb)
		s.Process.HeapBytes = s.Process.HeapLiveBytes
		prof := heapAt(map[string]int64{"example.com/app.(*queue).push": int64(sec * 4 * mb), "example.com/app.(*log).append": int64(sec * 4 * mb),
			"example.com/app.other": 20 * mb})
		fs = e2.Observe(Input{Snapshot: s, Profile: func(string) (*profile.Profile, error) { return prof, nil }})
	}
	var titles []string
	for _, f := range fs {
		titles = append(titles, f.Title)
	}
	if len(fs) != 2 || !strings.Contains(strings.Join(titles, "|"), "push queue.go:42") || !strings.Contains(strings.Join(titles, "|"), "append queue.go:42") {
		t.Fatalf("two queues growing: %q, want a finding at each", titles)
	}
	// The queue is freed and grows again from 50 MiB: judged from the drop.
	fs = grow(42, 72, func(sec int) uint64 { return uint64(50*mb + (sec-42)*7*mb/2) }, 30*mb)
	if len(fs) != 1 || fs[0].Evidence.Figures["growth_bytes"] > 120*mb || fs[0].Evidence.Figures["growth_bytes"] < 40*mb {
		t.Fatalf("30s into the growth after the drop: %+v, want it found, growth counted from the drop", fs)
	}
}

// Three CPU-bound goroutines on two Ps: the finding places them where they
// computed (their longest stretch's stack), not where the snapshot caught
// them resting, and gives the scheduling latency tail of the last minute.
func TestStarvationPlacesTheHogsWhereTheyCompute(t *testing.T) {
	burn := api.Frame{Function: "example.com/app.burnCPU", File: "/src/app/hog.go", Line: 33}
	rest := api.Frame{Function: "example.com/app.pauseFor", File: "/src/app/pause.go", Line: 18}
	hog := func(id int64) api.Task {
		return api.Task{ID: id, Name: "hog", State: "waiting", WaitReason: "sleep", Location: rest,
			Stats: api.TaskStats{TotalNS: window, BusyNS: window * 6 / 10, SchedNS: window * 3 / 10, IdleNS: window / 10, Polls: 500}}
	}
	lat := func(slow int64) *api.Histogram {
		b := make([]int64, 40)
		b[12], b[24] = 1000, slow // ~4us, and ~16ms
		return &api.Histogram{Count: 1000 + slow, P99NS: 8192, Buckets: b}
	}
	in := func(at time.Duration, slow int64) Input {
		s := snap(at, hog(1), hog(2), hog(3))
		s.Process.SchedLatency = lat(slow)
		return Input{Snapshot: s, Stack: func(int64) []api.Frame { return []api.Frame{rest} },
			StretchStack: func(int64) []api.Frame { return []api.Frame{burn} }}
	}
	e := newEngine(t, Config{})
	var fs []api.Finding
	for sec := 0; sec <= 70; sec += 10 {
		fs = e.Observe(in(time.Duration(sec)*time.Second, int64(sec)))
	}
	if len(fs) != 1 || fs[0].Rule != "sched-starvation" {
		t.Fatalf("findings %+v, want starvation", fs)
	}
	f := fs[0]
	if len(f.Evidence.Sites) == 0 || f.Evidence.Sites[0] != burn || !strings.Contains(f.Message, "hog.go:33") || strings.Contains(f.Message, "pause.go") {
		t.Errorf("sites %+v, message %q; want the hogs at hog.go:33, not resting", f.Evidence.Sites, f.Message)
	}
	if p99 := f.Evidence.Figures["sched_latency_p99_ms"]; p99 < 30 || p99 > 35 {
		t.Errorf("p99 %vms, want the last minute's (about 33.5ms), not since the start", p99)
	}
}

// The live heap moves in steps, one a GC: growth of 2 MiB a second with a
// GC every 16s is reported from its first steps on, without a gap.
func TestGrowthInSteps(t *testing.T) {
	const mb = 1 << 20
	e := newEngine(t, Config{})
	lastGC, seen := 0, false
	for sec := 0; sec <= 60; sec += 2 {
		if sec-lastGC >= 16 {
			lastGC = sec
		}
		s := snap(time.Duration(sec) * time.Second)
		s.Process.HeapLiveBytes = uint64(100*mb + lastGC*2*mb)
		s.Process.HeapBytes = s.Process.HeapLiveBytes * 3 / 2
		prof := heapAt(map[string]int64{"example.com/app.(*queue).push": int64(lastGC * 2 * mb), "example.com/app.other": 20 * mb})
		fs := e.Observe(Input{Snapshot: s, Profile: func(string) (*profile.Profile, error) { return prof, nil }})
		if len(fs) == 1 {
			seen = true
		} else if seen {
			t.Fatalf("at %ds the growth finding went away: %+v", sec, fs)
		}
	}
	if !seen {
		t.Fatal("growth in steps never reported")
	}
}
