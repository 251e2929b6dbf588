package tracewin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	rtrace "runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/stack"
	"golang.org/x/exp/trace"
)

var updateTraces = flag.Bool("update-traces", false, "rewrite the trace fixtures under testdata/traces")

// curGoID returns the calling goroutine's ID, read from its stack header
// ("goroutine 7 [running]:").
func curGoID() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n]))
	id, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}

// recordTrace runs body under runtime/trace and returns the trace.
func recordTrace(t testing.TB, body func()) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Fatalf("starting the tracer: %v", err)
	}
	body()
	rtrace.Stop()
	return buf.Bytes()
}

// checkWindow checks what must hold for every window.
func checkWindow(t testing.TB, w *Window) {
	t.Helper()
	if w == nil {
		t.Fatal("nil window")
	}
	if w.End < w.Start {
		t.Errorf("window ends (%d) before it starts (%d)", w.End, w.Start)
	}
	for id, g := range w.Goroutines {
		if g.ID != id {
			t.Errorf("goroutine %d filed under %d", g.ID, id)
		}
	}
	// A live window's quiet goroutines too.
	for g := range w.All() {
		id := g.ID
		if g.Busy < 0 || g.Sched < 0 || g.Idle < 0 || g.Syscall < 0 || g.Total < 0 {
			t.Errorf("g%d: negative time: %+v", id, *g)
		}
		if sum := g.Busy + g.Sched + g.Idle + g.Syscall; sum != g.Total {
			t.Errorf("g%d: busy+sched+idle+syscall = %d, total %d", id, sum, g.Total)
		}
		if g.Total > w.Duration() {
			t.Errorf("g%d: total %d longer than the window %d", id, g.Total, w.Duration())
		}
		var idle int64
		for _, r := range g.IdleByReason {
			idle += r.NS
		}
		if idle != g.Idle {
			t.Errorf("g%d: idle by reason sums to %d, idle %d", id, idle, g.Idle)
		}
		if g.Exited && g.State != 0 || !g.Exited && g.State == 0 {
			t.Errorf("g%d: exited %v with state %v", id, g.Exited, g.State)
		}
		if (g.State == stack.Waiting) != (g.WaitReason != "") {
			t.Errorf("g%d: state %v with wait reason %q", id, g.State, g.WaitReason)
		}
		switch {
		case g.Exited:
			// Nothing shows an exited goroutine's histograms: it has none.
			if g.RunTimes != nil || g.SchedDelays != nil {
				t.Errorf("g%d: exited with histograms of %d runs and %d delays", id, g.RunTimes.Count(), g.SchedDelays.Count())
			}
		case g.RunTimes.Sum() != g.Busy:
			t.Errorf("g%d: run times sum to %d, busy %d", id, g.RunTimes.Sum(), g.Busy)
		case g.LongestRun != g.RunTimes.Max():
			t.Errorf("g%d: longest run %d, run times max %d", id, g.LongestRun, g.RunTimes.Max())
		}
	}
	var waiting int
	for g := range w.All() {
		if g.State == stack.Waiting {
			waiting++
		}
	}
	var atSites int
	for i, s := range w.Sites {
		atSites += s.Waiting
		if i > 0 && s.WaitNS > w.Sites[i-1].WaitNS {
			t.Errorf("sites not sorted by wait: %d after %d", s.WaitNS, w.Sites[i-1].WaitNS)
		}
		for _, id := range s.Tasks {
			if g := w.Get(id); g == nil || g.State != stack.Waiting || g.WaitReason != s.Reason {
				t.Errorf("site %s %v lists g%d, which is not waiting there: %+v", s.Reason, s.Location, id, g)
			}
		}
	}
	if w.Sites != nil && atSites != waiting {
		t.Errorf("%d goroutines wait at sites, %d wait", atSites, waiting)
	}
}

func trHasFrame(fs []stack.Frame, funcSuffix string) bool {
	return slices.ContainsFunc(fs, func(f stack.Frame) bool { return strings.HasSuffix(f.Func, funcSuffix) })
}

func trWithin(got, lo, hi int64) bool { return got >= lo && got <= hi }

// sleptAtLeast is how long a goroutine that sleeps d between runs slept
// in a window where it ran polls times: d between two runs, at the least
// (the first and the last sleep may lie partly outside). Unlike its share
// of the window, this does not depend on how long a loaded machine kept
// it waiting for a P after each sleep.
func sleptAtLeast(polls int64, d time.Duration) int64 {
	return max(polls-2, 0) * int64(d)
}

