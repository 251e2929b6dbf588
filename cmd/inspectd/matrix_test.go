package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/daemon"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/workload"
)

// The acceptance matrix of the diagnosis rules: each broken workload, run
// alone in a real daemon process, makes its rule fire within 10 seconds at
// the right file:line and no other warning, and its fix (the parameter
// fix: true) makes the finding go within 30 seconds (a leak kept for good
// stays, and stops growing); the healthy workloads raise none.
// INSPECTD_MATRIX_OUT=FILE writes the results as a Markdown table.

// matrixCase is a broken workload and what must be said of it.
type matrixCase struct {
	workload, rule string
	file           string // the file the finding must point at
	line           string // a source line in file the finding must name, "" for any line of it
	stopFirst      bool   // the bug shows once the workload is stopped
}

var matrix = []matrixCase{
	{"leak", "goroutine-leak", "leak.go", "reply <- 42", false},
	{"deadlock", "deadlock", "deadlock.go", "to.mu.Lock()", false},
	{"blocking-lock", "lock-held-blocking", "blocking_lock.go", "slowCall(ctx, hold)", false},
	{"blocking-loop", "blocked-loop", "blocking_loop.go", "slowCall(ctx, call)", false},
	{"contention", "lock-contention", "contention.go", "mu.Lock()", false},
	{"starvation", "sched-starvation", "starvation.go", "", false},
	{"busy-poll", "busy-poll", "busy_poll.go", "", false},
	{"never-yield", "long-run", "never_yield.go", "burnCPU(ctx, run)", false},
	{"spawn-storm", "goroutine-explosion", "spawn_storm.go", `go s.env.Spawn(ctx, "node")`, false},
	{"unbounded-queue", "unbounded-growth", "unbounded_queue.go", "item := make([]byte, size)", false},
	{"thread-leak", "thread-growth", "thread_leak.go", "", false},
	{"ignored-cancel", "outlived-context", "ignored_cancel.go", "time.Sleep(step)", true},
	{"web-lock", "lock-held-blocking", "web_lock.go", "price, err := s.pricing.Quote(r.Context(), id)", false},
	{"web-ignored-ctx", "outlived-context", "web_ignored_ctx.go", "time.Sleep(step)", false},
	{"join-never-done", "waitgroup-stuck", "join_never_done.go", "b.wg.Wait()", false},
	{"fan-in-spin", "select-spin", "fan_in_spin.go", "select {", false},
	{"tracing-pileup", "unbounded-growth", "tracing_pileup.go", "line := make([]byte, 0, size)", false},
}

const (
	// detectTarget is how soon a rule should fire on a quiet machine;
	// detectWithin how long the test waits, so that it holds on a loaded
	// one (every time to detect is logged, for the table in BENCHMARKS.md).
	detectTarget = 10 * time.Second
	detectWithin = 20 * time.Second
	clearWithin  = 30 * time.Second
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// inspectdBinary builds the daemon once per test run.
func inspectdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "inspectd-matrix")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "inspectd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startDaemon runs the daemon with the given workloads on a free loopback
// port and returns its base URL; it is stopped with the test.
func startDaemon(t *testing.T, workloads string, flags ...string) string {
	t.Helper()
	// A whole core for building snapshots: the matrix checks what the rules
	// find and where. The default quarter core spaces builds by four times
	// their cost, and on a machine busy with other tests a build of
	// busy-poll's dense trace takes seconds, so its rule (which wants two
	// snapshots in a row) could wait past the 10 s; that spacing is measured
	// in BENCHMARKS.md, section 5.
	args := append([]string{"--workloads", workloads, "--listen", "127.0.0.1:0", "--gops-addr", "off",
		"--diagnose-interval", "1s", "--cpu-budget", "1", "--log-format", "json"}, flags...)
	cmd := exec.Command(inspectdBinary(t), args...)
	cmd.Env = append(os.Environ(), "GOPS_CONFIG_DIR="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`"addr":"([^"]+)"`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "inspectd listening") {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not report its address within 30s")
	}
	return ""
}

