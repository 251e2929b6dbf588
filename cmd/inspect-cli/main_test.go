package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/agent"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/daemon"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/tracewin"
	"github.com/inspectd/inspectd/internal/workload"
)

const fixtureDump = "../../internal/dump/testdata/dumps/dump-go1.27.3-labels.txt"

// cli runs the command line in process, as a user would type it.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// startDaemon runs a real inspectd on a free loopback port until the test ends.
func startDaemon(t *testing.T) string {
	t.Helper()
	cfg := daemon.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.GopsAddr = "off"
	cfg.Workloads = []string{"blocking-lock", "hello"}
	d, err := daemon.Start(cfg, workload.Default, daemon.NewLogger(cfg, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	// Let the flight recorder see the workloads block.
	time.Sleep(time.Second)
	return d.Addr()
}

func TestCLIAgainstDaemon(t *testing.T) {
	addr := startDaemon(t)

	var waiterID int64
	t.Run("tasks", func(t *testing.T) {
		// The holder lets go of the lock for 20ms in every 220ms: a
		// snapshot taken then finds the waiters between two Locks. Ask
		// again, as a user would.
		var out string
		deadline := time.Now().Add(time.Minute)
		for try := 1; ; try++ {
			o, errs, code := cli(t, "tasks", addr, "--filter", "workload=blocking-lock", "--limit", "0", "--window", "1s")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			out = o
			if !strings.HasPrefix(out, "target "+addr) || !strings.Contains(out, "GOMAXPROCS") {
				t.Errorf("no header line:\n%s", out)
			}
			waiting := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "blocking-lock/waiter") && strings.Contains(line, " waiting ") && strings.Contains(line, "sync.Mutex.Lock") {
					waiting++
				}
			}
			if waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no blocking-lock/waiter row waiting on sync.Mutex.Lock in %d snapshots over a minute; the last:\n%s", try, out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	t.Run("tasks json", func(t *testing.T) {
		out, errs, code := cli(t, "tasks", addr, "--filter", "blocking-lock/waiter", "--output", "json", "--window", "1s")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var s api.Snapshot
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("decoding: %v\n%s", err, out)
		}
		if len(s.Tasks) == 0 {
			t.Fatalf("no tasks:\n%s", out)
		}
		for _, task := range s.Tasks {
			if task.Labels["workload"] != "blocking-lock" {
				t.Errorf("filter let through task %d %q", task.ID, task.Name)
			}
		}
		waiterID = s.Tasks[0].ID
	})
	t.Run("task", func(t *testing.T) {
		if waiterID == 0 {
			t.Skip("no waiter found")
		}
		// A waiter runs only when the holder lets the lock go: a window too
		// short to hold one of those (the first after the tracer started)
		// has no run times to show yet.
		var out string
		for deadline := time.Now().Add(time.Minute); ; {
			o, errs, code := cli(t, "task", strconv.FormatInt(waiterID, 10), addr, "--window", "1s")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			out = o
			if strings.Contains(out, "p50") || time.Now().After(deadline) {
				break
			}
		}
		for _, want := range []string{"blocking-lock/waiter", "run times", "sched delays", "p50", "stack:", "blocking_lock.go", "busy", "created by"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		_, errs, code := cli(t, "task", "999999999", addr)
		if code != 1 || strings.Count(errs, "\n") != 1 {
			t.Errorf("unknown task: exit %d, stderr %q; want 1 and one line", code, errs)
		}
	})
	t.Run("sites", func(t *testing.T) {
		out, errs, code := cli(t, "sites", addr, "--window", "1s")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "REASON") || !strings.Contains(out, "blocking_lock.go") {
			t.Errorf("no blocking_lock.go site:\n%s", out)
		}
	})
	t.Run("workloads", func(t *testing.T) {
		out, errs, code := cli(t, "workloads", "start", "leak", addr, "--param", "every=50ms")
		if code != 0 || !strings.Contains(out, "leak: running") {
			t.Fatalf("start: exit %d: %s%s", code, out, errs)
		}
		out, errs, code = cli(t, "workloads", "list", addr)
		if code != 0 {
			t.Fatalf("list: exit %d: %s", code, errs)
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "leak" && f[2] == "running" {
				found = true
			}
		}
		if !found {
			t.Errorf("leak not running in:\n%s", out)
		}
		// Integers as integers, however large.
		if !strings.Contains(out, "max_bytes=268435456") || strings.Contains(out, "e+") {
			t.Errorf("parameters printed as floats:\n%s", out)
		}
		_, errs, code = cli(t, "workloads", "start", "contention", addr, "--param", "bogus_param=1")
		if code != 1 || !strings.Contains(errs, "bogus_param") || strings.Count(errs, "\n") != 1 {
			t.Errorf("bad param: exit %d, stderr %q; want 1 and one line naming bogus_param", code, errs)
		}
		_, errs, code = cli(t, "workloads", "start", "no-such-workload", addr)
		if code != 1 {
			t.Errorf("unknown workload: exit %d, stderr %q; want 1", code, errs)
		}
		// Stopped, it says what it ran with, not its defaults.
		if out, errs, code = cli(t, "workloads", "stop", "leak", addr); code != 0 || !strings.Contains(out, "leak: stopped") ||
			!strings.Contains(out, "ran with: every=50ms timeout=50ms") {
			t.Errorf("stop: exit %d: %s%s", code, out, errs)
		}
	})
	t.Run("agent pid", func(t *testing.T) {
		// An agent's port file names its address; the pid is enough.
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		dir, err := agent.PortDir()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// This process serves the daemon under test.
		pid := strconv.Itoa(os.Getpid())
		if err := os.WriteFile(filepath.Join(dir, pid), []byte(addr), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errs, code := cli(t, "workloads", pid)
		if code != 0 || !strings.Contains(out, "blocking-lock") {
			t.Errorf("exit %d: %s%s", code, out, errs)
		}
	})
	t.Run("stacks live", func(t *testing.T) {
		out, errs, code := cli(t, "stacks", addr, "--limit", "3")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "stops the target's world") || !strings.Contains(out, "goroutines ") {
			t.Errorf("no warning or groups:\n%s", out)
		}
	})
	t.Run("profile heap", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "heap.pb.gz")
		out, errs, code := cli(t, "profile", "heap", addr, "-o", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "go tool pprof -http : "+file) {
			t.Errorf("no open command:\n%s", out)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s does not start with the gzip magic: % x", file, b[:min(len(b), 8)])
		}
		// Not over a file unless --force; default names never collide.
		if _, errs, code := cli(t, "profile", "heap", addr, "-o", file); code != 2 || !strings.Contains(errs, "exists: pass --force") {
			t.Errorf("-o an existing file: exit %d, %q", code, errs)
		}
		if _, errs, code := cli(t, "profile", "heap", addr, "-o", file, "--force"); code != 0 {
			t.Errorf("--force: exit %d, %q", code, errs)
		}
		t.Chdir(filepath.Dir(file))
		for range 2 {
			if _, errs, code := cli(t, "profile", "heap", addr); code != 0 {
				t.Fatalf("default name: exit %d, %q", code, errs)
			}
		}
		names, _ := filepath.Glob("*")
		if heaps, _ := filepath.Glob("heap-*.pb.gz"); len(heaps) != 2 || len(names) != 3 {
			t.Errorf("two captures under default names, then %q in the directory; want heap.pb.gz and two heap-*.pb.gz", names)
		}
	})
	t.Run("profile bad output", func(t *testing.T) {
		// Refused before the capture's seconds, not after them.
		start := time.Now()
		_, errs, code := cli(t, "profile", "cpu", addr, "--seconds", "20", "-o", filepath.Join(t.TempDir(), "no", "such", "x.pb.gz"))
		if code != 2 || !strings.Contains(errs, "cannot write") || time.Since(start) > 15*time.Second {
			t.Errorf("exit %d after %s, %q; want 2 at once, cannot write", code, time.Since(start), errs)
		}
		if _, errs, code := cli(t, "profile", "fgprof", addr, "--seconds", "0"); code != 2 || !strings.Contains(errs, "want 1 or more") {
			t.Errorf("fgprof --seconds 0: exit %d, %q", code, errs)
		}
	})
	t.Run("profile --web", func(t *testing.T) {
		// The UI serves until interrupted: run it in the background, read
		// the printed URL, fetch the flame graph, then interrupt.
		file := filepath.Join(t.TempDir(), "goroutine.pb.gz")
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		var errs strings.Builder
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"profile", "goroutine", addr, "-o", file, "--web"}, pw, &errs)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		var url string
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "flame graph: "); ok {
				url, _, _ = strings.Cut(u, " ")
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if url == "" {
			cancel()
			t.Fatalf("no flame graph URL printed; exit %d: %s", <-done, errs.String())
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "runBlockingLock") {
			t.Errorf("GET %s: %d, flame graph without the workload's functions (%d bytes)", url, resp.StatusCode, len(body))
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d after interrupt: %s", code, errs.String())
		}
	})
	t.Run("trace", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "trace.out")
		out, errs, code := cli(t, "trace", addr, "--seconds", "1", "-o", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "go tool trace "+file) {
			t.Errorf("no open command:\n%s", out)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err := tracewin.AnalyzeTrace(f, tracewin.WindowOptions{})
		if err != nil {
			t.Fatalf("AnalyzeTrace: %v", err)
		}
		if len(w.Goroutines) == 0 {
			t.Errorf("trace has no goroutines")
		}
	})
}