// traceSleeper sleeps 10 ms in a loop until stop closes.
func traceSleeper(id chan<- int64, stop <-chan struct{}) {
	id <- curGoID()
	for {
		select {
		case <-stop:
			return
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traceMutexWaiter waits for mu; it tells the line of its Lock call.
func traceMutexWaiter(mu *sync.Mutex, id, line chan<- int64) {
	id <- curGoID()
	_, _, l, _ := runtime.Caller(0)
	line <- int64(l + 2)
	mu.Lock()
	mu.Unlock() //nolint:staticcheck // an empty critical section: we only wait
}

// traceUnlockHolder releases mu; it is the waker the mutex site must name.
func traceUnlockHolder(mu *sync.Mutex) { mu.Unlock() }

// traceReceiver blocks on ch.
func traceReceiver(ch <-chan int, id chan<- int64) {
	id <- curGoID()
	<-ch
}

// Known waits give known numbers: a sleeper, a mutex waiter, and a goroutine
// blocked on a channel since before the trace started.
func TestWindowWaits(t *testing.T) {
	ids := make(chan int64, 1)
	ch := make(chan int)
	go traceReceiver(ch, ids)
	recvID := <-ids
	defer close(ch)
	time.Sleep(20 * time.Millisecond) // let it block

	var mu sync.Mutex
	mu.Lock()
	stop := make(chan struct{})
	defer close(stop)
	var sleeperID, waiterID, lockLine int64
	lines := make(chan int64, 1)
	data := recordTrace(t, func() {
		go traceSleeper(ids, stop)
		sleeperID = <-ids
		go traceMutexWaiter(&mu, ids, lines)
		waiterID, lockLine = <-ids, <-lines
		time.Sleep(200 * time.Millisecond)
		traceUnlockHolder(&mu)
		time.Sleep(300 * time.Millisecond)
	})
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, w)
	win := w.Duration()
	t.Logf("window %v, %d events, %d goroutines, %d sites", time.Duration(win), w.Events, len(w.Goroutines), len(w.Sites))
	if win < int64(450*time.Millisecond) {
		t.Fatalf("window %v, want >= 450ms", time.Duration(win))
	}

	t.Run("sleeper", func(t *testing.T) {
		g := w.Goroutines[sleeperID]
		if g == nil {
			t.Fatalf("g%d (sleeper) not in the window", sleeperID)
		}
		t.Logf("%+v", *g)
		slots := g.Total / int64(10*time.Millisecond)
		if !trWithin(g.Polls, slots/3, slots+3) { // a loaded machine oversleeps
			t.Errorf("polls %d, want about %d (a 10ms sleep loop over %v)", g.Polls, slots, time.Duration(g.Total))
		}
		// Between two runs it slept 10ms or more, and waited for a P as
		// long as the machine made it: only the sleeps are certain.
		if s := g.IdleFor("sleep"); s < sleptAtLeast(g.Polls, 10*time.Millisecond) || s < g.Busy {
			t.Errorf("idle in sleep %v of %v (%d polls, busy %v), want 10ms a poll", time.Duration(s), time.Duration(g.Total), g.Polls, time.Duration(g.Busy))
		}
		if g.Busy > g.Total/10 {
			t.Errorf("busy %v of %v", time.Duration(g.Busy), time.Duration(g.Total))
		}
		// Asleep at the end, most likely; or just woken.
		if g.State == stack.Waiting && (g.WaitReason != "sleep" || g.ReasonInferred) || g.State == stack.Syscall {
			t.Errorf("at the end: %v %q inferred=%v, want waiting on sleep", g.State, g.WaitReason, g.ReasonInferred)
		}
		if !strings.HasSuffix(g.StartFunc, "tracewin.traceSleeper") || !strings.HasSuffix(g.CreatedBy.Func, "tracewin.TestWindowWaits.func1") || g.ParentID == 0 {
			t.Errorf("start %q, created by %v in g%d", g.StartFunc, g.CreatedBy, g.ParentID)
		}
		if g.RunTimes.Count() < g.Polls || g.SchedDelays.Count() < g.Polls {
			t.Errorf("%d runs, %d sched delays for %d polls", g.RunTimes.Count(), g.SchedDelays.Count(), g.Polls)
		}
	})

	t.Run("mutex", func(t *testing.T) {
		g := w.Goroutines[waiterID]
		if g == nil {
			t.Fatalf("g%d (mutex waiter) not in the window", waiterID)
		}
		t.Logf("%+v", *g)
		if l := g.IdleFor("sync.Mutex.Lock"); l < int64(150*time.Millisecond) {
			t.Errorf("idle on sync.Mutex.Lock %v, want >= 150ms (reasons %v)", time.Duration(l), g.IdleByReason)
		}
		if !g.Exited {
			t.Errorf("not exited: %v", g.State)
		}
		var site *SiteStats
		for _, s := range w.Sites {
			if s.Reason == "sync.Mutex.Lock" && strings.HasSuffix(s.Location.Func, "tracewin.traceMutexWaiter") {
				site = s
			}
		}
		if site == nil {
			t.Fatalf("no sync.Mutex.Lock site at traceMutexWaiter among %d sites", len(w.Sites))
		}
		t.Logf("site %+v", *site)
		if filepath.Base(site.Location.File) != "trace_test.go" || int64(site.Location.Line) != lockLine {
			t.Errorf("site at %s:%d, want trace_test.go:%d", site.Location.File, site.Location.Line, lockLine)
		}
		if site.Wakeups < 1 || site.WaitNS < int64(150*time.Millisecond) || site.Waiting != 0 {
			t.Errorf("site: %d wakeups, %v wait, %d waiting", site.Wakeups, time.Duration(site.WaitNS), site.Waiting)
		}
		if !trHasFrame(site.Waker, "sync.(*Mutex).Unlock") || !trHasFrame(site.Waker, "tracewin.traceUnlockHolder") {
			t.Errorf("waker %v, want the holder's Unlock", site.Waker)
		}
	})

	t.Run("chan receive since before", func(t *testing.T) {
		g := w.Goroutines[recvID]
		if g == nil {
			t.Fatalf("g%d (receiver) not in the window", recvID)
		}
		t.Logf("%+v", *g)
		if g.State != stack.Waiting || g.WaitReason != "chan receive" || !g.ReasonInferred {
			t.Errorf("%v %q inferred=%v, want waiting on chan receive, inferred", g.State, g.WaitReason, g.ReasonInferred)
		}
		if g.Total != win || g.Idle != win || g.IdleFor("chan receive") != win {
			t.Errorf("total %d idle %d (%v), want the whole window %d", g.Total, g.Idle, g.IdleByReason, win)
		}
		if !trHasFrame(g.Stack, "tracewin.traceReceiver") || !strings.HasSuffix(g.StartFunc, "tracewin.traceReceiver") {
			t.Errorf("stack %v, start %q", g.Stack, g.StartFunc)
		}
		if g.Polls != 0 || g.RunTimes != nil {
			t.Errorf("polls %d, runs %v", g.Polls, g.RunTimes)
		}
		found := false
		for _, s := range w.Sites {
			if s.Reason == "chan receive" && slices.Contains(s.Tasks, recvID) {
				found = true
				if !strings.HasSuffix(s.Location.Func, "tracewin.traceReceiver") || s.WaitNS < win {
					t.Errorf("site %+v", *s)
				}
			}
		}
		if !found {
			t.Errorf("no chan receive site lists g%d", recvID)
		}
	})
}

// traceHog burns CPU until stop is set.
func traceHog(stop *atomic.Bool, id chan<- int64) {
	id <- curGoID()
	x := 1
	for !stop.Load() {
		for range 1000 {
			x = x*31 + 7
		}
	}
	if x == 42 {
		println()
	}
}

// startHogs starts n CPU hogs and returns their IDs and a stop function that
// waits for them to end.
func startHogs(n int) ([]int64, func()) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	ids := make(chan int64, n)
	for range n {
		wg.Go(func() { traceHog(&stop, ids) })
	}
	var out []int64
	for range n {
		out = append(out, <-ids)
	}
	return out, func() { stop.Store(true); wg.Wait() }
}

// CPU hogs: as many as GOMAXPROCS run all the time; one more than that
// starves them all a little.
func TestWindowCPU(t *testing.T) {
	const procs = 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))

	t.Run("hogs = GOMAXPROCS", func(t *testing.T) {
		hogs, stop := startHogs(procs)
		data := recordTrace(t, func() { time.Sleep(400 * time.Millisecond) })
		stop()
		w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkWindow(t, w)
		win := w.Duration()
		for _, id := range hogs {
			g := w.Goroutines[id]
			if g == nil {
				t.Fatalf("hog g%d not in the window", id)
			}
			t.Logf("hog g%d: busy %v sched %v idle %v polls %d longest %v (window %v)", id,
				time.Duration(g.Busy), time.Duration(g.Sched), time.Duration(g.Idle), g.Polls, time.Duration(g.LongestRun), time.Duration(win))
			if g.Total != win {
				t.Errorf("total %d, want the window %d", g.Total, win)
			}
			if g.Busy < win*7/10 {
				t.Errorf("busy %v of %v, want >= 70%%", time.Duration(g.Busy), time.Duration(win))
			}
			if g.LongestRun < int64(5*time.Millisecond) {
				t.Errorf("longest run %v", time.Duration(g.LongestRun))
			}
		}
	})

	t.Run("hogs > GOMAXPROCS", func(t *testing.T) {
		hogs, stop := startHogs(procs + 1)
		data := recordTrace(t, func() { time.Sleep(600 * time.Millisecond) })
		stop()
		w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkWindow(t, w)
		win := w.Duration()
		var busy int64
		for _, id := range hogs {
			g := w.Goroutines[id]
			if g == nil {
				t.Fatalf("hog g%d not in the window", id)
			}
			t.Logf("hog g%d: busy %v sched %v idle %v polls %d, sched delay p50 %v p99 %v (window %v)", id,
				time.Duration(g.Busy), time.Duration(g.Sched), time.Duration(g.Idle), g.Polls,
				time.Duration(g.SchedDelays.Quantile(0.5)), time.Duration(g.SchedDelays.Quantile(0.99)), time.Duration(win))
			busy += g.Busy
			// Each hog's share is 2/3 of the window.
			if !trWithin(g.Busy, win*35/100, win*90/100) {
				t.Errorf("g%d busy %v of %v, want about 2/3", id, time.Duration(g.Busy), time.Duration(win))
			}
			if g.Sched < win/10 {
				t.Errorf("g%d sched %v of %v, want >= 10%%", id, time.Duration(g.Sched), time.Duration(win))
			}
			// Preempted every 10ms, a hog waits for one of the others' slices.
			if g.Polls < 5 || g.SchedDelays.Max() < int64(5*time.Millisecond) {
				t.Errorf("g%d: %d polls, longest sched delay %v", id, g.Polls, time.Duration(g.SchedDelays.Max()))
			}
		}
		if busy > procs*win {
			t.Errorf("hogs busy %v in all, more than %d Ps × %v", time.Duration(busy), procs, time.Duration(win))
		}
	})
}

