package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/recording"
)

// recordedUpdates is how many whole updates the recording in file holds
// so far (0 before its header is written).
func recordedUpdates(file string) int {
	r, err := recording.Open(file)
	if err != nil {
		return 0
	}
	defer r.Close()
	return recording.NewPlayer(r).Len()
}

// TestRecord records a real daemon for four updates or more, interrupts the
// recorder as ctrl+c does, and reads the file back: with the recording
// package, and with tasks, task, sites, stacks and top.
func TestRecord(t *testing.T) {
	addr := startDaemon(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "rec.jsonl.gz")

	ctx, cancel := context.WithCancel(t.Context())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"record", addr, "-o", file, "--interval", "200ms", "--window", "1s"}, &out, &errb)
	}()
	// Four updates at least, however long a loaded machine takes to build
	// them (at best 200ms apart).
	for deadline := time.Now().Add(time.Minute); recordedUpdates(file) < 4; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d updates recorded in a minute, want 4", recordedUpdates(file))
		}
	}
	cancel() // ctrl+c
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("record did not stop after the interrupt")
	}
	if code != 0 {
		t.Fatalf("record: exit %d\n%s", code, errb.String())
	}
	if !regexp.MustCompile(`wrote .*rec.jsonl.gz: \d+ updates over [\d.]+(ms|s|m[\d.]+s), [\d.]+ KiB\nplay it with: inspect-cli top --replay .*rec.jsonl.gz`).MatchString(out.String()) {
		t.Errorf("stdout: %q", out.String())
	}
	if !strings.Contains(errb.String(), "recording "+addr+" to "+file+" (ctrl+c stops)") {
		t.Errorf("stderr: %q", errb.String())
	}

	r, err := recording.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Err != nil {
		t.Errorf("the interrupted recording is damaged: %v", r.Err)
	}
	h := r.Header
	if h.Target != addr || h.IntervalNS != 200e6 || h.WindowNS != 1e9 || h.Recorder != "inspect-cli record" {
		t.Errorf("header %+v", h)
	}
	end, ok := r.Ended()
	if !ok || end.Reason != "interrupted" {
		t.Errorf("end line %+v %v", end, ok)
	}
	p := recording.NewPlayer(r)
	if p.Len() < 4 || int64(p.Len()) != end.Updates || !p.Meta(0).Full {
		t.Fatalf("%d updates (end line: %d), the first full: %v", p.Len(), end.Updates, p.Meta(0).Full)
	}
	last, err := p.At(p.Len() - 1)
	if err != nil {
		t.Fatal(err)
	}
	var waiter *api.Task
	for i := range last.Tasks {
		if last.Tasks[i].Name == "blocking-lock/waiter" {
			waiter = &last.Tasks[i]
		}
	}
	if waiter == nil || last.Process.GoVersion == "" || last.WindowNS == 0 {
		t.Fatalf("the last update lacks the daemon's tasks: %d tasks, process %+v", len(last.Tasks), last.Process)
	}

	t.Run("tasks", func(t *testing.T) {
		stdout, errs, code := cli(t, "tasks", file, "--filter", "workload=blocking-lock", "--limit", "0")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"target " + addr + " (recording " + file + ")", fmt.Sprintf("note: the last update (%d) of the recording", p.Len()),
			"blocking-lock/waiter"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("lacks %q:\n%s", want, stdout)
			}
		}
		// Waiters wait for the lock or pause between two uses of it.
		if !regexp.MustCompile(`waiting +blocking-lock/waiter .* (sync\.Mutex\.Lock|select) `).MatchString(stdout) {
			t.Errorf("no waiter row with its wait reason:\n%s", stdout)
		}
		// The numbers are there, unlike a dump's.
		for _, l := range strings.Split(stdout, "\n") {
			if strings.Contains(l, "blocking-lock/waiter") && strings.Contains(l, " - ") {
				t.Errorf("a row without its numbers: %s", l)
			}
		}
	})
	t.Run("task", func(t *testing.T) {
		id := strconv.FormatInt(waiter.ID, 10)
		stdout, errs, code := cli(t, "task", id, file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"task " + id + "  blocking-lock/waiter", "no run-time or sched-delay histograms, no stack", "busy", "sync.Mutex.Lock"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("lacks %q:\n%s", want, stdout)
			}
		}
		// A window of about the 1s asked (a live window starts where the
		// runtime's trace generation does).
		if !regexp.MustCompile(`over the trace window \((1s|1\.\d+s|\d{3}(\.\d+)?ms)\) at that update:`).MatchString(stdout) {
			t.Errorf("no window of about 1s:\n%s", stdout)
		}
		if _, errs, code := cli(t, "task", "999999999", file); code != 1 || !strings.Contains(errs, "has no goroutine 999999999 at its last update") {
			t.Errorf("unknown task: exit %d, %q", code, errs)
		}
	})
	t.Run("sites", func(t *testing.T) {
		stdout, errs, code := cli(t, "sites", file)
		if code != 0 || !strings.Contains(stdout, "sync.Mutex.Lock") || !strings.Contains(stdout, "note: the last update") {
			t.Errorf("exit %d: %s\n%s", code, errs, stdout)
		}
	})
	t.Run("not for stacks or top", func(t *testing.T) {
		if _, errs, code := cli(t, "stacks", file); code != 2 || !strings.Contains(errs, "is a recording of the task table") {
			t.Errorf("stacks: exit %d, %q", code, errs)
		}
		if _, errs, code := cli(t, "top", file); code != 2 || !strings.Contains(errs, "is a recording: play it with inspect-cli top --replay") {
			t.Errorf("top: exit %d, %q", code, errs)
		}
	})
	t.Run("no overwrite", func(t *testing.T) {
		if _, errs, code := cli(t, "record", addr, "-o", file); code != 2 || !strings.Contains(errs, "exists: pass --force to overwrite it") {
			t.Errorf("exit %d, %q", code, errs)
		}
		stdout, errs, code := cli(t, "record", addr, "-o", file, "--force", "--duration", "700ms", "--interval", "200ms", "--output", "json")
		if code != 0 || !strings.Contains(stdout, `"play": "inspect-cli top --replay `+file) {
			t.Fatalf("--force: exit %d: %s\n%s", code, errs, stdout)
		}
		r, err := recording.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if e, ok := r.Ended(); !ok || e.Reason != "duration" {
			t.Errorf("end %+v %v", e, ok)
		}
	})
}

