package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// TestTopInTmux runs `inspect-cli top` in a real terminal (a detached tmux
// session of 200x50) against a real daemon, types keys and reads the screen.
func TestTopInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end test of `inspect-cli top` needs a real terminal (apt-get install -y tmux)")
	}
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test of top")
	}
	addr := startDaemon(t)

	bin := cliBinary(t)

	// A tmux server of our own (-L), so the test touches no other session.
	sock := fmt.Sprintf("inspectd-top-test-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "200", "-y", "90", bin+" top "+addr); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") })

	var last string
	waitFor := func(step string, ok func(screen string) bool) {
		t.Helper()
		deadline := time.Now().Add(screenWait)
		for time.Now().Before(deadline) {
			out, err := tmux("capture-pane", "-p", "-t", "top")
			if err == nil {
				last = out
				if ok(out) {
					return
				}
			}
			time.Sleep(150 * time.Millisecond)
		}
		if step == "the finding" {
			explainLockHeld(t, addr)
		}
		t.Fatalf("%s: the screen never showed what was expected:\n%s", step, last)
	}
	has := func(wants ...string) func(string) bool {
		return func(s string) bool {
			for _, w := range wants {
				if !strings.Contains(s, w) {
					return false
				}
			}
			return true
		}
	}
	keys := func(args ...string) {
		t.Helper()
		if out, err := tmux(append([]string{"send-keys", "-t", "top"}, args...)...); err != nil {
			t.Fatalf("send-keys %q: %v\n%s", args, err, out)
		}
	}

	waitFor("start", has("blocking-lock/waiter", "target "+addr, "GOMAXPROCS", "● connected", "Busy", "Location"))

	keys("/")
	keys("-l", "waiter")
	keys("Enter")
	waitFor("filter", func(s string) bool {
		if !has(`filter "waiter"`, "blocking-lock/waiter", "sync.Mutex.Lock")(s) || strings.Contains(s, "hello/main") {
			return false
		}
		// Every task row is a waiter.
		rows := 0
		for _, l := range strings.Split(s, "\n")[5:] {
			if strings.TrimSpace(l) == "" {
				continue
			}
			if !strings.Contains(l, "waiter") {
				return false
			}
			rows++
		}
		return rows > 0
	})

	// The daemon has diagnosed the waiters' lock before the details open
	// (on a busy machine other findings may come first).
	keys("f")
	waitFor("the finding", has("lock-held-blocking", "blocking_lock.go"))
	keys("t")
	waitFor("tasks again", has(`filter "waiter"`, "blocking-lock/waiter", "Location"))
	keys("Enter")
	waitFor("details", has("blocking-lock/waiter  waiting", "wait site", "created by", "in goroutine",
		"busy", "%", "run times", "sched delays", "stack:", "esc back",
		// The waiters queue behind a holder that sleeps with the lock.
		"WARNING  lock-held-blocking", "advice:"))

	keys("Escape")
	waitFor("back", func(s string) bool {
		return has("Location", "blocking-lock/waiter", `filter "waiter"`)(s) && !strings.Contains(s, "stack:")
	})

	keys("r")
	waitFor("sites", has("Reason", "Waiting", "Wakeups", "sync.Mutex.Lock", "blocking_lock.go"))

	keys("q")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := tmux("has-session", "-t", "top"); err != nil {
			break // top exited, and its session with it
		}
		if time.Now().After(deadline) {
			t.Fatal("q: top did not exit")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTopNeedsALiveTarget(t *testing.T) {
	_, errs, code := cli(t, "top", fixtureDump)
	if code != 2 || !strings.Contains(errs, "top needs a live target") {
		t.Errorf("exit %d, stderr %q; want 2 and a message that top needs a live target", code, errs)
	}
	_, errs, code = cli(t, "top", "127.0.0.1:7777", "--interval", "10ms")
	if code != 2 || !strings.Contains(errs, "--interval 10ms") {
		t.Errorf("exit %d, stderr %q; want 2 for a too short interval", code, errs)
	}
}

// explainLockHeld logs what the daemon at addr sees of blocking-lock's
// mutex and its holder, for a failure where lock-held-blocking never came.
func explainLockHeld(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/snapshot?window=2s")
	if err != nil {
		t.Logf("the daemon's snapshot: %v", err)
		return
	}
	defer resp.Body.Close()
	var s api.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Logf("the daemon's snapshot: %v", err)
		return
	}
	for _, st := range s.Sites {
		if strings.Contains(st.Reason, "Mutex") || st.Location.Function == "" {
			t.Logf("site %s at %s: waiting %d, waited %v, woken %d, wakers %+v", st.Reason, st.Location.Function, st.Waiting,
				time.Duration(st.WaitNS), st.Wakeups, st.Wakers)
		}
	}
	for _, tk := range s.Tasks {
		if strings.HasSuffix(tk.Name, "/holder") {
			t.Logf("holder %d: %s %s at %s:%d, idle %v of %v by reason %v", tk.ID, tk.State, tk.WaitReason, tk.Location.Function, tk.Location.Line,
				time.Duration(tk.Stats.IdleNS), time.Duration(tk.Stats.TotalNS), tk.Stats.IdleByReason)
		}
	}
	for _, f := range s.Findings {
		t.Logf("finding %s: %s", f.Rule, f.Title)
	}
}