// A FlightRecorder snapshot spans several generations; goroutines that
// exist at its start come as status events.
func TestWindowFlightRecorder(t *testing.T) {
	fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: 2 * time.Second})
	if err := fr.Start(); err != nil {
		t.Skipf("flight recorder: %v", err)
	}
	ids := make(chan int64, 1)
	stop := make(chan struct{})
	go traceSleeper(ids, stop)
	id := <-ids
	time.Sleep(1300 * time.Millisecond) // at least one generation boundary
	var buf bytes.Buffer
	if _, err := fr.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	fr.Stop()
	close(stop)
	w, err := AnalyzeTrace(&buf, WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, w)
	g := w.Goroutines[id]
	if g == nil {
		t.Fatalf("sleeper g%d not in the snapshot", id)
	}
	t.Logf("window %v: sleeper %+v", time.Duration(w.Duration()), *g)
	if g.IdleFor("sleep") < sleptAtLeast(g.Polls, 10*time.Millisecond) || g.Polls < 20 {
		t.Errorf("sleeper: sleep %v of %v, %d polls", time.Duration(g.IdleFor("sleep")), time.Duration(g.Total), g.Polls)
	}
}

// Go's own summary, from `go tool trace`, gives the same numbers.
func TestWindowMatchesGoSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs go tool trace")
	}
	traces := map[string][]byte{"mixed (live)": recordTrace(t, mixedWorkload)}
	for _, name := range []string{"small.trace", "gens.trace"} {
		b, err := os.ReadFile(filepath.Join("testdata", "traces", name))
		if err != nil {
			t.Fatal(err)
		}
		traces[name] = b
	}
	for name, data := range traces {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "trace.out")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := goToolSummary(t, path)
			w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkWindow(t, w)
			compareWithGo(t, w, want)
		})
	}
}

// compareWithGo checks every goroutine's numbers against Go's, within 2% of
// the goroutine's total time.
func compareWithGo(t *testing.T, w *Window, want map[int64]goSummary) {
	t.Helper()
	if len(want) != len(w.Goroutines) {
		t.Errorf("%d goroutines, go tool trace shows %d", len(w.Goroutines), len(want))
	}
	var compared, exact, skipped int
	var worst float64
	var sum goSummary
	for id, ws := range want {
		g := w.Goroutines[id]
		if g == nil {
			t.Errorf("g%d: in go tool trace, not in the window", id)
			continue
		}
		forever := slices.ContainsFunc(g.IdleByReason, func(r ReasonTime) bool {
			return r.Reason == "select (no cases)" || strings.HasSuffix(r.Reason, "(nil chan)") || r.Reason == "panicwait"
		})
		inSyscall := g.State == stack.Syscall
		tol := max(g.Total, ws.total) / 50 // 2%
		type pair struct {
			name     string
			got, exp int64
			skip     bool
		}
		pairs := []pair{
			{"total", g.Total, ws.total, forever},
			{"busy", g.Busy, ws.exec, false},
			{"sched", g.Sched, ws.sched, inSyscall},
			{"idle", g.Idle, ws.block, forever},
			{"syscall", g.Syscall, ws.syscall, inSyscall},
		}
		same := true
		for _, p := range pairs {
			if p.skip {
				continue
			}
			d := trAbs(p.got - p.exp)
			if d != 0 {
				same = false
			}
			if g.Total > 0 {
				worst = max(worst, float64(d)/float64(g.Total))
			}
			if d > tol {
				t.Errorf("g%d %s: %v, go tool trace %v (%s)", id, p.name, time.Duration(p.got), time.Duration(p.exp), g.StartFunc)
			}
		}
		if ws.unknown != 0 {
			t.Logf("g%d: go tool trace has %v of unknown time", id, ws.unknown)
		}
		if forever || inSyscall {
			skipped++
		}
		sum.total += ws.total
		sum.exec += ws.exec
		sum.sched += ws.sched
		sum.block += ws.block
		sum.syscall += ws.syscall
		compared++
		if same {
			exact++
		}
	}
	t.Logf("%d goroutines compared (%d in part: blocked forever or in a system call at the end), %d identical to the ns, worst difference %.4f%% of a goroutine's total",
		compared, skipped, exact, worst*100)
	t.Logf("go tool trace, all goroutines: total %v, execution %v, sched wait %v, block %v, syscall %v",
		time.Duration(sum.total), time.Duration(sum.exec), time.Duration(sum.sched), time.Duration(sum.block), time.Duration(sum.syscall))
}