// A program that serves only net/http/pprof: the snapshots computed here are
// recorded.
func TestRecordPprof(t *testing.T) {
	addr := pprofOnly(t)
	stop := parkCLIGoroutines()
	defer stop()
	file := filepath.Join(t.TempDir(), "rec.jsonl.gz")
	stdout, errs, code := cli(t, "record", addr, "-o", file, "--window", "500ms", "--interval", "500ms", "--duration", "2s")
	if code != 0 || !strings.Contains(stdout, "wrote "+file) {
		t.Fatalf("exit %d: %s\n%s", code, errs, stdout)
	}
	r, err := recording.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := recording.NewPlayer(r)
	if p.Len() == 0 || !strings.Contains(r.Header.Target, addr+" (net/http/pprof, computed in inspect-cli") {
		t.Fatalf("%d updates, target %q", p.Len(), r.Header.Target)
	}
	s, err := p.At(p.Len() - 1)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range s.Tasks {
		found = found || task.Name == "cli-receiver"
	}
	if !found || !strings.Contains(s.Source, "computed in inspect-cli") {
		t.Errorf("the recorded snapshot lacks this process's parked goroutines (%d tasks, source %q)", len(s.Tasks), s.Source)
	}
}

func TestRecordErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rec.jsonl.gz")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "127.0.0.1:1", "-o", file}, "cannot reach 127.0.0.1:1"},
		{[]string{"record", "127.0.0.1:1"}, "record needs -o FILE"},
		{[]string{"record", fixtureDump, "-o", file}, "record needs a live target"},
		{[]string{"record", "127.0.0.1:1", "-o", file, "--interval", "1ms"}, "--interval 1ms"},
		{[]string{"top", "--replay", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"top", "--replay", fixtureDump}, "not an inspectd recording"},
		{[]string{"top", "--replay", fixtureDump, "127.0.0.1:7777"}, "takes no target"},
	} {
		_, errs, code := cli(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a failed record left a file")
	}
	// A recording without updates has nothing to play.
	var b bytes.Buffer
	w, _ := recording.NewWriter(&b, recording.Header{Target: "x"})
	w.Close(time.Now(), "interrupted")
	os.WriteFile(file, b.Bytes(), 0o644)
	if _, errs, code := cli(t, "top", "--replay", file); code != 2 || !strings.Contains(errs, "no update to play") {
		t.Errorf("empty recording: exit %d, %q", code, errs)
	}
}

