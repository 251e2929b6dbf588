package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gopsagent "github.com/google/gops/agent"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/source/remote"
)

// pprofServer serves this test process's net/http/pprof on loopback, as a
// plain program would, and counts the full dumps asked of it.
func pprofServer(t *testing.T) (url string, dumps *atomic.Int32) {
	url, dumps, _ = countingPprofServer(t)
	return url, dumps
}

// countingPprofServer is pprofServer, which also counts every request.
func countingPprofServer(t *testing.T) (url string, dumps, requests *atomic.Int32) {
	t.Helper()
	dumps, requests = new(atomic.Int32), new(atomic.Int32)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/goroutine" && r.URL.Query().Get("debug") == "2" {
			dumps.Add(1)
		}
		httppprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, dumps, requests
}

// Goroutines parked in known places of this file.
func remoteReceive(c chan int) { <-c }

func remoteLock(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

func remoteSleep(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parkGoroutines starts two labelled receivers, a mutex waiter and a sleeper
// until the test ends.
func parkGoroutines(t *testing.T) {
	c := make(chan int)
	stop := make(chan struct{})
	var mu sync.Mutex
	mu.Lock()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels("task", "remote-receiver"), func(context.Context) { remoteReceive(c) })
		})
	}
	wg.Go(func() { remoteLock(&mu) })
	wg.Go(func() { remoteSleep(stop) })
	t.Cleanup(func() {
		close(c)
		close(stop)
		mu.Unlock()
		wg.Wait()
	})
	time.Sleep(50 * time.Millisecond)
}

func tasksNamed(s *api.Snapshot, name string) []api.Task {
	var out []api.Task
	for _, t := range s.Tasks {
		if t.Name == name {
			out = append(out, t)
		}
	}
	return out
}