func trAbs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// goSummary is one goroutine's row of go tool trace's breakdown.
type goSummary struct {
	total, exec, sched, block, syscall, unknown int64
}

var (
	reListening = regexp.MustCompile(`listening on (http://\S+)`)
	reGroup     = regexp.MustCompile(`href="(/goroutine\?name=[^"]*)"`)
	reDetails   = regexp.MustCompile(`(?s)<table class="details">(.*?)</table>`)
	reHeader    = regexp.MustCompile(`(?s)<th class="link"[^>]*>(.*?)</th>`)
	reRow       = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	reGoid      = regexp.MustCompile(`href="/trace\?goid=(\d+)"`)
	reCell      = regexp.MustCompile(`(?s)<td>(.*?)</td>`)
)

// goToolSummary runs `go tool trace` on a trace file and reads every
// goroutine's breakdown off its /goroutines and /goroutine pages.
func goToolSummary(t *testing.T, path string) map[int64]goSummary {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if env := os.Getenv("GOROOT"); env != "" {
		if p := filepath.Join(env, "bin", "go"); trFileExists(p) {
			goBin, err = p, nil
		}
	}
	if err != nil {
		t.Skipf("no go command to run go tool trace: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// `go tool -n trace` builds the tool if need be and prints its path: run
	// it directly, so that killing it kills the server (`go tool trace`
	// would leave it running as an orphan).
	tool, err := exec.CommandContext(ctx, goBin, "tool", "-n", "trace").Output()
	if err != nil {
		t.Fatalf("go tool -n trace: %v", err)
	}
	cmd := exec.CommandContext(ctx, strings.TrimSpace(string(tool)), "-http=127.0.0.1:0", path)
	cmd.Env = append(os.Environ(), "BROWSER=true") // "opens" the browser with /usr/bin/true
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("go tool trace: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var base string
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := reListening.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatalf("go tool trace did not start:\n%s", log.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	get := func(p string) string {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %s", p, err, resp.Status)
		}
		return string(b)
	}
	parseDur := func(s string) int64 {
		d, err := time.ParseDuration(strings.TrimSpace(html.UnescapeString(s)))
		if err != nil {
			t.Fatalf("go tool trace duration %q: %v", s, err)
		}
		return int64(d)
	}
	out := map[int64]goSummary{}
	for _, m := range reGroup.FindAllStringSubmatch(get("/goroutines"), -1) {
		page := get(html.UnescapeString(m[1]))
		table := reDetails.FindStringSubmatch(page)
		if table == nil {
			t.Fatalf("no breakdown table in %s", m[1])
		}
		var cols []string
		for _, h := range reHeader.FindAllStringSubmatch(table[1], -1) {
			cols = append(cols, strings.TrimSpace(html.UnescapeString(h[1])))
		}
		if len(cols) == 0 || cols[0] != "Total" {
			t.Fatalf("unexpected columns %q", cols)
		}
		for _, row := range reRow.FindAllStringSubmatch(table[1], -1) {
			id := reGoid.FindStringSubmatch(row[1])
			if id == nil {
				continue
			}
			cells := reCell.FindAllStringSubmatch(row[1], -1)
			if len(cells) != len(cols)+2 { // id, total, bar graph, the rest
				t.Fatalf("row of g%s: %d cells for columns %q", id[1], len(cells), cols)
			}
			var s goSummary
			s.total = parseDur(cells[1][1])
			for i, col := range cols[1:] {
				v := parseDur(cells[i+3][1])
				switch {
				case col == "Execution time":
					s.exec = v
				case col == "Sched wait time":
					s.sched = v
				case col == "Syscall execution time", col == "Block time (syscall)":
					s.syscall += v
				case strings.HasPrefix(col, "Block time ("):
					s.block += v
				case col == "Unknown time":
					s.unknown = v
				default:
					t.Fatalf("unknown column %q", col)
				}
			}
			gid, _ := strconv.ParseInt(id[1], 10, 64)
			out[gid] = s
		}
	}
	if len(out) == 0 {
		t.Fatal("go tool trace shows no goroutines")
	}
	return out
}

func trFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// mixedWorkload exercises every goroutine state for ~300ms: channel
// ping-pong, mutex contention, a WaitGroup, a Cond, select, sleeps, network
// I/O on loopback, blocking system calls and CPU hogs.
func mixedWorkload() {
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	done := func() bool { return time.Now().After(deadline) }

	ping, pong := make(chan int), make(chan int)
	wg.Go(func() {
		for !done() {
			ping <- 1
			<-pong
		}
		close(ping)
	})
	wg.Go(func() {
		for range ping {
			pong <- 1
		}
	})
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for !done() {
				mu.Lock()
				time.Sleep(time.Millisecond)
				mu.Unlock()
			}
		})
	}
	cond := sync.NewCond(&sync.Mutex{})
	woken := false
	wg.Go(func() {
		cond.L.Lock()
		for !woken {
			cond.Wait()
		}
		cond.L.Unlock()
	})
	tick := time.NewTicker(3 * time.Millisecond)
	never := make(chan int)
	wg.Go(func() {
		defer tick.Stop()
		for !done() {
			select {
			case <-tick.C:
			case <-never:
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		wg.Go(func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(c, c)
			c.Close()
		})
		wg.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			for !done() {
				_, _ = c.Write(buf)
				_, _ = io.ReadFull(c, buf)
				time.Sleep(2 * time.Millisecond)
			}
			c.Close()
		})
	}
	wg.Go(func() {
		for !done() {
			ts := syscall.NsecToTimespec(int64(15 * time.Millisecond))
			_ = syscall.Nanosleep(&ts, nil) // a blocking system call: the P is taken away
		}
	})
	var stop atomic.Bool
	for range 3 {
		wg.Go(func() { traceHog(&stop, make(chan int64, 1)) })
	}
	var inner sync.WaitGroup
	for range 8 {
		inner.Go(func() { time.Sleep(5 * time.Millisecond) })
	}
	inner.Wait()
	time.Sleep(time.Until(deadline) + 10*time.Millisecond)
	stop.Store(true)
	cond.L.Lock()
	woken = true
	cond.Broadcast()
	cond.L.Unlock()
	if ln != nil {
		ln.Close()
	}
	wg.Wait()
}

