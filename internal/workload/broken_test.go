package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test parameters of the broken workloads: small enough for the race detector,
// which allows 8128 live goroutines in the whole process (and leaked goroutines
// of earlier tests stay alive), quick enough for a unit test, and still buggy.
func init() {
	testParams["blocking-lock"] = map[string]any{"waiters": 4, "hold": "50ms", "gap": "5ms", "think": "1ms"}
	testParams["blocking-loop"] = map[string]any{"senders": 4, "send_every": "1ms", "call": "10ms", "queue": 2}
	testParams["leak"] = map[string]any{"every": "5ms", "timeout": "2ms", "work": "5ms", "max_leaked": 40}
	testParams["deadlock"] = map[string]any{"every": "20ms", "max_pairs": 5}
	testParams["contention"] = map[string]any{"workers": 4, "critical": "50us", "think": "500us"}
	testParams["starvation"] = map[string]any{"burst": "300ms", "rest": "100ms", "period": "2ms", "report": "200ms"}
	testParams["busy-poll"] = map[string]any{"every": "10ms"}
	testParams["never-yield"] = map[string]any{"run": "100ms", "every": "200ms", "request_every": "5ms"}
	testParams["spawn-storm"] = map[string]any{"depth": 16, "max_goroutines": 1000, "step": "10ms", "pause": "100ms"}
	testParams["unbounded-queue"] = map[string]any{"produce": 2000, "consume": 100, "item_size": 16 << 10, "max_bytes": 8 << 20}
	testParams["thread-leak"] = map[string]any{"every": "5ms", "max_threads": 20, "heartbeat": "50ms"}
	testParams["ignored-cancel"] = map[string]any{"every": "10ms", "outlive": "200ms", "step": "20ms", "max_goroutines": 10}
	testParams["web-lock"] = map[string]any{"clients": 4, "rate": 100, "downstream": "20ms", "timeout": "1s"}
	testParams["web-ignored-ctx"] = map[string]any{"clients": 4, "rate": 40, "work": "300ms", "step": "20ms", "timeout": "100ms", "max_goroutines": 50}
	testParams["join-never-done"] = map[string]any{"every": "20ms", "tasks": 3, "work": "30ms", "fail_rate": 0.3, "max_stuck": 10}
	testParams["fan-in-spin"] = map[string]any{"fast": "5ms", "slow": "5ms", "slow_messages": 2}
	testParams["tracing-pileup"] = map[string]any{"records": 2000, "record_size": 1024, "flush": "20ms", "max_bytes": 4 << 20}
}

// goroutine is one entry of a runtime.Stack dump.
type goroutine struct {
	id     int
	reason string // "sync.Mutex.Lock", "chan send", "running", ...
	extra  string // what follows the reason: "locked to thread", "2 minutes"
	labels string // "role: waiter, workload: blocking-lock"
	stack  string
}

func (g goroutine) in(workload, role string) bool {
	labels := parseLabels(g.labels)
	return labels["workload"] == workload && (role == "" || labels["role"] == role)
}

var labelRE = regexp.MustCompile(`([^\s:,]+): ("(?:[^"\\]|\\.)*"|[^,]*)`)

// parseLabels reads the labels of a Go 1.27 goroutine header: `role: waiter,
// workload: "blocking-lock"`. Values that are not plain words are quoted.
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range labelRE.FindAllStringSubmatch(s, -1) {
		v := kv[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		m[kv[1]] = v
	}
	return m
}

var headerRE = regexp.MustCompile(`^goroutine (\d+) \[([^\],]*)(?:, ([^\]]*))?\](?: \{([^}]*)\})?:$`)

// dump parses a full goroutine dump, as a user would read it after SIGQUIT.
func dump(t *testing.T) []goroutine {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, block := range strings.Split(string(buf), "\n\n") {
		header, stack, _ := strings.Cut(block, "\n")
		m := headerRE.FindStringSubmatch(header)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		out = append(out, goroutine{id: id, reason: m[2], extra: m[3], labels: m[4], stack: stack})
	}
	return out
}

