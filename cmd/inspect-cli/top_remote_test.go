package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTopAgainstPprof runs `inspect-cli top` in a real terminal (tmux)
// against a program that serves only net/http/pprof (this test process):
// the header says the model is computed here, the tasks come, and the
// details of one open.
func TestTopAgainstPprof(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test of top")
	}
	t.Cleanup(parkCLIGoroutines())
	addr := pprofOnly(t)

	bin := cliBinary(t)
	sock := fmt.Sprintf("inspectd-top-pprof-test-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "220", "-y", "50", bin+" top "+addr+" --window 500ms"); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") })
	var last string
	waitFor := func(step string, wants ...string) {
		t.Helper()
		deadline := time.Now().Add(screenWait)
		for time.Now().Before(deadline) {
			out, err := tmux("capture-pane", "-p", "-t", "top")
			if err == nil {
				last = out
				ok := true
				for _, w := range wants {
					ok = ok && strings.Contains(out, w)
				}
				if ok {
					return
				}
			}
			time.Sleep(150 * time.Millisecond)
		}
		t.Fatalf("%s: the screen never showed %q:\n%s", step, wants, last)
	}
	keys := func(args ...string) {
		t.Helper()
		if out, err := tmux(append([]string{"send-keys", "-t", "top"}, args...)...); err != nil {
			t.Fatalf("send-keys %q: %v\n%s", args, err, out)
		}
	}
	waitFor("start", "target "+addr+" (net/http/pprof, computed in inspect-cli, dumps ≤1% of the time)", "● connected", "cli-receiver", "chan receive")
	keys("/")
	keys("-l", "cli-receiver")
	keys("Enter")
	waitFor("filter", `filter "cli-receiver"`)
	keys("Enter")
	waitFor("details", "cli-receiver  waiting", "stack:", "cliReceive", "esc back")
	keys("q")
}