// TestReplayInTmux plays a recording in a real terminal: the update counter
// moves, space pauses it, and the keys step and seek.
func TestReplayInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end test of `inspect-cli top --replay` needs a real terminal (apt-get install -y tmux)")
	}
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test of top --replay")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "rec.jsonl.gz")
	writeTestRecording(t, file, 40, 400*time.Millisecond)

	bin := cliBinary(t)
	sock := fmt.Sprintf("inspectd-replay-test-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tmux("new-session", "-d", "-s", "replay", "-x", "200", "-y", "40", bin+" top --replay "+file); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") })

	var last string
	counter := regexp.MustCompile(`update (\d+)/40`)
	at := func(s string) int {
		m := counter.FindStringSubmatch(s)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	waitFor := func(step string, ok func(screen string) bool) {
		t.Helper()
		deadline := time.Now().Add(screenWait)
		for time.Now().Before(deadline) {
			if out, err := tmux("capture-pane", "-p", "-t", "replay"); err == nil {
				last = out
				if ok(out) {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: the screen never showed what was expected:\n%s", step, last)
	}
	keys := func(k ...string) {
		t.Helper()
		if out, err := tmux(append([]string{"send-keys", "-t", "replay"}, k...)...); err != nil {
			t.Fatalf("send-keys %q: %v\n%s", k, err, out)
		}
	}

	waitFor("start", func(s string) bool {
		return strings.Contains(s, "replay "+file) && strings.Contains(s, "▶ playing") && strings.Contains(s, "target 127.0.0.1:7777") &&
			strings.Contains(s, "worker-1") && at(s) >= 1
	})
	first := at(last)
	waitFor("playing", func(s string) bool { return at(s) >= first+2 })

	keys("Space")
	waitFor("pause", func(s string) bool { return strings.Contains(s, " PAUSED ") })
	paused := at(last)
	time.Sleep(1200 * time.Millisecond) // three updates' worth at 1x
	waitFor("paused still", func(s string) bool { return at(s) == paused && strings.Contains(s, " PAUSED ") })

	keys(".")
	waitFor("step", func(s string) bool { return at(s) == paused+1 })
	keys(",", ",")
	waitFor("step back", func(s string) bool { return at(s) == paused-1 })
	keys(">")
	waitFor("last", func(s string) bool {
		return at(s) == 40 && strings.Contains(s, " END ") && strings.Contains(s, "end of the recording (40 updates; stopped: interrupted)")
	})
	keys(":")
	keys("-l", "12")
	keys("Enter")
	waitFor("go to", func(s string) bool { return at(s) == 12 && strings.Contains(s, "tasks 13 (") })
	keys("?")
	waitFor("help", func(s string) bool {
		return strings.Contains(s, "play / pause the replay") && strings.Contains(s, "10 updates forward")
	})

	keys("q")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := tmux("has-session", "-t", "replay"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("q: top --replay did not exit")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeTestRecording writes n updates, every apart; update k (from 0) has
// k+2 tasks.
func writeTestRecording(t *testing.T, file string, n int, every time.Duration) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Date(2026, 11, 27, 17, 2, 3, 0, time.UTC)
	w, err := recording.NewWriter(f, recording.Header{Target: "127.0.0.1:7777", Started: t0, IntervalNS: int64(every), WindowNS: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	var prev *api.Snapshot
	for k := range n {
		at := t0.Add(time.Duration(k) * every)
		s := &api.Snapshot{Time: at, WindowNS: 5e9, Source: "trace+dump", Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2}}
		for id := int64(1); id <= int64(k+2); id++ {
			s.Tasks = append(s.Tasks, api.Task{ID: id, Name: fmt.Sprintf("worker-%d", id), State: "waiting", WaitReason: "chan receive",
				Stats: api.TaskStats{TotalNS: 5e9, BusyNS: int64(k+1) * 1e6, IdleNS: 4e9}})
		}
		u := api.Diff(prev, s)
		u.Seq = int64(k + 1)
		prev = s
		if err := w.Update(at, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t0.Add(time.Duration(n)*every), "interrupted"); err != nil {
		t.Fatal(err)
	}
}

// A recording damaged in the middle still shows its last update (read from
// a full one past the damage), and says it is damaged.
func TestTasksOfADamagedRecording(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Date(2026, 11, 27, 17, 2, 3, 0, time.UTC)
	w, err := recording.NewWriter(&b, recording.Header{Target: "127.0.0.1:7777", Started: t0, IntervalNS: 1e9, WindowNS: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	var prev *api.Snapshot
	var offs []int
	for k := range 12 {
		at := t0.Add(time.Duration(k) * time.Second)
		s := &api.Snapshot{Time: at, WindowNS: 5e9, Source: "trace+dump", Tasks: []api.Task{{ID: 1, State: "waiting", Stats: api.TaskStats{BusyNS: int64(k+1) * 1e6}}}}
		u := api.Diff(prev, s)
		if k%5 == 0 {
			u = api.Diff(nil, s) // a full update: the player's key frame
		}
		u.Seq, prev = int64(k+1), s
		offs = append(offs, b.Len())
		if err := w.Update(at, u); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(t0.Add(time.Minute), "interrupted")
	data := bytes.Clone(b.Bytes())
	data[(offs[2]+offs[3])/2] ^= 0xff // inside update 3
	file := filepath.Join(t.TempDir(), "damaged.jsonl.gz")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, "tasks", file)
	if code != 0 || !strings.Contains(out, "the last update (12)") || !strings.Contains(out, "the recording is damaged at line 4") {
		t.Errorf("exit %d %s:\n%s", code, errs, out)
	}
}
