package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gopsagent "github.com/google/gops/agent"

	"github.com/inspectd/inspectd/agent"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source/remote"
)

// Goroutines parked in known places of this file, with labels.
func cliReceive(c chan int) { <-c }

func cliLock(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

// parkCLIGoroutines starts two receivers labelled task=cli-receiver and a
// mutex waiter, until stop is closed.
func parkCLIGoroutines() (stop func()) {
	c := make(chan int)
	var mu sync.Mutex
	mu.Lock()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels("task", "cli-receiver"), func(context.Context) { cliReceive(c) })
		})
	}
	wg.Go(func() { cliLock(&mu) })
	time.Sleep(20 * time.Millisecond)
	return func() {
		close(c)
		mu.Unlock()
		wg.Wait()
	}
}

// pprofOnly serves this test process's net/http/pprof and nothing else, as
// a plain program does.
func pprofOnly(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A program that serves only net/http/pprof: tasks, task, sites and stacks
// work, with the model computed here and notes that say so.
func TestCLIAgainstPprof(t *testing.T) {
	t.Cleanup(parkCLIGoroutines())
	addr := pprofOnly(t)

	var receiverID int64
	t.Run("tasks", func(t *testing.T) {
		out, errs, code := cli(t, "tasks", addr, "--window", "1s", "--limit", "0")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"target " + addr, "go1.26+", "source trace+profile+dump (computed in inspect-cli from net/http/pprof)",
			"note: model computed in inspect-cli from net/http/pprof: a 1s execution trace", "from a goroutine dump taken now", "1% of the time since attaching"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		receivers, lockers := 0, 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			if strings.Contains(line, " cli-receiver ") && strings.Contains(line, "chan receive") && strings.Contains(line, "inspect-cli.cliReceive remote_test.go:") &&
				strings.Contains(line, "task=cli-receiver") && f[1] == "waiting" {
				receivers++
				receiverID, _ = strconv.ParseInt(f[0], 10, 64)
			}
			if strings.Contains(line, "sync.Mutex.Lock") && strings.Contains(line, "inspect-cli.cliLock remote_test.go:") && f[1] == "waiting" {
				lockers++
			}
		}
		if receivers != 2 || lockers != 1 {
			t.Errorf("%d receivers and %d lockers, want 2 and 1:\n%s", receivers, lockers, out)
		}
	})
	t.Run("task", func(t *testing.T) {
		if receiverID == 0 {
			t.Skip("no receiver found")
		}
		out, errs, code := cli(t, "task", strconv.FormatInt(receiverID, 10), addr, "--window", "500ms")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"cli-receiver", "chan receive", "stack:", "inspect-cli.cliReceive", "remote_test.go", "task=cli-receiver", "created by"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		_, errs, code = cli(t, "task", "999999999", addr, "--window", "200ms")
		if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "has no goroutine 999999999") {
			t.Errorf("unknown task: exit %d, stderr %q; want 1 and one line", code, errs)
		}
	})
	t.Run("sites json", func(t *testing.T) {
		out, errs, code := cli(t, "sites", addr, "--window", "500ms", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var l api.SiteList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range l.Sites {
			if s.Reason == "sync.Mutex.Lock" && strings.HasSuffix(s.Location.Function, "inspect-cli.cliLock") && s.Waiting == 1 {
				found = true
			}
		}
		if !found || l.WindowNS < int64(400*time.Millisecond) {
			t.Errorf("no sync.Mutex.Lock site at cliLock, or window %d: %s", l.WindowNS, out)
		}
	})
	t.Run("no dumps", func(t *testing.T) {
		out, errs, code := cli(t, "tasks", addr, "--window", "300ms", "--dump-budget", "0", "--filter", "task=cli-receiver")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "no goroutine dump: dumps are off (--dump-budget 0)") || !strings.Contains(out, "source trace+profile (") ||
			strings.Count(out, "cli-receiver") < 2 {
			t.Errorf("want the labels from the profile and a note that dumps are off:\n%s", out)
		}
		_, errs, code = cli(t, "tasks", addr, "--dump-budget", "2")
		if code != 2 || !strings.Contains(errs, "--dump-budget 2") {
			t.Errorf("--dump-budget 2: exit %d, %s", code, errs)
		}
	})
	t.Run("stacks", func(t *testing.T) {
		out, errs, code := cli(t, "stacks", addr)
		if code != 0 || !strings.Contains(out, "stops the target's world") || !strings.Contains(out, "labels {task=cli-receiver}") {
			t.Errorf("exit %d %s:\n%s", code, errs, out)
		}
	})
}