// matching returns the goroutines of workload and role (any role if "") waiting for reason (any if "").
func matching(gs []goroutine, workload, role, reason string) []goroutine {
	var out []goroutine
	for _, g := range gs {
		if g.in(workload, role) && (reason == "" || g.reason == reason) {
			out = append(out, g)
		}
	}
	return out
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBroken starts workload name alone with params (on top of its test
// parameters) and stops it when the test ends.
func startBroken(t *testing.T, name string, params map[string]any, log *slog.Logger) *Supervisor {
	t.Helper()
	raw := map[string]any{}
	for k, v := range testParams[name] {
		raw[k] = v
	}
	for k, v := range params {
		raw[k] = v
	}
	sup := NewSupervisor(Default, Options{Logger: log, StopGrace: 2 * time.Second})
	if err := sup.Start(name, raw); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := sup.Stop(name); err != nil && !errors.Is(err, ErrNotRunning) {
			t.Errorf("stop %s: %v", name, err)
		}
	})
	return sup
}

// recorder is a slog handler that keeps records, for tests that read what a
// workload logs.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// find returns the attributes of every record with message msg.
func (r *recorder) find(msg string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.Resolve()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

func readMetric(t *testing.T, name string) metrics.Value {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindBad {
		t.Fatalf("runtime/metrics has no %s", name)
	}
	return s[0].Value
}

// leakedByProfile counts the goroutines of workload that the goroutineleak
// profile reports, and whether any of them is at site (a function name).
func leakedByProfile(t *testing.T, workload, site string) (n int, atSite bool) {
	t.Helper()
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		t.Fatal("no goroutineleak profile in this Go")
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	// debug=1: "N @ pcs\n# labels: {...}\n#\tpc func+off file:line\n..." per stack.
	want := fmt.Sprintf(`"workload":%q`, workload)
	for _, rec := range strings.Split(buf.String(), "\n\n") {
		m := regexp.MustCompile(`(?m)^(\d+) @.*\n# labels: \{([^}]*)\}`).FindStringSubmatch(rec)
		if m == nil || !strings.Contains(m[2], want) {
			continue
		}
		c, _ := strconv.Atoi(m[1])
		n += c
		atSite = atSite || strings.Contains(rec, site)
	}
	return n, atSite
}

func TestBlockingLockWaitersQueueBehindASleepingHolder(t *testing.T) {
	startBroken(t, "blocking-lock", map[string]any{"waiters": 6, "hold": "200ms"}, nil)
	eventually(t, 5*time.Second, func() bool {
		gs := dump(t)
		waiters := matching(gs, "blocking-lock", "waiter", "sync.Mutex.Lock")
		holders := matching(gs, "blocking-lock", "holder", "sleep")
		return len(waiters) >= 4 && len(holders) == 1 &&
			strings.Contains(holders[0].stack, "workload.slowCall") &&
			strings.Contains(holders[0].stack, "blocking_lock.go")
	}, "no dump showed >= 4 waiters in sync.Mutex.Lock while the holder sleeps in slowCall")
}

func TestBlockingLoopSendersPileUpWhileTheServerSleeps(t *testing.T) {
	startBroken(t, "blocking-loop", map[string]any{"call": "100ms"}, nil)
	eventually(t, 5*time.Second, func() bool {
		gs := dump(t)
		return len(matching(gs, "blocking-loop", "sender", "chan send")) >= 3 &&
			len(matching(gs, "blocking-loop", "server", "sleep")) == 1
	}, "no dump showed >= 3 senders in chan send while the server sleeps")
}

func TestLeakGrowsPerRequestUpToItsCapAndTheLeakProfileSeesIt(t *testing.T) {
	stuck := func() int { return len(matching(dump(t), "leak", "worker", "chan send")) }
	before := stuck()
	const leakCap = 30
	sup := startBroken(t, "leak", map[string]any{"every": "5ms", "timeout": "1ms", "work": "10ms", "max_leaked": leakCap}, nil)
	var seen []int
	eventually(t, 5*time.Second, func() bool {
		n := stuck() - before
		if len(seen) == 0 || n != seen[len(seen)-1] {
			seen = append(seen, n)
		}
		return n >= leakCap
	}, "leaked workers never reached the cap %d: counts seen %v", leakCap, seen)
	if len(seen) < 3 {
		t.Errorf("the leak did not grow request by request: counts seen %v", seen)
	}
	time.Sleep(200 * time.Millisecond)
	if n := stuck() - before; n != leakCap {
		t.Errorf("%d workers stuck in chan send after the cap, want exactly %d", n, leakCap)
	}
	if st, _ := sup.StatusOf("leak"); st.Ops < 2*leakCap {
		t.Errorf("requests stopped at the cap: %d operations", st.Ops)
	}
	if err := sup.Stop("leak"); err != nil {
		t.Fatal(err)
	}
	if n := stuck() - before; n != leakCap {
		t.Errorf("%d workers stuck after stop, want %d: leaked goroutines cannot be reclaimed", n, leakCap)
	}
	n, atSite := leakedByProfile(t, "leak", "workload.leakRequest.func1")
	if n < leakCap || !atSite {
		t.Errorf("goroutineleak profile: %d leaked goroutines of workload=leak (want >= %d), at leakRequest: %v", n, leakCap, atSite)
	}
}

func TestDeadlockPairsHangForever(t *testing.T) {
	sup := startBroken(t, "deadlock", map[string]any{"every": "10ms", "max_pairs": 3}, nil)
	eventually(t, 5*time.Second, func() bool {
		st, _ := sup.StatusOf("deadlock")
		return st.Ops >= 3
	}, "three pairs did not start")
	var first []goroutine
	eventually(t, 2*time.Second, func() bool {
		first = matching(dump(t), "deadlock", "transfer", "sync.Mutex.Lock")
		return len(first) >= 6
	}, "want >= 6 transfers in sync.Mutex.Lock, got %d", len(first))
	time.Sleep(300 * time.Millisecond)
	if err := sup.Stop("deadlock"); err != nil {
		t.Fatal(err)
	}
	still := map[int]bool{}
	for _, g := range matching(dump(t), "deadlock", "transfer", "sync.Mutex.Lock") {
		still[g.id] = strings.Contains(g.stack, "workload.transfer")
	}
	for _, g := range first {
		if !still[g.id] {
			t.Errorf("goroutine %d left sync.Mutex.Lock: a deadlock never resolves", g.id)
		}
	}
	if n, atSite := leakedByProfile(t, "deadlock", "workload.transfer"); n < 6 || !atSite {
		t.Errorf("goroutineleak profile: %d deadlocked goroutines (want >= 6), at transfer: %v", n, atSite)
	}
}

func TestContentionAccumulatesMutexWait(t *testing.T) {
	const wait = "/sync/mutex/wait/total:seconds"
	before := readMetric(t, wait).Float64()
	startBroken(t, "contention", map[string]any{"workers": 8, "critical": "200us", "think": "200us"}, nil)
	time.Sleep(time.Second)
	if grew := readMetric(t, wait).Float64() - before; grew < 0.5 {
		t.Errorf("%s grew by %.3fs in 1s with 8 workers on one lock, want >= 0.5s", wait, grew)
	}
	eventually(t, 2*time.Second, func() bool {
		return len(matching(dump(t), "contention", "worker", "sync.Mutex.Lock")) >= 2
	}, "no dump showed workers waiting in sync.Mutex.Lock")
}

func TestStarvationMakesTheTickerLate(t *testing.T) {
	rec := &recorder{}
	startBroken(t, "starvation", map[string]any{"burst": "2s", "rest": "0s", "period": "2ms", "report": "300ms"}, slog.New(rec))
	// Unstarved, the ticker is late by well under a millisecond on average
	// (about 0.7ms under -race); GOMAXPROCS+1 hogs make that tens of milliseconds.
	var worst time.Duration
	eventually(t, 5*time.Second, func() bool {
		for _, r := range rec.find("ticker lateness") {
			worst = max(worst, r["mean_late"].Duration())
		}
		return worst >= 5*time.Millisecond
	}, "the ticker was late by %v on average at worst with GOMAXPROCS+1 hogs, want >= 5ms", worst)
}

func TestBusyPollNeverBlocks(t *testing.T) {
	sup := startBroken(t, "busy-poll", map[string]any{"every": "50ms"}, nil)
	waitOps(t, sup, "busy-poll", 0)
	for range 20 {
		spinners := matching(dump(t), "busy-poll", "spinner", "")
		if len(spinners) != 1 {
			t.Fatalf("%d spinners, want 1", len(spinners))
		}
		if r := spinners[0].reason; r != "runnable" && r != "running" {
			t.Fatalf("the spinner was seen waiting (%s); a busy poller never blocks:\n%s", r, spinners[0].stack)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu := readMetric(t, "/cpu/classes/user:cpu-seconds").Float64()
	time.Sleep(500 * time.Millisecond)
	runtime.GC() // the CPU classes are brought up to date by the GC
	if used := readMetric(t, "/cpu/classes/user:cpu-seconds").Float64() - cpu; used < 0.3 {
		t.Errorf("user CPU grew by %.2fs in 0.5s; a spinner should keep a core busy", used)
	}
}

func TestNeverYieldStallsRequests(t *testing.T) {
	rec := &recorder{}
	startBroken(t, "never-yield", map[string]any{"run": "200ms", "every": "300ms", "request_every": "5ms"}, slog.New(rec))
	var worst time.Duration
	eventually(t, 5*time.Second, func() bool {
		for _, r := range rec.find("request stalled behind a long run") {
			worst = max(worst, r["waited"].Duration())
		}
		return worst >= 150*time.Millisecond
	}, "requests waited at most %v behind 200ms runs, want >= 150ms", worst)
}

func TestSpawnStormClimbsToItsCapAndWindsDown(t *testing.T) {
	const stormCap = 1500
	rec := &recorder{}
	startBroken(t, "spawn-storm", map[string]any{"depth": 20, "max_goroutines": stormCap, "step": "20ms", "pause": "300ms"}, slog.New(rec))
	// The goroutines are counted from the outside, a few times a storm:
	// on the way up, and once it is over. Its top lasts about one step,
	// which a loaded machine's samples miss: the storm tells its own.
	var samples []int
	climbing, woundDown := false, false
	var storm map[string]slog.Value
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := countLabelled(t, "spawn-storm")
		samples = append(samples, n)
		// The main goroutine and nodes finishing their exit are counted too.
		if n > stormCap+runtime.GOMAXPROCS(0)+2 {
			t.Fatalf("%d goroutines, cap %d", n, stormCap)
		}
		// Seen on the way up, not only at the top.
		climbing = climbing || n > 10 && n < stormCap/2 && len(samples) > 1 && n > samples[len(samples)-2]
		if storm == nil {
			for _, s := range rec.find("storm over") {
				if s["capped"].Bool() {
					storm = s
				}
			}
			continue
		}
		if woundDown = woundDown || n < stormCap/4; woundDown && climbing {
			break
		}
	}
	if storm == nil || !climbing || !woundDown {
		t.Fatalf("no storm that climbs to the cap and winds down: a storm capped %v, seen climbing %v, seen winding down %v; samples %v",
			storm != nil, climbing, woundDown, samples)
	}
	if peak := storm["peak"].Int64(); peak < stormCap*2/3 || peak > stormCap {
		t.Errorf("the storm peaked at %d goroutines; want near its cap of %d, never past it", peak, stormCap)
	}
}

func TestUnboundedQueueGrowsToItsCapAndNoFurther(t *testing.T) {
	rec := &recorder{}
	const maxBytes, item = 4 << 20, 16 << 10
	startBroken(t, "unbounded-queue", map[string]any{"produce": 2000, "consume": 100, "item_size": item, "max_bytes": maxBytes}, slog.New(rec))
	var drops []map[string]slog.Value
	eventually(t, 5*time.Second, func() bool {
		drops = rec.find("unbounded queue reached its cap; dropping the buffer and starting over")
		return len(drops) >= 2
	}, "the buffer never reached its cap twice")
	for _, d := range drops {
		if b := d["bytes"].Int64(); b > maxBytes || b <= maxBytes-item {
			t.Errorf("dropped at %d bytes: want the cap %d reached but not passed", b, maxBytes)
		}
	}
}

func TestThreadLeakGrowsOSThreads(t *testing.T) {
	const threadsMetric = "/sched/threads/total:threads"
	threads := func() int { return int(readMetric(t, threadsMetric).Uint64()) }
	before := threads()
	sup := startBroken(t, "thread-leak", map[string]any{"every": "2ms", "max_threads": 30}, nil)
	eventually(t, 5*time.Second, func() bool { return threads() >= before+28 }, "%s grew from %d to %d with 30 locked sessions", threadsMetric, before, threads())
	eventually(t, 5*time.Second, func() bool {
		locked := 0
		for _, g := range matching(dump(t), "thread-leak", "session", "") {
			if strings.Contains(g.extra, "locked to thread") {
				locked++
			}
		}
		return locked == 30
	}, "fewer than 30 sessions shown locked to thread")
	if err := sup.Stop("thread-leak"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() bool { return threads() <= before+5 }, "threads stayed at %d after stop (from %d)", threads(), before)
}

func TestIgnoredCancelOutlivesStop(t *testing.T) {
	sup := startBroken(t, "ignored-cancel", map[string]any{"every": "5ms", "outlive": "800ms", "step": "10ms", "max_goroutines": 8}, nil)
	eventually(t, 3*time.Second, func() bool { return countLabelled(t, "ignored-cancel") >= 5 }, "pollers did not start")
	if err := sup.Stop("ignored-cancel"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	left := len(matching(dump(t), "ignored-cancel", "poller", ""))
	if left < 4 {
		t.Fatalf("%d pollers alive right after stop, want them to outlive it", left)
	}
	// Their operations still count, in the status as in the metric.
	st, _ := sup.StatusOf("ignored-cancel")
	eventually(t, 3*time.Second, func() bool { now, _ := sup.StatusOf("ignored-cancel"); return now.Ops > st.Ops && st.Ops > 0 },
		"the stopped workload's operations are not counted")
	eventually(t, 3*time.Second, func() bool { return countLabelled(t, "ignored-cancel") == 0 }, "pollers still alive after outlive")
	if d := time.Since(stopped); d < 200*time.Millisecond {
		t.Errorf("pollers were gone %v after stop; they should run on for most of outlive", d)
	}
}

func TestParseLabels(t *testing.T) {
	got := parseLabels(`role: waiter, workload: "blocking-lock", note: "a, \"b\""`)
	want := map[string]string{"role": "waiter", "workload": "blocking-lock", "note": `a, "b"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseLabels = %v, want %v", got, want)
	}
}

// New parameters for a running workload change what they name and keep
// the rest.
func TestRestartKeepsTheParametersItDoesNotName(t *testing.T) {
	sup := startBroken(t, "busy-poll", map[string]any{"spinners": 2, "every": "50ms"}, nil)
	if err := sup.Restart("busy-poll", map[string]any{"every": "20ms"}); err != nil {
		t.Fatal(err)
	}
	st, err := sup.StatusOf("busy-poll")
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Params; p.Int("spinners") != 2 || p.Duration("every") != 20*time.Millisecond {
		t.Errorf("after changing every: %v, want spinners 2 and every 20ms", p.Map())
	}
}