// Cut traces give an error and a partial window, never a panic; the more
// is read, the more is analysed.
func TestAnalyzeTraceTruncated(t *testing.T) {
	for _, name := range []string{"small.trace", "gens.trace"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "traces", name))
			if err != nil {
				t.Fatal(err)
			}
			full, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
			if err != nil {
				t.Fatalf("whole trace: %v", err)
			}
			var cuts []int
			for i := 0; i < 64 && i < len(data); i++ {
				cuts = append(cuts, i)
			}
			for i := 64; i < len(data); i += max(1, len(data)/400) {
				cuts = append(cuts, i)
			}
			cuts = append(cuts, len(data)-1)
			var lastEvents int64
			var partial int
			for i, n := range cuts {
				// Every other cut parses on two goroutines (through a reader
				// of unknown length: a short bytes.Reader stays on one).
				w, err := AnalyzeTrace(struct{ io.Reader }{bytes.NewReader(data[:n])}, WindowOptions{Sites: true, Parallel: i%2 == 1})
				if w == nil {
					t.Fatalf("cut at %d: nil window", n)
				}
				checkWindow(t, w)
				if err == nil {
					t.Errorf("cut at %d of %d: no error", n, len(data))
					continue
				}
				if !errors.Is(err, ErrTraceTruncated) || !w.Truncated {
					t.Errorf("cut at %d: %v, truncated=%v", n, err, w.Truncated)
				}
				if w.Events < lastEvents {
					t.Errorf("cut at %d: %d events, fewer than at a shorter cut (%d)", n, w.Events, lastEvents)
				}
				lastEvents = w.Events
				if w.Events > 0 {
					partial++
				}
				if w.Events > full.Events {
					t.Errorf("cut at %d: %d events, more than the whole trace's %d", n, w.Events, full.Events)
				}
			}
			t.Logf("%d cuts of %d bytes, %d with a partial window", len(cuts), len(data), partial)
			if name == "gens.trace" && partial == 0 {
				t.Error("no cut of a trace of several generations gave a partial window")
			}
		})
	}
}

// Corrupt bytes give an error or a window, never a panic.
func TestAnalyzeTraceCorrupt(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "small.trace"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var failed int
	for i := range 2000 {
		b := bytes.Clone(data)
		for range 1 + i%4 {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		w, err := AnalyzeTrace(bytes.NewReader(b), WindowOptions{Sites: true, MaxEvents: int64(rng.IntN(3)) * 1000})
		if w == nil {
			t.Fatal("nil window")
		}
		if err != nil {
			failed++
			if errors.Is(err, errAnalysis) {
				t.Errorf("corruption %d: %v", i, err)
			}
		}
	}
	t.Logf("%d of 2000 corrupted traces gave an error", failed)
}

func TestAnalyzeTraceMaxEvents(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "small.trace"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
	if err != nil || full.Truncated {
		t.Fatalf("%v, truncated %v", err, full.Truncated)
	}
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{MaxEvents: full.Events / 2})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, w)
	if !w.Truncated || w.Events != full.Events/2 || w.End >= full.End {
		t.Errorf("max %d events: %d events, truncated %v, end %d of %d", full.Events/2, w.Events, w.Truncated, w.End, full.End)
	}
}

// Since cuts the window to its last part: the events before only tell
// the goroutines' states.
func TestAnalyzeTraceSince(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "gens.trace"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	// The wall-clock time of the trace's start, from its first sync.
	r, err := trace.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := r.ReadEvent()
	if err != nil || ev.Kind() != trace.EventSync || ev.Sync().ClockSnapshot == nil {
		t.Fatalf("first event %v, %v: want a sync with a clock snapshot", ev, err)
	}
	cs := ev.Sync().ClockSnapshot
	startWall := cs.Wall.Add(time.Duration(full.Start - int64(cs.Trace)))
	half := time.Duration(full.Duration() / 2)

	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true, Since: startWall.Add(half)})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, w)
	if d := w.Start - (full.Start + int64(half)); trAbs(d) > int64(time.Millisecond) || w.End != full.End {
		t.Errorf("window [%d, %d], want [%d, %d]", w.Start, w.End, full.Start+int64(half), full.End)
	}
	var sleeper *GoStats
	for id, g := range w.Goroutines {
		f := full.Goroutines[id]
		if f == nil {
			t.Errorf("g%d: in the cut window, not in the whole", id)
			continue
		}
		if g.Busy > f.Busy || g.Sched > f.Sched || g.Idle > f.Idle || g.Polls > f.Polls {
			t.Errorf("g%d: more in the cut window than in the whole: %+v vs %+v", id, *g, *f)
		}
		if !f.Exited && g.Total != w.Duration() && f.Total == full.Duration() {
			t.Errorf("g%d: total %d, want the window's %d", id, g.Total, w.Duration())
		}
		if strings.HasSuffix(g.StartFunc, "traceSleeper") {
			sleeper = g
		}
	}
	if sleeper == nil {
		t.Fatal("no sleeper in gens.trace")
	}
	fs := full.Goroutines[sleeper.ID]
	t.Logf("sleeper: %d polls in the last %v, %d in %v", sleeper.Polls, time.Duration(w.Duration()), fs.Polls, time.Duration(full.Duration()))
	if !trWithin(sleeper.Polls, fs.Polls*4/10, fs.Polls*6/10+1) {
		t.Errorf("sleeper: %d polls in the second half, %d in all", sleeper.Polls, fs.Polls)
	}
	// Since before the trace or after it: the whole window, an empty one.
	w, _ = AnalyzeTrace(bytes.NewReader(data), WindowOptions{Since: startWall.Add(-time.Hour)})
	if w.Start != full.Start || w.End != full.End {
		t.Errorf("since an hour before: [%d, %d], want [%d, %d]", w.Start, w.End, full.Start, full.End)
	}
	w, _ = AnalyzeTrace(bytes.NewReader(data), WindowOptions{Since: startWall.Add(time.Hour)})
	checkWindow(t, w)
	if w.Duration() != 0 {
		t.Errorf("since an hour after: window of %d", w.Duration())
	}
}