// A web server with neither the inspection API nor pprof gives one line and
// exit 2 naming what it lacks.
func TestCLINotPprof(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for _, args := range [][]string{{"tasks", srv.URL}, {"sites", srv.URL}, {"task", "1", srv.URL}, {"top", srv.URL}} {
		out, errs, code := cli(t, args...)
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "serves neither the inspection API") ||
			!strings.Contains(errs, "/debug/pprof/goroutine?debug=0: 404") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and one line", args, code, out, errs)
		}
	}
	_, errs, code := cli(t, "tasks", "999999999")
	if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no inspectd agent") || !strings.Contains(errs, "no gops agent") {
		t.Errorf("pid without agent: exit %d, stderr %q", code, errs)
	}
	_, errs, code = cli(t, "tasks", "gops://nohostport")
	if code != 2 || !strings.Contains(errs, "want gops://host:port") {
		t.Errorf("bad gops target: exit %d, stderr %q", code, errs)
	}
}

// TestHelperProcess is a Go program for the tests below, run as a
// subprocess: with INSPECT_CLI_HELPER=agent it embeds the inspectd agent,
// with gops a gops agent; both park goroutines and print "ready", then run
// until their stdin closes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("INSPECT_CLI_HELPER")
	if mode == "" {
		t.Skip("a subprocess of other tests")
	}
	switch mode {
	case "agent":
		a, err := agent.Listen(agent.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer a.Close()
	case "gops":
		if err := gopsagent.Listen(gopsagent.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer gopsagent.Close()
	}
	stop := parkCLIGoroutines()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop()
}

// startHelper runs TestHelperProcess in mode and returns its pid.
func startHelper(t *testing.T, mode string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "INSPECT_CLI_HELPER="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper %s: %q, %v", mode, line, err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd.Process.Pid
}

// ps lists the helpers with their agents; a pid with a gops agent is a
// target; a gops agent's host:port is found out by the failed HTTP request.
func TestPsAndGops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses and a 5s gops trace")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("GOPS_CONFIG_DIR", t.TempDir())
	agentPid := startHelper(t, "agent")
	gopsPid := startHelper(t, "gops")
	gopsAddr, _, err := remote.GopsAddr(gopsPid)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ps", func(t *testing.T) {
		out, errs, code := cli(t, "ps", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rows []psRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		byPid := map[int]psRow{}
		for _, r := range rows {
			byPid[r.PID] = r
		}
		a, g := byPid[agentPid], byPid[gopsPid]
		if a.Agent == "" || a.GopsAgent != "" || a.GoVersion != runtime.Version() || a.PPID != os.Getpid() || !strings.HasSuffix(a.Path, filepath.Base(os.Args[0])) {
			t.Errorf("agent helper %d: %+v", agentPid, a)
		}
		if g.GopsAgent != gopsAddr || g.Agent != "" {
			t.Errorf("gops helper %d: %+v, want gops agent %s", gopsPid, g, gopsAddr)
		}
		out, _, _ = cli(t, "ps")
		if !strings.HasPrefix(out, "PID") || !strings.Contains(out, "AGENT") {
			t.Errorf("no header:\n%s", out)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == strconv.Itoa(agentPid) && !strings.Contains(line, "inspectd "+a.Agent) {
				t.Errorf("agent helper's line without its agent: %s", line)
			}
			if len(f) > 0 && f[0] == strconv.Itoa(gopsPid) && !strings.HasSuffix(line, "gops "+gopsAddr) {
				t.Errorf("gops helper's line without its agent: %s", line)
			}
		}
	})
	t.Run("agent pid", func(t *testing.T) {
		out, errs, code := cli(t, "tasks", strconv.Itoa(agentPid), "--window", "200ms", "--filter", "task=cli-receiver")
		if code != 0 || strings.Count(out, "cli-receiver") < 2 || strings.Contains(out, "computed in inspect-cli") {
			t.Errorf("exit %d %s: want the agent's model:\n%s", code, errs, out)
		}
	})
	t.Run("gops pid", func(t *testing.T) {
		out, errs, code := cli(t, "tasks", strconv.Itoa(gopsPid), "--filter", "task=cli-receiver")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{fmt.Sprintf("target %d (gops %s)", gopsPid, gopsAddr), runtime.Version(), "GOMAXPROCS",
			"source trace+dump (computed in inspect-cli from gops agent)", "a 5s execution trace", "a gops agent serves no goroutineleak profile",
			"inspect-cli.cliReceive remote_test.go"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		if strings.Count(out, "chan receive") != 2 {
			t.Errorf("want 2 receivers waiting on chan receive:\n%s", out)
		}
	})
	t.Run("gops host:port", func(t *testing.T) {
		out, errs, code := cli(t, "stacks", gopsAddr)
		if code != 0 || !strings.Contains(out, "target "+gopsAddr+" (gops agent)") || !strings.Contains(out, "gops stack dump") ||
			!strings.Contains(out, "labels {task=cli-receiver}") {
			t.Errorf("exit %d %s:\n%s", code, errs, out)
		}
		_, errs, code = cli(t, "profile", "heap", "gops://"+gopsAddr)
		if code != 2 || !strings.Contains(errs, "not the gops agent") {
			t.Errorf("profile of a gops agent: exit %d, %s", code, errs)
		}
	})
}