func findings(t *testing.T, base string) []api.Finding {
	t.Helper()
	c := api.NewClient(base, "")
	var fl api.FindingList
	// A build can take seconds: busy-poll's trace is dense with events, and
	// the machine runs other tests beside this one.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Do(ctx, http.MethodGet, "/api/v1/findings", nil, &fl); err != nil {
		t.Fatalf("GET /api/v1/findings: %v", err)
	}
	return fl.Findings
}

// lineOf returns the line number of the first line of the workload's
// source file that contains text.
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "workload", file))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, text)
	return 0
}

type matrixResult struct {
	c        matrixCase
	detected time.Duration
	site     string
	others   []string
	fixed    string // what the fix did to the finding
}

var (
	resultsMu sync.Mutex
	results   []matrixResult
	healthy   []string
)

func TestMatrixBroken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon per broken workload for up to 10s each")
	}
	for _, c := range matrix {
		t.Run(c.workload, func(t *testing.T) {
			base := startDaemon(t, c.workload)
			began := time.Now()
			if c.stopFirst {
				time.Sleep(3 * time.Second)
				cl := api.NewClient(base, "")
				// The rule knows a scope ended when it saw its starter alive
				// (or its goroutines created while it watched): on a loaded
				// machine the daemon's first snapshots may come after the
				// 3s, so the stop waits for two of its diagnosis rounds
				// over the workload's goroutines.
				seen := awaitSeen(t, cl, c.workload)
				for snap := seen; snap.Time.Before(seen.Time.Add(2 * time.Second)); {
					var err error
					if snap, err = cl.Snapshot(context.Background(), time.Second); err != nil {
						t.Fatalf("snapshot: %v", err)
					}
				}
				if _, err := cl.StopWorkload(context.Background(), c.workload); err != nil {
					t.Fatalf("stopping %s: %v", c.workload, err)
				}
				began = time.Now()
			}
			want := 0
			if c.line != "" {
				want = lineOf(t, c.file, c.line)
			}
			var got *api.Finding
			others := map[string]string{}
			for deadline := began.Add(detectWithin); time.Now().Before(deadline) && got == nil; time.Sleep(250 * time.Millisecond) {
				for _, f := range findings(t, base) {
					switch {
					case f.Rule == c.rule:
						got = &f
					case diagnose.AtLeastWarning(f):
						others[f.Rule] = f.Title
					}
				}
			}
			took := time.Since(began)
			if got == nil {
				t.Fatalf("%s: rule %s did not fire within %v (other findings: %v)", c.workload, c.rule, detectWithin, others)
			}
			if took > detectTarget {
				t.Logf("%s: %s came after %v, past the %v a quiet machine takes: the machine is loaded", c.workload, c.rule, took.Round(100*time.Millisecond), detectTarget)
			}
			site := ""
			for _, s := range got.Evidence.Sites {
				if filepath.Base(s.File) == c.file && (want == 0 || s.Line == want) {
					site = fmt.Sprintf("%s:%d", c.file, s.Line)
					break
				}
			}
			if site == "" {
				t.Errorf("%s: finding %q points at %v, want %s:%d", c.workload, got.Title, got.Evidence.Sites, c.file, want)
			}
			// One more round, so a second rule that fires late is seen too.
			time.Sleep(1500 * time.Millisecond)
			for _, f := range findings(t, base) {
				if f.Rule != c.rule && diagnose.AtLeastWarning(f) {
					others[f.Rule] = f.Title
				}
			}
			if len(others) > 0 {
				t.Errorf("%s: other warnings fired: %v", c.workload, others)
			}
			t.Logf("%s: %s after %v at %s: %s", c.workload, c.rule, took.Round(100*time.Millisecond), site, got.Title)
			var o []string
			for r := range others {
				o = append(o, r)
			}
			fixed := checkFix(t, base, c, got)
			resultsMu.Lock()
			results = append(results, matrixResult{c: c, detected: took, site: site, others: o, fixed: fixed})
			resultsMu.Unlock()
		})
	}
	writeMatrix(t)
}