func hasNote(s *api.Snapshot, sub string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// A program that serves only net/http/pprof: the model is computed here from
// its goroutine profile, a trace and a dump within the budget.
func TestRemotePprof(t *testing.T) {
	parkGoroutines(t)
	url, dumps, requests := countingPprofServer(t)
	ctx := t.Context()
	r := remote.New(remote.NewPprofFetcher(url, ""), remote.Options{})
	began := time.Now()
	snap, err := r.Snapshot(ctx, time.Second)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(snap.Source, "dump") || !strings.Contains(snap.Source, "computed in inspect-cli from net/http/pprof") {
		t.Errorf("source %q: want a dump, computed in inspect-cli", snap.Source)
	}
	// The target traced for a second, and longer on a loaded machine, but
	// no longer than the snapshot took.
	if w := time.Duration(snap.WindowNS); w < 800*time.Millisecond || w > took {
		t.Errorf("window %v, want a second or more, within the %v the snapshot took", w, took)
	}
	if dumps.Load() != 1 {
		t.Errorf("%d dumps, want 1 (a second after attaching, 1%% allows one of %d goroutines)", dumps.Load(), runtime.NumGoroutine())
	}
	if !hasNote(snap, "taken now") || !hasNote(snap, "model computed in inspect-cli") {
		t.Errorf("notes do not say a dump was taken and the model computed here: %q", snap.Notes)
	}
	recv := tasksNamed(snap, "remote-receiver")
	if len(recv) != 2 {
		t.Fatalf("%d tasks named remote-receiver, want 2", len(recv))
	}
	for _, task := range recv {
		if task.State != "waiting" || task.WaitReason != "chan receive" || task.Location.Function != "github.com/inspectd/inspectd/internal/source/remote_test.remoteReceive" ||
			!strings.HasSuffix(task.Location.File, "remote_test.go") || task.Labels["task"] != "remote-receiver" || task.CreatedBy.Function == "" {
			t.Errorf("receiver: %+v", task)
		}
	}
	var locker, sleeper *api.Task
	for i := range snap.Tasks {
		switch snap.Tasks[i].Location.Function {
		case "github.com/inspectd/inspectd/internal/source/remote_test.remoteLock":
			locker = &snap.Tasks[i]
		case "github.com/inspectd/inspectd/internal/source/remote_test.remoteSleep":
			sleeper = &snap.Tasks[i]
		}
	}
	if locker == nil || locker.State != "waiting" || locker.WaitReason != "sync.Mutex.Lock" {
		t.Errorf("locker: %+v", locker)
	}
	if sleeper == nil || sleeper.Stats.Polls < 40 || sleeper.Stats.IdleByReason["sleep"] < sleeper.Stats.TotalNS/2 {
		t.Errorf("sleeper: want ~100 polls asleep: %+v", sleeper)
	}
	if p := snap.Process; p.Goroutines < 5 || p.Threads < 2 || p.GoVersion != "go1.26+" || p.Leaked < 0 {
		t.Errorf("process: %+v; want goroutines, threads, go1.26+ (trace format) and a leak count", p)
	}
	found := false
	for _, s := range snap.Sites {
		if s.Reason == "sync.Mutex.Lock" && strings.HasSuffix(s.Location.File, "remote_test.go") && s.Waiting == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no sync.Mutex.Lock site in remote_test.go: %+v", snap.Sites)
	}

	// The detail reads the last snapshot: nothing is asked of the target.
	asked := requests.Load()
	task, err := r.Task(ctx, sleeper.ID, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load() - asked; task.RunTimes() == nil || task.RunTimes().Count == 0 || task.SchedDelay() == nil || len(task.Stack()) == 0 || n > 0 {
		t.Errorf("task detail lacks histograms or stack, or asked the target %d times: %+v", n, task)
	}
	if _, err := r.Task(ctx, 1<<40, time.Second); !errors.Is(err, api.ErrNoTask) {
		t.Errorf("unknown task: %v", err)
	}
}

// With a budget too small for any dump, no dump is asked for and the notes
// say where the labels come from instead: the goroutine profile.
func TestRemoteTinyBudget(t *testing.T) {
	parkGoroutines(t)
	url, dumps := pprofServer(t)
	r := remote.New(remote.NewPprofFetcher(url, ""), remote.Options{DumpBudget: 1e-9})
	snap, err := r.Snapshot(t.Context(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if dumps.Load() != 0 || strings.Contains(snap.Source, "dump") {
		t.Errorf("%d dumps, source %q: want none", dumps.Load(), snap.Source)
	}
	if !hasNote(snap, "no goroutine dump: one would stop the target's world") || !hasNote(snap, "labels are from the goroutine profile") {
		t.Errorf("notes do not say why there is no dump: %q", snap.Notes)
	}
	if recv := tasksNamed(snap, "remote-receiver"); len(recv) != 2 || recv[0].Labels["task"] != "remote-receiver" {
		t.Errorf("receivers not named from the goroutine profile's labels: %+v", recv)
	}

	// Dumps off.
	r = remote.New(remote.NewPprofFetcher(url, ""), remote.Options{DumpBudget: -1})
	if snap, err = r.Snapshot(t.Context(), 200*time.Millisecond); err != nil || dumps.Load() != 0 || !hasNote(snap, "dumps are off") {
		t.Errorf("dumps off: %v, %d dumps, notes %q", err, dumps.Load(), snap.Notes)
	}
}

// slowDumps makes every dump take 20ms to read, as a big one would.
type slowDumps struct{ remote.Fetcher }

func (s slowDumps) Dump(ctx context.Context) (io.ReadCloser, error) {
	rc, err := s.Fetcher.Dump(ctx)
	if err != nil {
		return nil, err
	}
	time.Sleep(20 * time.Millisecond)
	return rc, nil
}

// The first dump is allowed by its estimate from the goroutine count; the
// next one by the measured duration of the first: 20ms at 0.5% waits 4s.
func TestRemoteBudgetFromMeasuredDump(t *testing.T) {
	url, dumps := pprofServer(t)
	r := remote.New(slowDumps{remote.NewPprofFetcher(url, "")}, remote.Options{DumpBudget: 0.005})
	var snap *api.Snapshot
	for range 2 {
		var err error
		if snap, err = r.Snapshot(t.Context(), 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if dumps.Load() != 1 || strings.Contains(snap.Source, "dump") {
		t.Errorf("%d dumps, last source %q: want 1 dump, none in the second snapshot", dumps.Load(), snap.Source)
	}
	if !regexp.MustCompile(`from a goroutine dump [\d.]+m?s ago`).MatchString(strings.Join(snap.Notes, "\n")) {
		t.Errorf("notes do not say the labels come from the older dump: %q", snap.Notes)
	}
}

// cutTrace serves a saved trace cut short instead of tracing.
type cutTrace struct {
	remote.Fetcher
	data []byte
}

func (c cutTrace) Trace(ctx context.Context, d time.Duration) (io.ReadCloser, time.Duration, error) {
	return io.NopCloser(bytes.NewReader(c.data)), d, nil
}

func TestRemoteBadTargets(t *testing.T) {
	ctx := t.Context()
	// Nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = remote.New(remote.NewPprofFetcher(addr, ""), remote.Options{}).Snapshot(ctx, time.Second)
	if err == nil || !strings.Contains(err.Error(), "http://"+addr+"/debug/pprof/goroutine?debug=0") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %v; want the URL and connection refused", err)
	}
	// A web server without pprof.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err = remote.New(remote.NewPprofFetcher(srv.URL, ""), remote.Options{}).Snapshot(ctx, time.Second)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 404 || !strings.Contains(err.Error(), "/debug/pprof/goroutine?debug=0: 404") {
		t.Errorf("no pprof: %v; want the URL and 404", err)
	}
	// One that answers anything with a page.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hello</html>") }))
	defer html.Close()
	_, err = remote.New(remote.NewPprofFetcher(html.URL, ""), remote.Options{}).Snapshot(ctx, time.Second)
	if err == nil || !strings.Contains(err.Error(), "not a pprof profile") {
		t.Errorf("html: %v", err)
	}

	// A trace cut in the middle gives a note and what was read.
	parkGoroutines(t)
	url, _ := pprofServer(t)
	data, err := os.ReadFile("../../tracewin/testdata/traces/gens.trace")
	if err != nil {
		t.Fatal(err)
	}
	r := remote.New(cutTrace{remote.NewPprofFetcher(url, ""), data[:len(data)*3/4]}, remote.Options{})
	snap, err := r.Snapshot(ctx, time.Second)
	if err != nil {
		t.Fatalf("cut trace: %v", err)
	}
	if !hasNote(snap, "cut short or corrupt") {
		t.Errorf("cut trace: no note: %q", snap.Notes)
	}
	// Garbage instead of a trace: the dump alone, with a note.
	r = remote.New(cutTrace{remote.NewPprofFetcher(url, ""), []byte("go 1.26 trace\x00\x00\x00garbage")}, remote.Options{DumpBudget: 1})
	if snap, err = r.Snapshot(ctx, time.Second); err != nil {
		t.Fatalf("garbage trace: %v", err)
	}
	if !hasNote(snap, "no usable execution trace") || !hasNote(snap, "no trace window") || len(tasksNamed(snap, "remote-receiver")) != 2 {
		t.Errorf("garbage trace: want the dump's tasks and notes: %q, %d tasks", snap.Notes, len(snap.Tasks))
	}
	// Garbage and no dump allowed: an error that says both.
	r = remote.New(cutTrace{remote.NewPprofFetcher(url, ""), []byte("garbage")}, remote.Options{DumpBudget: -1})
	if _, err = r.Snapshot(ctx, time.Second); err == nil || !strings.Contains(err.Error(), "no execution trace") {
		t.Errorf("garbage trace, no dumps: %v", err)
	}
}

// startProg runs a built pprofprog and returns its pprof URL.
func startProg(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("pprofprog: %q, %v", line, err)
	}
	base := "http://" + addr
	waitProgParked(t, base)
	return base
}

// waitProgParked waits until pprofprog's goroutines wait where the tests
// look for them: three receivers in chan receive, the locker in Lock.
func waitProgParked(t *testing.T, base string) {
	t.Helper()
	parked := func(dump, fn, state string) int {
		n := 0
		for g := range strings.SplitSeq(dump, "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "["+state) && strings.Contains(g, "\nmain."+fn+"(") {
				n++
			}
		}
		return n
	}
	var dump string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/debug/pprof/goroutine?debug=2"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			dump = string(b)
			if parked(dump, "receive", "chan receive") == 3 && parked(dump, "lock", "sync.Mutex.Lock") == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pprofprog's goroutines did not park in 30s:\n%s", dump)
		}
	}
}

// checkProg checks the model of testdata/pprofprog.
func checkProg(t *testing.T, snap *api.Snapshot) {
	t.Helper()
	recv := tasksNamed(snap, "receiver")
	if len(recv) != 3 {
		t.Errorf("%d tasks named receiver (labels from the goroutine profile), want 3", len(recv))
	}
	for _, task := range recv {
		if task.State != "waiting" || task.WaitReason != "chan receive" || task.Location.Function != "main.receive" || !strings.HasSuffix(task.Location.File, "main.go") {
			t.Errorf("receiver: %+v", task)
		}
	}
	locks := 0
	for _, task := range snap.Tasks {
		if task.Location.Function == "main.lock" && task.WaitReason == "sync.Mutex.Lock" {
			locks++
		}
	}
	if locks != 1 {
		t.Errorf("%d tasks waiting in main.lock on sync.Mutex.Lock, want 1", locks)
	}
}

// The same against real programs: testdata/pprofprog built with this Go
// (labels in dumps, the goroutineleak profile) and with the machine's own
// older Go, if there is one (neither).
func TestRemoteSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	dir := t.TempDir()
	t.Run("this go", func(t *testing.T) {
		bin := filepath.Join(dir, "pprofprog")
		if out, err := exec.Command("go", "build", "-o", bin, "./testdata/pprofprog").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		r := remote.New(remote.NewPprofFetcher(startProg(t, bin), ""), remote.Options{})
		snap, err := r.Snapshot(t.Context(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkProg(t, snap)
		if snap.Process.Leaked < 1 {
			t.Errorf("leaked %d, want main.leak's goroutine", snap.Process.Leaked)
		}
		for _, task := range snap.Tasks {
			if task.Location.Function == "main.leak" && !task.Leaked {
				t.Errorf("main.leak's goroutine not marked leaked: %+v", task)
			}
		}
	})
	t.Run("local go", func(t *testing.T) {
		goTool, v := olderGo()
		if goTool == "" {
			t.Skip("no Go older than 1.27 on this machine")
		}
		src := filepath.Join(dir, "old")
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		prog, err := os.ReadFile("testdata/pprofprog/main.go")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(src, "main.go"), prog, 0o644)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module pprofprog\n\ngo 1.22\n"), 0o644)
		bin := filepath.Join(dir, "pprofprog-old")
		build := exec.Command(goTool, "build", "-o", bin, ".")
		build.Dir = src
		build.Env = append(localGoEnv(), "GOFLAGS=", "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("%s build: %v\n%s", v, err, out)
		}
		r := remote.New(remote.NewPprofFetcher(startProg(t, bin), ""), remote.Options{})
		snap, err := r.Snapshot(t.Context(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkProg(t, snap)
		if snap.Process.Leaked != -1 || !hasNote(snap, "serves no goroutineleak profile") {
			t.Errorf("%s: leaked %d, notes %q: want -1 and a note", v, snap.Process.Leaked, snap.Notes)
		}
		if !strings.Contains(snap.Source, "dump") {
			t.Errorf("%s: source %q, want a dump", v, snap.Source)
		}
	})
}

// olderGo finds a go command older than 1.27 on this machine (the system's
// own, besides the toolchain the tests run with) and its version.
func olderGo() (goTool, version string) {
	dirs := append(filepath.SplitList(os.Getenv("PATH")), "/usr/local/go/bin", "/usr/lib/go/bin")
	for _, dir := range dirs {
		p := filepath.Join(dir, "go")
		if dir == "" || dir == filepath.Join(runtime.GOROOT(), "bin") {
			continue
		}
		cmd := exec.Command(p, "env", "GOVERSION")
		cmd.Env = localGoEnv()
		out, err := cmd.Output()
		v := strings.TrimSpace(string(out))
		if err == nil && strings.HasPrefix(v, "go1.") && versionBefore(v, 1, 27) {
			return p, v
		}
	}
	return "", ""
}

// localGoEnv is the environment for another go command: without the GOROOT
// the go command running the tests sets, and with its own toolchain.
func localGoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOROOT=") && !strings.HasPrefix(kv, "GOTOOLCHAIN=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOTOOLCHAIN=local")
}

// versionBefore reports whether goVersion (go1.N...) is older than go1.minor.
func versionBefore(goVersion string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(goVersion, "go%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}

// The gops agent's stats, version and dump, its port file, and a plain
// HTTP server told from it.
func TestGopsFetcher(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("GOPS_CONFIG_DIR", cfg)
	if err := gopsagent.Listen(gopsagent.Options{ConfigDir: cfg}); err != nil {
		t.Fatal(err)
	}
	defer gopsagent.Close()
	addr, file, err := remote.GopsAddr(os.Getpid())
	if err != nil || file != filepath.Join(cfg, fmt.Sprint(os.Getpid())) {
		t.Fatalf("GopsAddr: %q %q %v", addr, file, err)
	}
	ctx := t.Context()
	if v, err := remote.GopsVersion(ctx, addr); err != nil || v != runtime.Version() {
		t.Errorf("GopsVersion: %q, %v; want %s", v, err, runtime.Version())
	}
	g := remote.NewGopsFetcher(addr)
	st, err := g.Stats(ctx)
	if err != nil || st.Goroutines < 2 || st.Threads < 2 || st.GOMAXPROCS != runtime.GOMAXPROCS(0) || st.GoVersion != runtime.Version() {
		t.Errorf("Stats: %+v, %v", st, err)
	}
	rc, err := g.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := dump.ParseDump(rc)
	rc.Close()
	if err != nil || len(gs) < 2 {
		t.Errorf("Dump: %d goroutines, %v", len(gs), err)
	}
	if _, err := g.GoroutineProfile(ctx); !errors.Is(err, source.ErrUnsupported) {
		t.Errorf("GoroutineProfile: %v, want ErrUnsupported", err)
	}

	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := remote.GopsVersion(ctx, strings.TrimPrefix(srv.URL, "http://")); err == nil || !strings.Contains(err.Error(), "is an HTTP server, not a gops agent") {
		t.Errorf("an HTTP server as a gops agent: %v; want an error that says it is an HTTP server", err)
	}
	if _, _, err := remote.GopsAddr(1 << 30); err == nil {
		t.Error("GopsAddr of a process without agent: no error")
	}
}

// A trace past its cap, per second of window, fails the snapshot with a
// LimitError, whatever the dump could have given.
func TestRemoteTraceCap(t *testing.T) {
	parkGoroutines(t)
	url, _ := pprofServer(t)
	data, err := os.ReadFile("../../tracewin/testdata/traces/gens.trace")
	if err != nil {
		t.Fatal(err)
	}
	lim := remote.DefaultLimits()
	lim.TracePerSecond = int64(len(data)) / 4
	r := remote.New(cutTrace{remote.NewPprofFetcher(url, ""), data}, remote.Options{DumpBudget: 1, Limits: lim})
	_, err = r.Snapshot(t.Context(), time.Second)
	if le, ok := remote.AsLimit(err); !ok || le.Kind != remote.CapTrace {
		t.Errorf("a trace of %d bytes under a cap of %d a second: %v; want a trace LimitError", len(data), lim.TracePerSecond, err)
	}
	// Within the cap, the same trace is read.
	lim.TracePerSecond = int64(len(data))
	r = remote.New(cutTrace{remote.NewPprofFetcher(url, ""), data}, remote.Options{DumpBudget: 1, Limits: lim})
	if _, err = r.Snapshot(t.Context(), time.Second); err != nil {
		t.Errorf("within the cap: %v", err)
	}
}