// Parsing on a second goroutine gives the same window.
func TestAnalyzeTraceParallel(t *testing.T) {
	live := recordTrace(t, mixedWorkload)
	gens, err := os.ReadFile(filepath.Join("testdata", "traces", "gens.trace"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"mixed (live)": live, "gens.trace": gens} {
		t.Run(name, func(t *testing.T) {
			seq, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
			if err != nil {
				t.Fatal(err)
			}
			par, err := AnalyzeTrace(struct{ io.Reader }{bytes.NewReader(data)}, WindowOptions{Sites: true, Parallel: true})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(seq, par) {
				t.Errorf("parallel analysis differs: %d events, %d goroutines, %d sites; sequential %d, %d, %d",
					par.Events, len(par.Goroutines), len(par.Sites), seq.Events, len(seq.Goroutines), len(seq.Sites))
			}
			// Cut: the same partial window and error.
			cut := data[:len(data)*2/3]
			seqCut, err1 := AnalyzeTrace(bytes.NewReader(cut), WindowOptions{Sites: true})
			parCut, err2 := AnalyzeTrace(struct{ io.Reader }{bytes.NewReader(cut)}, WindowOptions{Sites: true, Parallel: true})
			if err1 == nil || err2 == nil || err1.Error() != err2.Error() || !reflect.DeepEqual(seqCut, parCut) {
				t.Errorf("cut trace: sequential %v (%d events), parallel %v (%d events)", err1, seqCut.Events, err2, parCut.Events)
			}
		})
	}
}

// The builder and AnalyzeTrace agree, and Finalize is idempotent.
func TestWindowBuilderFinalize(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "small.trace"))
	if err != nil {
		t.Fatal(err)
	}
	w1, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	b := NewWindowBuilder(WindowOptions{Sites: true})
	w2 := b.Finalize()
	if len(w2.Goroutines) != 0 || w2.Events != 0 {
		t.Errorf("empty builder: %+v", w2)
	}
	if b.Finalize() != w2 {
		t.Error("Finalize is not idempotent")
	}
	if len(w1.Goroutines) == 0 || len(w1.Sites) == 0 {
		t.Errorf("small.trace: %d goroutines, %d sites", len(w1.Goroutines), len(w1.Sites))
	}
	for _, g := range w1.Goroutines {
		ts := g.TaskStats()
		if ts.BusyNS != g.Busy || ts.IdleNS != g.Idle || len(ts.IdleByReason) != len(g.IdleByReason) {
			t.Errorf("TaskStats %+v of %+v", ts, *g)
		}
	}
	for _, s := range w1.Sites {
		as := s.Site()
		if as.Reason != s.Reason || as.Location.Function != s.Location.Func || len(as.Waker) != len(s.Waker) {
			t.Errorf("Site %+v of %+v", as, *s)
		}
	}
}

// Wait reasons the trace does not give are read off the stack.
func TestReasonFromStack(t *testing.T) {
	fs := func(funcs ...string) []stack.Frame {
		var out []stack.Frame
		for _, f := range funcs {
			out = append(out, stack.Frame{Func: f})
		}
		return out
	}
	tests := []struct {
		raw    string
		frames []stack.Frame
		want   string
	}{
		{"", fs("runtime.gopark", "runtime.chanrecv", "runtime.chanrecv1", "main.f"), "chan receive"},
		{"", fs("runtime.gopark", "runtime.chansend", "runtime.chansend1", "main.f"), "chan send"},
		{"", fs("runtime.gopark", "runtime.selectgo", "main.f"), "select"},
		{"", fs("runtime.gopark", "runtime.block", "main.f"), "select (no cases)"},
		{"", fs("runtime.gopark", "runtime.goparkunlock", "runtime.semacquire1", "internal/sync.runtime_SemacquireMutex", "internal/sync.(*Mutex).lockSlow", "internal/sync.(*Mutex).Lock", "sync.(*Mutex).Lock", "main.f"), "sync.Mutex.Lock"},
		{"", fs("runtime.gopark", "runtime.goparkunlock", "runtime.semacquire1", "sync.runtime_SemacquireRWMutexR", "sync.(*RWMutex).RLock", "main.f"), "sync.RWMutex.RLock"},
		{"", fs("runtime.gopark", "runtime.goparkunlock", "runtime.semacquire1", "sync.runtime_SemacquireWaitGroup", "sync.(*WaitGroup).Wait", "main.f"), "sync.WaitGroup.Wait"},
		{"", fs("runtime.gopark", "runtime.goparkunlock", "runtime.notifyListWait", "sync.runtime_notifyListWait", "sync.(*Cond).Wait", "main.f"), "sync.Cond.Wait"},
		{"", fs("runtime.gopark", "time.Sleep", "main.f"), "sleep"},
		{"", fs("runtime.gopark", "runtime.netpollblock", "internal/poll.runtime_pollWait", "internal/poll.(*pollDesc).wait", "net.(*conn).Read"), "IO wait"},
		{"", fs("runtime.gopark", "runtime.gcBgMarkWorker"), "GC worker (idle)"},
		{"", fs("runtime.gopark", "runtime.goparkunlock", "runtime.semacquire1", "runtime.semacquire", "main.f"), "semacquire"},
		{"", fs("runtime.gopark", "main.f"), "unknown"},
		{"", nil, "unknown"},
		{"sync", fs("sync.(*Mutex).Lock", "main.f"), "sync.Mutex.Lock"},
		{"sync", fs("main.f"), "semacquire"},
		{"forever", fs("runtime.chanrecv1", "main.f"), "chan receive (nil chan)"},
		{"forever", fs("runtime.chansend1", "main.f"), "chan send (nil chan)"},
		{"forever", fs("runtime.block", "main.f"), "select (no cases)"},
		{"forever", nil, "select (no cases)"},
		{"system goroutine wait", fs("runtime.forcegchelper"), "force gc (idle)"},
		{"system goroutine wait", fs("runtime.somethingNew"), "system goroutine wait"},
		{"unspecified", nil, "unspecified"},
	}
	for _, tt := range tests {
		if got := reasonFromStack(tt.raw, tt.frames); got != tt.want {
			t.Errorf("reasonFromStack(%q, %v) = %q, want %q", tt.raw, tt.frames, got, tt.want)
		}
	}
	// Every trace reason maps to a dump reason or to the stack.
	for raw, dump := range traceReasons {
		if dump == "" && reasonFromStack(raw, nil) == "" {
			t.Errorf("trace reason %q maps to nothing", raw)
		}
	}
}