func TestStacksFromDump(t *testing.T) {
	out, errs, code := cli(t, "stacks", fixtureDump)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"goroutines 108", "50: chan receive", "park.deep", "labels {role=parked,worker=1}", "created by park.Start"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	out, errs, code = cli(t, "stacks", fixtureDump, "--output", "json")
	var got struct {
		Groups []stackGroup `json:"groups"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Groups) == 0 || got.Groups[0].Count != 50 {
		t.Errorf("json: exit %d, %s, %d groups", code, errs, len(got.Groups))
	}
}

func TestTasksFromDump(t *testing.T) {
	out, errs, code := cli(t, "tasks", fixtureDump, "--filter", "role=parked", "--limit", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"source goroutine dump", "note: from a goroutine dump", "parked", "chan receive", "role=parked", "park.deep park.go:42", "more of 50 matching"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	out, errs, code = cli(t, "task", "20", fixtureDump)
	if code != 0 || !strings.Contains(out, "stack:") || !strings.Contains(out, "in goroutine 1 (parent)") {
		t.Errorf("task from dump: exit %d %s:\n%s", code, errs, out)
	}
}

// A dump alone shows the leaks the runtime marked: diagnose names every
// place a leaked goroutine waits (one finding a bug, with all its sites).
func TestDiagnoseDump(t *testing.T) {
	out, errs, code := cli(t, "diagnose", "../../internal/dump/testdata/crash/goroutineleak-debug2.txt")
	if code != 1 {
		t.Errorf("exit %d, stderr %q; want 1 (warnings found)", code, errs)
	}
	if !strings.Contains(out, "goroutine-leak  goroutine leak: ") {
		t.Errorf("no goroutine-leak finding in:\n%s", out)
	}
	for _, at := range []string{"main.go:41", "main.go:71", "main.go:86", "main.go:94"} {
		if !regexp.MustCompile(`(?m)^\s+at \S+ ` + regexp.QuoteMeta(at) + `$`).MatchString(out) {
			t.Errorf("no leak site at %s in:\n%s", at, out)
		}
	}
}

func TestUnreachableAndErrors(t *testing.T) {
	// A web server that is neither inspectd nor net/http/pprof.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<!DOCTYPE HTML>\n<html>\n<head><title>Error response</title></head>\n<body><p>File not found.</p></body>\n</html>\n")
	}))
	defer web.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks", "127.0.0.1:1"}, "cannot reach 127.0.0.1:1: connection refused"},
		{[]string{"workloads", "list", "127.0.0.1:1"}, "cannot reach 127.0.0.1:1"},
		{[]string{"profile", "heap", "127.0.0.1:1", "-o", filepath.Join(t.TempDir(), "x")}, "cannot reach 127.0.0.1:1"},
		{[]string{"tasks", "--sort", "nope", "127.0.0.1:1"}, "--sort \"nope\""},
		{[]string{"tasks", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"tasks", "no-such-file.txt"}, "no such file"},
		{[]string{"sites", fixtureDump}, "needs a live target"},
		{[]string{"tasks", t.TempDir()}, "is a directory"},
		{[]string{"workloads", "list", web.URL}, `workloads needs inspectd's lab (its /api/v1/workloads), not ` + web.URL + `, which does not serve the inspection API (/api/v1/tasks/0: 404: a page titled "Error response")`},
		{[]string{"profile", "heap", web.URL, "-o", filepath.Join(t.TempDir(), "x")}, `does not serve /debug/pprof/heap (404: a page titled "Error response")`},
	} {
		out, errs, code := cli(t, c.args...)
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", c.args, code, out, errs, c.want)
		}
	}
}

