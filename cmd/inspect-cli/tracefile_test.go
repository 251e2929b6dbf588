package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inspectd/inspectd/internal/api"
)

// A saved execution trace is a target: a trace of testdata/buggy's
// deadlock, taken with inspect-cli trace (longer than the 3s the rule
// waits), shows the deadlocked goroutines in tasks, task, sites and stacks,
// and diagnose names the deadlock from the file alone.
func TestTraceFileTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("traces a running program for 5s")
	}
	url := startBuggy(t, "deadlock")
	file := filepath.Join(t.TempDir(), "deadlock.trace")
	if _, stderr, code := cli(t, "trace", url, "--seconds", "5", "-o", file); code != 0 {
		t.Fatalf("trace: exit %d: %s", code, stderr)
	}
	line := bugLines(t, "deadlock")[0]

	out, stderr, code := cli(t, "tasks", file, "--output", "json")
	if code != 0 {
		t.Fatalf("tasks: exit %d: %s", code, stderr)
	}
	var s api.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.WindowNS < 4.5e9 || s.WindowNS > 6e9 {
		t.Errorf("the window covers %dns, want the trace's 5s", s.WindowNS)
	}
	var stuck []api.Task
	for _, task := range s.Tasks {
		if task.WaitReason == "sync.Mutex.Lock" && task.Location.Line == line {
			stuck = append(stuck, task)
		}
	}
	if len(stuck) < 2 {
		t.Fatalf("%d tasks wait in sync.Mutex.Lock at main.go:%d, want the deadlocked ones; tasks: %+v", len(stuck), line, s.Tasks)
	}

	out, stderr, code = cli(t, "task", jsonID(stuck[0].ID), file)
	if code != 0 || !strings.Contains(out, "over the whole trace:") || !strings.Contains(out, "sync.Mutex.Lock") {
		t.Errorf("task %d: exit %d: %s%s", stuck[0].ID, code, out, stderr)
	}
	out, _, code = cli(t, "sites", file)
	if code != 0 || !strings.Contains(out, "sync.Mutex.Lock") {
		t.Errorf("sites: exit %d: %s", code, out)
	}
	out, _, code = cli(t, "stacks", file)
	if code != 0 || !strings.Contains(out, "sync.(*Mutex).Lock") {
		t.Errorf("stacks: exit %d: %s", code, out)
	}

	out, stderr, code = cli(t, "diagnose", file, "--window", "1s", "--output", "json")
	if code != 1 {
		t.Fatalf("diagnose: exit %d, want 1: %s%s", code, out, stderr)
	}
	var fl api.FindingList
	if err := json.Unmarshal([]byte(out), &fl); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fl.Findings {
		for _, site := range f.Evidence.Sites {
			found = found || f.Rule == "deadlock" && filepath.Base(site.File) == "main.go" && site.Line == line
		}
	}
	if !found {
		t.Errorf("diagnose of the trace file does not name the deadlock at main.go:%d: %+v", line, fl.Findings)
	}

	if _, stderr, code := cli(t, "record", file, "-o", file+".rec"); code != 2 || !strings.Contains(stderr, "not the trace file") {
		t.Errorf("record of a trace file: exit %d: %s", code, stderr)
	}
	// A cut trace gives what it holds, and says so; a corrupt one, one line.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.trace")
	os.WriteFile(cut, data[:len(data)*2/3], 0o644)
	out, stderr, code = cli(t, "tasks", cut)
	if code != 0 || !strings.Contains(out, "cut short or corrupt") {
		t.Errorf("tasks of a cut trace: exit %d: %s%s", code, out, stderr)
	}
	for _, args := range [][]string{{"stacks", cut}, {"diagnose", cut, "--window", "1s"}} {
		out, stderr, _ = cli(t, args...)
		if !strings.Contains(out, "cut short or corrupt") {
			t.Errorf("%v does not say the trace is cut: %s%s", args, out, stderr)
		}
	}
	out, _, _ = cli(t, "diagnose", cut, "--window", "1s", "--output", "json")
	var cutFL api.FindingList
	if err := json.Unmarshal([]byte(out), &cutFL); err != nil || len(cutFL.Partial) == 0 || !strings.Contains(cutFL.Partial[0], "cut short or corrupt") {
		t.Errorf("diagnose --output json of a cut trace: partial %q (%v)", cutFL.Partial, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.trace")
	os.WriteFile(bad, append(data[:16:16], "garbage"...), 0o644)
	if _, stderr, code := cli(t, "tasks", bad); code != 2 || !strings.Contains(stderr, "not a readable execution trace") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("tasks of a corrupt trace: exit %d: %q", code, stderr)
	}
}

func jsonID(id int64) string {
	b, _ := json.Marshal(id)
	return string(b)
}
