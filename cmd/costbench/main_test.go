//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// TestMain makes the test binary a target when the driver under test runs
// it as one, as the command's main does.
func TestMain(m *testing.M) {
	if os.Getenv(target.Env) != "" {
		os.Exit(target.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runQuick runs the driver with args against real target subprocesses (this
// test binary) and returns its stdout.
func runQuick(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, exe, &stdout, &stderr); err != nil {
		t.Fatalf("costbench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	return stdout.String()
}

// row returns the cells of the table row that starts with name.
func row(t *testing.T, out, name string) []string {
	t.Helper()
	for line := range strings.Lines(out) {
		cells := strings.Fields(line)
		if len(cells) > 0 && cells[0] == name {
			return cells
		}
	}
	t.Fatalf("no row %q in:\n%s", name, out)
	return nil
}

// positive parses a count as the tables write it (552k, 1.2M, 0.93) and
// fails unless it is above zero.
func positive(t *testing.T, what, s string) {
	t.Helper()
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	if v, err := strconv.ParseFloat(s, 64); err != nil || v*mult <= 0 {
		t.Errorf("%s = %q: want a number above 0", what, s)
	}
}

// The quick mode, end to end, for one pair of configurations of the pool.
func TestQuickPoolNoneAgainstAgent(t *testing.T) {
	out := runQuick(t, 2*time.Minute, "-quick", "-workloads", "pool", "-configs", "none,agent-idle", "-warmup", "200ms", "-measure", "500ms")
	for _, want := range []string{"Command: go run ./cmd/costbench -quick -workloads pool", "agent.Listen(agent.Options{})", "pool: GOMAXPROCS workers"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	none := row(t, out, "none")
	idle := row(t, out, "agent-idle")
	// configuration, ops/CPU-s, ratio, ops/s, ratio, cores, RSS ("12.3 MB (+1.2 kB/s)"), watch
	if len(none) != 11 || len(idle) != 11 {
		t.Fatalf("rows %q and %q: want 11 cells each", none, idle)
	}
	for _, r := range [][]string{none, idle} {
		positive(t, r[0]+" ops per CPU-second", r[1])
		positive(t, r[0]+" ratio", r[2])
		positive(t, r[0]+" ops per second", r[3])
		positive(t, r[0]+" ratio", r[4])
		positive(t, r[0]+" cores", r[5])
		if v, err := strconv.ParseFloat(r[6], 64); err != nil || v <= 0 || r[7] != "MB" && r[7] != "GB" {
			t.Errorf("%s RSS %q %q: want megabytes or gigabytes", r[0], r[6], r[7])
		}
	}
	if none[2] != "1.00" || none[4] != "1.00" {
		t.Errorf("none's ratios to itself: %q and %q, want 1.00", none[2], none[4])
	}
	if strings.Contains(out, "agent-watched") || strings.Contains(out, "net/http/pprof on a loopback") || strings.Contains(out, "\n  pprof") {
		t.Errorf("configurations that were not asked for ran:\n%s", out)
	}
}

// -overhead-budget reaches the agent targets, and the tables say so.
func TestQuickWatchedWithABudget(t *testing.T) {
	out := runQuick(t, 2*time.Minute, "-quick", "-workloads", "pool", "-configs", "agent-idle,agent-watched", "-overhead-budget", "0.01", "-warmup", "200ms", "-measure", "1s")
	for _, want := range []string{"agent.Listen(agent.Options{OverheadBudget: 0.01})", "default options but OverheadBudget 0.01"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q:\n%s", want, out)
		}
	}
	if watched := row(t, out, "agent-watched"); len(watched) < 11 {
		t.Errorf("agent-watched row %q", watched)
	}
}

// A target that cannot start is named, with why.
func TestTargetThatFailsToStart(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-quick", "-workloads", "pool", "-configs", "none"}, "/bin/false", &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "the pool/none target did not start: it exited: exit status 1") {
		t.Errorf("run with /bin/false as the target: %v", err)
	}
}

// A budget outside 0 to 1 is refused before anything runs, saying why.
func TestBadOverheadBudget(t *testing.T) {
	for _, v := range []string{"-0.1", "1.5"} {
		var stderr bytes.Buffer
		if _, err := parseOptions([]string{"-overhead-budget", v}, &stderr); !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "-overhead-budget "+v) {
			t.Errorf("-overhead-budget %s: %v, stderr %q", v, err, stderr.String())
		}
	}
}

// The parked workload, end to end, with both parts. It waits for the
// agent's recorder to cover a window (5s and more), so it runs only when
// asked: COSTBENCH_TEST_PARKED=1 go test -run Parked ./cmd/costbench
func TestQuickParked(t *testing.T) {
	if os.Getenv("COSTBENCH_TEST_PARKED") == "" {
		t.Skip("COSTBENCH_TEST_PARKED=1 runs it (about a minute)")
	}
	out := runQuick(t, 3*time.Minute, "-quick", "-workloads", "parked", "-parked", "2000", "-configs", "agent-idle,pprof")
	for _, name := range []string{"agent snapshot, first", "agent snapshot, steady", "agent watch, first update", "pprof goroutine?debug=2", "pprof goroutine?debug=0", "gops stack dump", "fgprof?seconds=1"} {
		if !strings.Contains(out, "  "+name+"  ") {
			t.Errorf("no row %q", name)
		}
	}
}