func TestTokenNeeded(t *testing.T) {
	// The daemon's real handler with a token (no prober: the token check comes first).
	srv := httptest.NewServer(server.New(server.Options{Token: "s3cret"}))
	defer srv.Close()
	_, errs, code := cli(t, "tasks", srv.URL)
	if code != 2 || !strings.Contains(errs, "needs a token") || !strings.Contains(errs, "--token") || strings.Count(errs, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 2 and one line asking for --token", code, errs)
	}
	// With the token the request passes the check and finds no snapshot
	// endpoint, but net/http/pprof (behind the token too): the model is
	// computed here.
	out, errs, code := cli(t, "tasks", srv.URL, "--token", "s3cret", "--window", "200ms")
	if code != 0 || !strings.Contains(out, "computed in inspect-cli from net/http/pprof") {
		t.Errorf("with token: exit %d, stderr %q\n%s", code, errs, out)
	}
	// A URL copied from the browser: the target is the server it is on.
	out, errs, code = cli(t, "tasks", srv.URL+"/debug/pprof/goroutine?debug=2", "--token", "s3cret", "--window", "200ms")
	if code != 0 || !strings.Contains(out, "computed in inspect-cli from net/http/pprof") {
		t.Errorf("the URL of an endpoint: exit %d, stderr %q\n%s", code, errs, out)
	}
}