// The healthy workloads at their defaults, all at once, and the default mix
// without its broken workloads raise no finding over 15 seconds.
func TestMatrixHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon for 15s")
	}
	var mix []string
	for _, w := range daemon.DefaultWorkloads {
		if !slices.Contains(brokenNames(), w) {
			mix = append(mix, w)
		}
	}
	for _, tc := range []struct{ name, workloads string }{
		{"all healthy", "healthy"},
		{"default mix minus broken", strings.Join(mix, ",")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := startDaemon(t, tc.workloads)
			seen := map[string]string{}
			for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
				for _, f := range findings(t, base) {
					seen[f.Rule+" "+f.Severity] = f.Title
				}
			}
			if len(seen) > 0 {
				t.Errorf("%s (%s): findings over 15s: %v", tc.name, tc.workloads, seen)
			}
			resultsMu.Lock()
			healthy = append(healthy, fmt.Sprintf("%s (%s): %d findings in 15s", tc.name, tc.workloads, len(seen)))
			resultsMu.Unlock()
		})
	}
}

// checkFix applies the workload's fix and checks that finding f goes within
// clearWithin, or, for goroutines leaked for good, that it stays and stops
// growing. It returns what happened, for the table.
func checkFix(t *testing.T, base string, c matrixCase, f *api.Finding) string {
	t.Helper()
	cl := api.NewClient(base, "")
	ctx := context.Background()
	w, err := cl.Workload(ctx, c.workload)
	if err != nil {
		t.Fatal(err)
	}
	fix := map[string]any{"fix": true}
	if c.stopFirst {
		// Stopped, as its bug needs: the fixed form starts and stops.
		if _, err := cl.StartWorkload(ctx, c.workload, fix); err != nil {
			t.Fatalf("starting %s with the fix: %v", c.workload, err)
		}
		time.Sleep(3 * time.Second)
		if _, err := cl.StopWorkload(ctx, c.workload); err != nil {
			t.Fatalf("stopping the fixed %s: %v", c.workload, err)
		}
	} else if _, err := cl.ChangeParams(ctx, c.workload, fix); err != nil {
		t.Fatalf("fix: true for %s: %v", c.workload, err)
	}
	fixedAt := time.Now()
	// A leak kept for good may be named first from its growth, then, once
	// it no longer grows, from the runtime's proof: another finding of the
	// same rule at the same site.
	sameSite := func(g api.Finding) bool {
		return g.Rule == f.Rule && len(f.Evidence.Sites) > 0 && slices.Contains(g.Evidence.Sites, f.Evidence.Sites[0])
	}
	find := func() *api.Finding {
		for _, g := range findings(t, base) {
			if g.ID == f.ID || w.LeaksForGood && sameSite(g) {
				return &g
			}
		}
		return nil
	}
	if w.LeaksForGood {
		// What leaked before the fix counts once stuck for a while; then
		// the count must stay where it is.
		time.Sleep(5 * time.Second)
		first := find()
		time.Sleep(10 * time.Second)
		then := find()
		switch {
		case first == nil || then == nil:
			t.Errorf("%s: the finding of goroutines leaked for good went away after the fix", c.workload)
			return "went away"
		case then.TaskCount() > first.TaskCount():
			t.Errorf("%s: the leak grew after the fix: %d goroutines, then %d 10s later", c.workload, first.TaskCount(), then.TaskCount())
			return "grew"
		}
		t.Logf("%s: fixed; the finding stays at %d goroutines leaked for good", c.workload, then.TaskCount())
		return fmt.Sprintf("stays at %d goroutines (leaked for good), no growth", then.TaskCount())
	}
	for find() != nil {
		if time.Since(fixedAt) > clearWithin {
			t.Errorf("%s: finding %q still there %v after fix: true", c.workload, f.Title, clearWithin)
			return "stays"
		}
		time.Sleep(500 * time.Millisecond)
	}
	took := time.Since(fixedAt)
	var others []string
	for _, g := range findings(t, base) {
		if diagnose.AtLeastWarning(g) {
			others = append(others, g.Rule)
		}
	}
	t.Logf("%s: fixed; the finding went after %v (warnings then: %v)", c.workload, took.Round(100*time.Millisecond), others)
	return fmt.Sprintf("gone after %.1f s", took.Seconds())
}

