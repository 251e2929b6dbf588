package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// The lab's walk through a lesson with --yes, as a script runs it, in text
// and in JSON: the finding comes, the fix clears it, the numbers change,
// and the workload, which ran before, runs again as it did.
func TestLabYes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the walk through a lesson takes some 20s")
	}
	addr := startDaemon(t)
	out, errs, code := cli(t, "lab", "blocking-lock", addr, "--yes")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"Lesson 1 of 1: blocking-lock (the talk: tokio_blocking)",
		"The finding that names the bug: lock-held-blocking.",
		"▶ starting blocking-lock with fix=false",
		"WARNING  lock-held-blocking  lock held across a blocking call at workload.runBlockingLock.func1 blocking_lock.go:",
		"The rows of top for blocking-lock",
		"blocking-lock/waiter",
		"▶ the fix: The holder takes the lock only to update the state",
		`POST /api/v1/workloads/blocking-lock/params {"params": {"fix": true}}`,
		"The rows of top now for blocking-lock",
		"operations/s (was ",
		"▶ stopped blocking-lock (it ran with waiters=8",
		"fix=true",
		"▶ started blocking-lock again as it ran before the lesson",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "\n!  ") {
		t.Errorf("no row marked as named by the finding:\n%s", out)
	}
	for _, want := range []string{"waiting for the finding lock-held-blocking: seen after", "waiting for the finding to clear: cleared after"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks the progress %q:\n%s", want, errs)
		}
	}
	if wl, err := api.NewClient(addr, "").Workload(t.Context(), "blocking-lock"); err != nil || !wl.Running || paramOf(wl.Params, "fix") != false {
		t.Errorf("after the walk: %+v, %v; want blocking-lock running as before it, without the fix", wl, err)
	}

	out, errs, code = cli(t, "lab", "blocking-lock", addr, "--yes", "--output", "json")
	if code != 0 {
		t.Fatalf("json: exit %d\n%s\n%s", code, out, errs)
	}
	var res struct {
		Target  string
		Lessons []labLesson
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(res.Lessons) != 1 {
		t.Fatalf("json: %d lessons, want 1:\n%s", len(res.Lessons), out)
	}
	l := res.Lessons[0]
	if !l.OK || !l.Found || !l.Cleared || l.Finding == nil || l.Finding.Rule != "lock-held-blocking" || l.Before == nil || l.After == nil ||
		len(l.Before.Rows) == 0 || l.ClearedAfter <= 0 || l.ClearedAfter > 60 {
		t.Errorf("json lesson: %+v", l)
	} else if l.After.OpsPerSecond <= l.Before.OpsPerSecond {
		t.Errorf("operations per second %.1f with the fix, %.1f without: want more", l.After.OpsPerSecond, l.Before.OpsPerSecond)
	}
	if strings.Contains(out, "━━") {
		t.Errorf("--output json prints the lessons' text on stdout:\n%s", out)
	}
}

func paramOf(ps []api.Param, name string) any {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return nil
}

func TestLabArguments(t *testing.T) {
	for _, c := range []struct {
		args   []string
		lesson string
		target string
	}{
		{nil, "", ""},
		{[]string{"leak"}, "leak", ""},
		{[]string{"tokio_select"}, "tokio_select", ""},
		{[]string{"127.0.0.1:7777"}, "", "127.0.0.1:7777"},
		{[]string{"4242"}, "", "4242"},
		{[]string{"http://host:1/"}, "", "http://host:1/"},
		{[]string{"leak", "127.0.0.1:7777"}, "leak", "127.0.0.1:7777"},
	} {
		lesson, target := splitLabArgs(c.args)
		if lesson != c.lesson || strings.Join(target, "") != c.target {
			t.Errorf("%q: lesson %q target %q, want %q and %q", c.args, lesson, target, c.lesson, c.target)
		}
	}
	all := []api.Workload{
		{Name: "leak", Kind: "broken", Lesson: "tokio_select"},
		{Name: "web-ignored-ctx", Kind: "broken", Lesson: "Tokio + Axum web services, tokio_select"},
		{Name: "select", Kind: "healthy", Lesson: "tokio_select"},
		{Name: "busy-poll", Kind: "broken", Lesson: "tokio_yield"},
	}
	names := func(ws []api.Workload) (n []string) {
		for _, w := range ws {
			n = append(n, w.Name)
		}
		return n
	}
	for lesson, want := range map[string]string{
		"":             "leak web-ignored-ctx busy-poll",
		"tokio_select": "leak web-ignored-ctx",
		"busy-poll":    "busy-poll",
		"select":       "",
		"nothing":      "",
	} {
		if got := strings.Join(names(pickLessons(all, lesson)), " "); got != want {
			t.Errorf("lessons of %q: %q, want %q", lesson, got, want)
		}
	}
	_, errs, code := cli(t, "lab", "nothing", fixtureDump)
	if code != 2 || !strings.Contains(errs, "lab needs inspectd's lab") {
		t.Errorf("lab of a dump file: exit %d, %q", code, errs)
	}
}

// TestLabInTmux walks through a lesson in a real terminal, as a learner
// does: it waits for a key before the fix and goes on when one comes.
func TestLabInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end test of `inspect-cli lab` needs a real terminal (apt-get install -y tmux)")
	}
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test of lab")
	}
	addr := startDaemon(t)
	bin := filepath.Join(t.TempDir(), "inspect-cli")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sock := fmt.Sprintf("inspectd-lab-test-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	// The shell prints the exit status and waits, so the screen can be read.
	script := fmt.Sprintf("%s lab blocking-lock %s; echo LAB-EXIT=$?; sleep 60", bin, addr)
	if out, err := tmux("new-session", "-d", "-s", "lab", "-x", "200", "-y", "200", "sh", "-c", script); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") })

	var last string
	waitFor := func(step string, within time.Duration, wants ...string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if out, err := tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "lab"); err == nil {
				last = out
				ok := true
				for _, w := range wants {
					ok = ok && strings.Contains(out, w)
				}
				if ok {
					return
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: the screen never showed %q:\n%s", step, wants, last)
	}
	waitFor("the finding", 60*time.Second, "Lesson 1 of 1: blocking-lock", "waiting for the finding lock-held-blocking: seen after",
		"WARNING  lock-held-blocking", "The rows of top for blocking-lock", "Press any key to apply the fix, q to quit.")
	// It waits for the key: nothing of the fix yet.
	time.Sleep(time.Second)
	if out, _ := tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "lab"); strings.Contains(out, "▶ the fix") {
		t.Fatalf("the fix came before the key:\n%s", out)
	}
	if out, err := tmux("send-keys", "-t", "lab", "x"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, out)
	}
	waitFor("the fix", 90*time.Second, "▶ the fix:", "waiting for the finding to clear: cleared after", "The rows of top now for blocking-lock",
		"▶ stopped blocking-lock", "LAB-EXIT=0")
}