// A target that takes the capture's request and then goes away (it exited)
// is not mistaken for a server that does not speak HTTP; the file it would
// have replaced stays.
func TestCaptureTargetGoesAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Read(make([]byte, 4096)) // the request
				time.Sleep(1500 * time.Millisecond)
				c.Close()
			}()
		}
	}()
	file := filepath.Join(t.TempDir(), "cpu.pb.gz")
	if err := os.WriteFile(file, []byte("an earlier capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := cli(t, "profile", "cpu", ln.Addr().String(), "--seconds", "5", "-o", file, "--force")
	if code != 2 || !strings.Contains(errs, "into the capture, before answering: the target exited") || strings.Contains(errs, "gops") {
		t.Errorf("exit %d, %q; want 2, the target gone during the capture", code, errs)
	}
	if b, _ := os.ReadFile(file); string(b) != "an earlier capture" {
		t.Errorf("the earlier capture was replaced by %q", b)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*")); len(names) != 1 {
		t.Errorf("left behind: %q", names)
	}
}

func TestBinaryHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := cliBinary(t)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("inspect-cli --help: %v\n%s", err, out)
	}
	for _, want := range []string{"tasks", "task", "sites", "stacks", "workloads", "profile", "trace", "--token", "--output"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "tasks", "127.0.0.1:1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("unreachable: %v, want exit status 2\n%s", err, out)
	}
}

// A finding about more goroutines than its evidence lists (the rules cap
// it at 100) counts them all.
func TestWriteFindingsCountsCappedTasks(t *testing.T) {
	f := api.Finding{Rule: "goroutine-leak", Severity: "critical", Title: "goroutine leak: 185 goroutines",
		Evidence: api.Evidence{Figures: map[string]float64{"goroutines": 185}}}
	for id := range int64(100) {
		f.Evidence.Tasks = append(f.Evidence.Tasks, id+1)
	}
	var b bytes.Buffer
	writeFindings(&b, "t", "s", "", []api.Finding{f}, nil)
	if !strings.Contains(b.String(), "goroutines: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 175 more") {
		t.Errorf("got:\n%s", b.String())
	}
}
