package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/inspectd/inspectd/agent"
)

// Two captures that start in the same second take the same default name;
// the second to finish takes the next number instead of replacing the
// first. A file made during a capture to an -o name is not replaced either.
func TestCapturesNeverReplaceEachOther(t *testing.T) {
	t.Chdir(t.TempDir())
	a, err := createOutput("", "heap-20261128-073000.pb.gz", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := createOutput("", "heap-20261128-073000.pb.gz", false)
	if err != nil {
		t.Fatal(err)
	}
	a.f.WriteString("first")
	b.f.WriteString("second")
	if err := a.commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.commit(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"heap-20261128-073000.pb.gz": "first", "heap-20261128-073000-2.pb.gz": "second"} {
		if got, err := os.ReadFile(name); string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if b.name != "heap-20261128-073000-2.pb.gz" {
		t.Errorf("the second capture says it wrote %s", b.name)
	}

	c, err := createOutput("mine.out", "", false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("mine.out", []byte("made meanwhile"), 0o644)
	if err := c.commit(); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("commit over a file made during the capture: %v", err)
	}
	if got, _ := os.ReadFile("mine.out"); string(got) != "made meanwhile" {
		t.Errorf("mine.out replaced: %q", got)
	}
	os.Mkdir("dir", 0o755)
	if _, err := createOutput("dir", "", true); err == nil || !strings.Contains(err.Error(), "dir is a directory") {
		t.Errorf("-o a directory with --force: %v", err)
	}
	if parts, _ := filepath.Glob(".*.part"); len(parts) != 0 {
		t.Errorf("temporary files left: %q", parts)
	}
}

// A pid whose process was killed before it removed its port file is said
// to be gone, not "cannot reach" its old address.
func TestStalePortFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	dir, err := agent.PortDir()
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, pid), []byte("127.0.0.1:1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := cli(t, "tasks", pid)
	if code != 2 || !strings.Contains(errs, "no process "+pid+": it has exited") {
		t.Errorf("exit %d, %q; want 2, the process gone", code, errs)
	}
}