func FuzzAnalyzeTrace(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "small.trace"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(data[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		// Through an io.Reader of unknown length, to parse on two goroutines;
		// some windows cut short by For, as a trace file's steps are.
		opts := WindowOptions{Sites: true, Parallel: len(b)%2 == 0}
		if len(b)%3 == 0 {
			opts.For = time.Duration(len(b)%11) * time.Millisecond
		}
		w, err := AnalyzeTrace(struct{ io.Reader }{bytes.NewReader(b)}, opts)
		if w == nil {
			t.Fatal("nil window")
		}
		if errors.Is(err, errAnalysis) {
			t.Fatal(err)
		}
		checkWindow(t, w)
	})
}

// TestGenerateTraceFixtures rewrites testdata/traces with -update-traces:
//
//	go test ./internal/tracewin -run TestGenerateTraceFixtures -update-traces
//
// small.trace is ~20ms of a few goroutines that sleep, lock, receive and
// create goroutines (the fuzz seed); gens.trace spans two generations.
func TestGenerateTraceFixtures(t *testing.T) {
	if !*updateTraces {
		t.Skip("run with -update-traces to rewrite the fixtures")
	}
	small := recordTrace(t, func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		ch := make(chan int)
		mu.Lock()
		wg.Go(func() { mu.Lock(); mu.Unlock() })
		wg.Go(func() { <-ch })
		wg.Go(func() {
			for range 3 {
				time.Sleep(2 * time.Millisecond)
			}
		})
		time.Sleep(5 * time.Millisecond)
		mu.Unlock()
		ch <- 1
		wg.Wait()
	})
	gens := recordTrace(t, func() {
		stop := make(chan struct{})
		ids := make(chan int64, 1)
		go traceSleeper(ids, stop)
		<-ids
		time.Sleep(1200 * time.Millisecond)
		close(stop)
	})
	for name, b := range map[string][]byte{"small.trace": small, "gens.trace": gens} {
		p := filepath.Join("testdata", "traces", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", p, len(b))
	}
}