// Every broken workload of the catalog is in the matrix, with the rule
// its spec names.
func TestMatrixCoversTheCatalog(t *testing.T) {
	for _, spec := range workload.Default.Specs() {
		if spec.Kind != workload.Broken {
			continue
		}
		i := slices.IndexFunc(matrix, func(c matrixCase) bool { return c.workload == spec.Name })
		switch {
		case i < 0:
			t.Errorf("broken workload %s has no case in the matrix", spec.Name)
		case matrix[i].rule != spec.Rule || matrix[i].stopFirst != spec.ShowsAfterStop:
			t.Errorf("%s: the matrix expects rule %s (stop first %v), the catalog says %s (%v)",
				spec.Name, matrix[i].rule, matrix[i].stopFirst, spec.Rule, spec.ShowsAfterStop)
		}
	}
}

func brokenNames() []string {
	var n []string
	for _, c := range matrix {
		n = append(n, c.workload)
	}
	return n
}

func writeMatrix(t *testing.T) {
	out := os.Getenv("INSPECTD_MATRIX_OUT")
	if out == "" {
		return
	}
	var b strings.Builder
	b.WriteString("| workload | rule | time to detect | site | other warnings | with `fix: true` |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		o := "none"
		if len(r.others) > 0 {
			o = strings.Join(r.others, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %.1f s | %s | %s | %s |\n", r.c.workload, r.c.rule, r.detected.Seconds(), r.site, o, r.fixed)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// mixWithin is how long every rule of the broken workloads has to report
// when they all run at once.
const mixWithin = 90 * time.Second

// All the workloads at once, in one daemon: each rule of the broken ones
// reports within 90 seconds, at the workload's file (rules that give one
// finding for the whole process, the heap's growth or the threads', at
// one of their workloads' files), and no finding names a healthy
// workload's file. Rules compose: one that reports nothing hides nothing
// from the others. Opt in with INSPECTD_MATRIX_MIX=1: on
// two cores the mix (a storm of 100,000 goroutines, hogs, spinners and a
// growing heap) takes the machine for a minute and a half.
func TestMatrixAllBrokenAtOnce(t *testing.T) {
	if os.Getenv("INSPECTD_MATRIX_MIX") == "" {
		t.Skip("set INSPECTD_MATRIX_MIX=1 to run every broken workload at once for up to 90s")
	}
	// The storm's 100,000 goroutines make a full dump stop the world for
	// ~0.6 s, which the default --max-pause (1 ms) never allows: without
	// dumps the parents and labels of goroutines older than the trace are
	// unknown, and outlived-context cannot tell whose scope has ended.
	// The mix checks that the rules compose, given what they need.
	base := startDaemon(t, "all", "--max-pause", "2s")
	began := time.Now()
	healthyFiles := healthyWorkloadFiles(t)
	named := map[string]string{} // healthy files named, with the finding
	cl := api.NewClient(base, "")
	stopped := map[string]bool{}
	seen := map[string]time.Duration{} // by workload
	var last []api.Finding
	for time.Since(began) < mixWithin && len(seen) < len(matrix) {
		for _, c := range matrix {
			// The bugs that show once their workload stops, stopped after
			// 3 s as in the matrix.
			if c.stopFirst && !stopped[c.workload] && time.Since(began) > 3*time.Second {
				if _, err := cl.StopWorkload(context.Background(), c.workload); err != nil {
					t.Fatalf("stopping %s: %v", c.workload, err)
				}
				stopped[c.workload] = true
			}
		}
		last = findings(t, base)
		for _, f := range last {
			for _, st := range f.Evidence.Sites {
				if healthyFiles[filepath.Base(st.File)] {
					named[filepath.Base(st.File)] = f.Rule + ": " + f.Title
				}
			}
		}
		for _, c := range matrix {
			if _, ok := seen[c.workload]; ok {
				continue
			}
			for _, f := range last {
				if f.Rule == c.rule && (mixAtFile(f, c.file) || oneForTheProcess(c.rule) && (mixAtAnyFile(f, c.rule) || len(f.Evidence.Sites) == 0)) {
					seen[c.workload] = time.Since(began)
					t.Logf("%s: %s after %v: %s", c.workload, c.rule, seen[c.workload].Round(100*time.Millisecond), f.Title)
					break
				}
			}
		}
		time.Sleep(time.Second)
	}
	for _, c := range matrix {
		if _, ok := seen[c.workload]; !ok {
			t.Errorf("%s: rule %s did not report at %s within %v", c.workload, c.rule, c.file, mixWithin)
		}
	}
	for file, f := range named {
		t.Errorf("healthy workload %s named in the mix: %s", file, f)
	}
	if t.Failed() {
		for _, f := range last {
			t.Logf("finding then: %s %s: %s %v", f.Rule, f.Severity, f.Title, f.Evidence.Sites)
		}
	}
}

// oneForTheProcess reports whether a rule gives one finding for the whole
// process, which names only the workloads that weigh most, or none where
// the source cannot tell (which goroutines hold threads needs a dump).
func oneForTheProcess(rule string) bool { return rule == "thread-growth" }

func mixAtFile(f api.Finding, file string) bool {
	return slices.ContainsFunc(f.Evidence.Sites, func(s api.Frame) bool { return filepath.Base(s.File) == file })
}

// mixAtAnyFile reports whether f names the file of any workload of rule.
func mixAtAnyFile(f api.Finding, rule string) bool {
	for _, c := range matrix {
		if c.rule == rule && mixAtFile(f, c.file) {
			return true
		}
	}
	return false
}

// The healthy workloads at their defaults, all at once, beside two CPU
// burners in other processes (a loaded machine of two cores): no finding
// over 30 seconds. Opt in with INSPECTD_MATRIX_LOADED=1: it keeps every
// core of the machine busy.
func TestMatrixHealthyLoaded(t *testing.T) {
	if os.Getenv("INSPECTD_MATRIX_LOADED") == "" {
		t.Skip("set INSPECTD_MATRIX_LOADED=1 to run the healthy lab beside two CPU burners for 30s")
	}
	for range 2 {
		burner := exec.Command(os.Args[0], "-test.run=^TestBurnHelper$")
		burner.Env = append(os.Environ(), "INSPECTD_BURN=1")
		if err := burner.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { burner.Process.Kill(); burner.Wait() })
	}
	base := startDaemon(t, "healthy")
	seen := map[string]string{}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		for _, f := range findings(t, base) {
			seen[f.Rule+" "+f.Severity] = f.Title
		}
	}
	if len(seen) > 0 {
		t.Errorf("the healthy lab on a loaded machine: findings over 30s: %v", seen)
	}
}

// TestBurnHelper is a CPU burner of TestMatrixHealthyLoaded when run by it.
func TestBurnHelper(t *testing.T) {
	if os.Getenv("INSPECTD_BURN") == "" {
		t.Skip("a CPU burner of TestMatrixHealthyLoaded")
	}
	for n := 0; ; n++ {
		_ = n * n
	}
}

// healthyWorkloadFiles are the source files of the healthy workloads.
func healthyWorkloadFiles(t *testing.T) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	for _, spec := range workload.Default.Specs() {
		if spec.Kind != workload.Healthy {
			continue
		}
		name := strings.ReplaceAll(spec.Name, "-", "_") + ".go"
		if _, err := os.Stat(filepath.Join("..", "..", "internal", "workload", name)); err == nil {
			files[name] = true
		}
	}
	// The fan-in lesson's producers feed fan-in-spin too: a finding about
	// that broken workload may name them as its victims.
	delete(files, "fan_in.go")
	if !files["cpu_pool.go"] {
		t.Fatalf("healthy workload files %v: want cpu_pool.go among them", files)
	}
	return files
}

// awaitSeen returns the first snapshot that holds workload's main goroutine
// and one it started, within a minute.
func awaitSeen(t *testing.T, cl *api.Client, workload string) *api.Snapshot {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		snap, err := cl.Snapshot(context.Background(), time.Second)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		main, started := false, false
		for _, task := range snap.Tasks {
			if task.Labels["workload"] == workload {
				main = main || task.Labels["role"] == "main"
				started = started || task.Labels["role"] != "main"
			}
		}
		if main && started {
			return snap
		}
	}
	t.Fatalf("no snapshot held %s's goroutines within a minute", workload)
	return nil
}