// With Since, AnalyzeTrace leaves out the generations that ended before
// the one before the window, and gives the same window as a parse of the
// whole trace: the kept generations' status events tell every goroutine's
// state at the window's start, and why it waits. Only the creation of
// goroutines created before them is lost.
func TestAnalyzeTraceSinceSkipsGenerations(t *testing.T) {
	fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: 10 * time.Second})
	if err := fr.Start(); err != nil {
		t.Skipf("flight recorder: %v", err)
	}
	defer fr.Stop()
	stop := make(chan struct{})
	ids := make(chan int64, 1)
	go traceSleeper(ids, stop)
	<-ids
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				spin(20_000)
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		})
	}
	// Each WriteTo starts a generation: six of about 80ms.
	var bounds []time.Time
	for range 6 {
		time.Sleep(80 * time.Millisecond)
		bounds = append(bounds, time.Now())
		if _, err := fr.WriteTo(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(80 * time.Millisecond)
	var buf bytes.Buffer
	if _, err := fr.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	data := buf.Bytes()

	// The whole trace, without leaving anything out.
	whole := func(since time.Time) *Window {
		r, err := trace.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b := NewWindowBuilder(WindowOptions{Sites: true, Since: since})
		for {
			ev, err := r.ReadEvent()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b.Event(&ev)
		}
		return b.Finalize()
	}
	all := whole(time.Time{})
	for _, c := range []struct {
		name  string
		since time.Time
		skip  bool
	}{
		{"before the trace", time.Now().Add(-time.Hour), false},
		{"in the second generation", bounds[0].Add(40 * time.Millisecond), false},
		{"mid-generation", bounds[3].Add(-40 * time.Millisecond), true},
		{"just after a boundary", bounds[3].Add(time.Millisecond), true},
		{"in the last generation", bounds[5].Add(40 * time.Millisecond), true},
		{"after the trace", time.Now().Add(time.Hour), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := whole(c.since)
			got, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true, Since: c.since})
			if err != nil {
				t.Fatal(err)
			}
			checkWindow(t, got)
			// Parsing on a second goroutine: the same window.
			par, err := AnalyzeTrace(struct{ io.Reader }{bytes.NewReader(data)}, WindowOptions{Sites: true, Since: c.since, Parallel: true})
			if err != nil || !reflect.DeepEqual(par, got) {
				t.Errorf("parallel analysis differs (%v): %d events, %d goroutines; sequential %d, %d", err, par.Events, len(par.Goroutines), got.Events, len(got.Goroutines))
			}
			// A bytes.Buffer is cut in place: the same bytes, the same window.
			streamed, err := io.ReadAll(newGenSkipper(bytes.NewReader(data), c.since))
			if err != nil {
				t.Fatal(err)
			}
			inPlace, _ := io.ReadAll(newGenSkipper(bytes.NewBuffer(slices.Clone(data)), c.since))
			if !bytes.Equal(streamed, inPlace) {
				t.Errorf("cut in place: %d bytes, streamed %d", len(inPlace), len(streamed))
			}
			if skipped := got.Events < all.Events; skipped != c.skip {
				t.Errorf("%d events of %d: skipped %v, want %v", got.Events, all.Events, skipped, c.skip)
			}
			t.Logf("%d of %d events, window %v", got.Events, all.Events, time.Duration(got.Duration()))
			if got.Start != want.Start || got.End != want.End {
				t.Errorf("window [%d, %d], want [%d, %d]", got.Start, got.End, want.Start, want.End)
			}
			for id, w := range want.Goroutines {
				g := got.Goroutines[id]
				if g == nil {
					t.Errorf("g%d missing", id)
					continue
				}
				reasons := g.WaitReason == w.WaitReason && reflect.DeepEqual(g.IdleByReason, w.IdleByReason)
				if g.ReasonInferred && !w.ReasonInferred && len(g.IdleByReason) <= 1 && g.Idle == g.Total {
					// Waiting since before the generations read: the reason
					// is read off the stack, as for a goroutine waiting since
					// before the trace.
					reasons = true
				}
				if strings.HasPrefix(w.StartFunc, "runtime.") {
					// The runtime's own goroutines (the scavenger) wait at
					// places whose reason the trace and the stack name
					// differently ("sleep" in scavengerState.sleep, "GC
					// scavenge wait" from the stack): the numbers must agree.
					reasons = true
				}
				if g.State != w.State || !reasons || g.Exited != w.Exited || g.Total != w.Total ||
					g.Busy != w.Busy || g.Sched != w.Sched || g.Idle != w.Idle || g.Syscall != w.Syscall ||
					g.Polls != w.Polls || g.LongestRun != w.LongestRun ||
					!reflect.DeepEqual(g.RunTimes, w.RunTimes) || !reflect.DeepEqual(g.SchedDelays, w.SchedDelays) {
					t.Errorf("g%d:\n got %+v\nwant %+v", id, *g, *w)
				}
			}
			if len(got.Goroutines) != len(want.Goroutines) {
				t.Errorf("%d goroutines, want %d", len(got.Goroutines), len(want.Goroutines))
			}
			// Sites of equal wait come in the order they were first met. A
			// site where only goroutines whose reason was inferred wait
			// may be named by another reason.
			key := func(s *SiteStats) string {
				return s.Reason + " " + s.Location.Func + ":" + strconv.Itoa(s.Location.Line)
			}
			inferredOnly := func(s *SiteStats) bool {
				if strings.HasPrefix(s.Location.Func, "runtime.") {
					return true // as above: the runtime's own waits
				}
				for _, id := range s.Tasks {
					if g := got.Goroutines[id]; g == nil || !g.ReasonInferred {
						return false
					}
				}
				return s.Wakeups == 0 && s.Waiting == len(s.Tasks)
			}
			gotSites, wantSites := map[string]*SiteStats{}, map[string]*SiteStats{}
			for _, s := range got.Sites {
				gotSites[key(s)] = s
			}
			for _, s := range want.Sites {
				wantSites[key(s)] = s
			}
			for _, s := range got.Sites {
				if wantSites[key(s)] == nil && !inferredOnly(s) {
					t.Errorf("site %s: not in the whole trace's window: %+v", key(s), *s)
				}
			}
			for i := range want.Sites {
				g, w := gotSites[key(want.Sites[i])], want.Sites[i]
				if g == nil {
					if !inferredOnly(w) {
						t.Errorf("site %d (%s) missing", i, key(w))
					}
					continue
				}
				if strings.HasPrefix(w.Location.Func, "runtime.") {
					// The runtime's own waits: their time may be split
					// between the trace's reason and the stack's (see the
					// goroutines above, whose numbers are checked).
					continue
				}
				if g.Reason != w.Reason || g.Location != w.Location || g.Waiting != w.Waiting || g.WaitNS != w.WaitNS ||
					g.Wakeups != w.Wakeups || !reflect.DeepEqual(g.Waker, w.Waker) || !reflect.DeepEqual(g.Tasks, w.Tasks) {
					t.Errorf("site %d:\n got %+v\nwant %+v", i, *g, *w)
				}
			}
		})
	}
}

// A cut or garbled trace reads the same with or without Since.
func TestGenSkipperPassesBadInput(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "gens.trace"))
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-time.Hour)
	for _, in := range [][]byte{data[:10], data[:100], data[:len(data)/2], data[:len(data)-1],
		append(slices.Clone(data[:len(data)/2]), 0xff, 0xff), []byte("go 1.21 trace\x00\x00\x00rest")} {
		got, err := io.ReadAll(newGenSkipper(bytes.NewReader(in), long))
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("%d bytes in: %d out, %v", len(in), len(got), err)
		}
		if got, _ := io.ReadAll(newGenSkipper(bytes.NewBuffer(slices.Clone(in)), long)); !bytes.Equal(got, in) {
			t.Errorf("%d bytes in a buffer: %d out", len(in), len(got))
		}
	}
}

// leafStop ends leafHog, which sets leafDone. Package variables, so that
// leafHog needs no closure and no frame.
var leafStop, leafDone atomic.Bool

// leafHog burns CPU in a function without a frame of its own: started with
// go leafHog(), the runtime's frame-pointer unwinding finds nothing below
// its asynchronous preemption.
func leafHog() {
	for !leafStop.Load() {
	}
	leafDone.Store(true)
}

// startLeafHog starts leafHog and returns a function that stops it.
func startLeafHog() (stop func()) {
	leafStop.Store(false)
	leafDone.Store(false)
	go leafHog()
	return func() {
		leafStop.Store(true)
		for !leafDone.Load() {
			time.Sleep(time.Millisecond)
		}
	}
}

// A goroutine that computes in a leaf function from before the trace: the
// stacks its preemptions record hold only the runtime's preemption frames,
// and must not name it or place it.
func TestWindowLeafHogIsNotNamedAfterItsPreemption(t *testing.T) {
	stop := startLeafHog()
	time.Sleep(50 * time.Millisecond)
	data := recordTrace(t, func() { time.Sleep(300 * time.Millisecond) })
	stop()
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, w)
	hogs := 0
	for _, g := range w.Goroutines {
		if g.Busy < w.Duration()/2 {
			continue
		}
		hogs++
		t.Logf("g%d: busy %v, start %q, location %v, stack %v", g.ID, time.Duration(g.Busy), g.StartFunc, g.Location(), g.Stack)
		for _, f := range []string{g.StartFunc, g.Location().Func} {
			if strings.HasPrefix(f, "runtime.asyncPreempt") {
				t.Errorf("g%d is named or placed after its preemption: start %q, location %v", g.ID, g.StartFunc, g.Location())
			}
		}
	}
	if hogs == 0 {
		t.Fatal("no goroutine busy half the window: the hog is not in it")
	}
}
