package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gops/goprocess"
	"go.uber.org/goleak"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/portfile"
	"github.com/inspectd/inspectd/internal/workload"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/inspectd once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "inspectd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "inspectd")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/inspectd").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building inspectd: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := portfile.RunIsolated(m)
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestDaemonInProcess starts the whole daemon on port 0 and stops it cleanly.
func TestDaemonInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Setenv("GOPS_CONFIG_DIR", t.TempDir())
	cfg := Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Workloads = []string{"hello"}
	d, err := Start(cfg, workload.Default, NewLogger(cfg, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	waitHealthy(t, "http://"+d.Addr())
	if d.GopsAddr() == "" {
		t.Error("gops agent address unknown")
	}
	st, _ := d.Supervisor().StatusOf("hello")
	if !st.Running {
		t.Error("configured workload hello is not running")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("shutdown took longer than its budget")
	}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer within 10s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is inspectd running as a subprocess.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	gops   string
	stderr *bytes.Buffer
	mu     sync.Mutex
	exited chan struct{} // closed when stderr is drained: the process is gone
}

// startProc runs the binary with args and waits for its "listening" record.
func startProc(t testing.TB, gopsDir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"--log-format", "json", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "GOPS_CONFIG_DIR="+gopsDir)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready, exited := make(chan struct{}), make(chan struct{})
	p.exited = exited
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
				Gops string `json:"gops"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "inspectd listening" {
				p.addr, p.gops = rec.Addr, rec.Gops
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("inspectd exited before listening; stderr:\n%s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("inspectd did not log that it listens within 20s; stderr:\n%s", p.log())
	}
	return p
}

// wait waits for the process to exit after its stderr is read to the end
// (Wait closes the pipe, so it must come last).
func (p *proc) wait() error {
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	return p.cmd.Wait()
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonProcess runs the binary with its default workload mix, checks every
// surface, then stops it with SIGTERM.
func TestDaemonProcess(t *testing.T) {
	gopsDir := t.TempDir()
	p := startProc(t, gopsDir)
	base := "http://" + p.addr

	for _, c := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/metrics", `inspectd_workload_running{kind="broken",workload="leak"} 1`},
		{"/metrics", "go_sched_latencies_seconds_bucket"},
		{"/metrics", "go_goroutines"},
		// From zero before any panic, so that increase() counts the first.
		{"/metrics", `inspectd_workload_panics_total{workload="leak"} 0`},
		{"/metrics", `inspectd_workload_restarts_total{workload="leak"} 0`},
		// The figures a workload reports, 0 while it does not run.
		{"/metrics", `inspectd_workload_p99_seconds{workload="web-service"} 0`},
		{"/debug/pprof/goroutineleak?debug=1", "goroutineleak profile"},
		{"/debug/pprof/goroutine?debug=1", `"workload":"blocking-lock"`},
		{"/debug/fgprof?seconds=1&format=folded", "runtime.gopark"},
		{"/api/v1/workloads", `"name": "deadlock"`},
	} {
		if code, body := get(t, base+c.path); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("GET %s = %d, want 200 with %q; got %.300s", c.path, code, c.want, body)
		}
	}
	for _, name := range DefaultWorkloads {
		if !strings.Contains(p.log(), `"msg":"workload started","workload":"`+name+`"`) {
			t.Errorf("no start logged for default workload %s", name)
		}
	}

	checkInspection(t, base)

	// The port file makes the daemon's pid a target of inspect-cli.
	dir, err := portfile.Dir()
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, strconv.Itoa(p.cmd.Process.Pid))
	if b, err := os.ReadFile(pf); err != nil || string(b) != p.addr {
		t.Errorf("port file %s: %q, %v; want %s", pf, b, err, p.addr)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(pf); !os.IsNotExist(err) {
			t.Errorf("port file %s left after the daemon stopped: %v", pf, err)
		}
	})

	// The stock gops CLI finds agents through their port files and this library.
	t.Setenv("GOPS_CONFIG_DIR", gopsDir)
	if _, err := os.Stat(filepath.Join(gopsDir, strconv.Itoa(p.cmd.Process.Pid))); err != nil {
		t.Errorf("gops port file: %v", err)
	}
	var listed bool
	for _, gp := range goprocess.FindAll() {
		if gp.PID == p.cmd.Process.Pid && gp.Agent {
			listed = true
		}
	}
	if !listed {
		t.Error("gops does not list the daemon as a process with an agent")
	}
	// gops' wire protocol: one byte per request; 0x1 asks for the stack dump.
	conn, err := net.DialTimeout("tcp", p.gops, 5*time.Second)
	if err != nil {
		t.Fatalf("dial gops agent at %s: %v", p.gops, err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte{0x1})
	stack, _ := io.ReadAll(conn)
	conn.Close()
	if !bytes.Contains(stack, []byte("goroutine ")) || !bytes.Contains(stack, []byte("workload.")) {
		t.Errorf("gops stack dump lacks the workloads' goroutines: %.300s", stack)
	}

	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	err = p.wait()
	if err != nil {
		t.Errorf("exit after SIGTERM: %v; want status 0\n%s", err, p.log())
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("shutdown took %v, want under 5s", took)
	}
	if _, err := os.Stat(filepath.Join(gopsDir, strconv.Itoa(p.cmd.Process.Pid))); !os.IsNotExist(err) {
		t.Errorf("gops port file left behind after shutdown: %v", err)
	}
	if !strings.Contains(p.log(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.log())
	}
}

func TestDaemonRefusesPublicWithoutToken(t *testing.T) {
	cmd := exec.Command(binary(t), "--listen", "0.0.0.0:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "refusing to listen on 0.0.0.0:0 without a token") {
		t.Errorf("message: %s", out)
	}
}

func TestDaemonTokenProcess(t *testing.T) {
	p := startProc(t, t.TempDir(), "--token", "s3cret", "--workloads", "hello", "--gops-addr", "off")
	base := "http://" + p.addr
	if code, _ := get(t, base+"/api/v1/workloads"); code != 401 {
		t.Errorf("API without token: %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", base+"/debug/pprof/goroutineleak?debug=1", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("pprof with token: %d", resp.StatusCode)
	}
	// Snapshots are composed of the recorder's slices.
	req, _ = http.NewRequest("GET", base+"/api/v1/snapshot?window=1s", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var snap api.Snapshot
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil || !strings.HasPrefix(snap.Source, "trace-slices") {
		t.Errorf("snapshot: source %q, %v", snap.Source, err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.wait(); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
}

// checkInspection reads the task model of the default mix over HTTP: the
// blocking-lock waiters must show as waiting in sync.Mutex.Lock at their
// Lock call, with their labels, and the watch stream must send updates.
func checkInspection(t *testing.T, base string) {
	t.Helper()
	var snap api.Snapshot
	var waiters []api.Task
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := get(t, base+"/api/v1/snapshot?window=2s")
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			t.Fatalf("snapshot: %v: %.300s", err, body)
		}
		waiters = waiters[:0]
		for _, tk := range snap.Tasks {
			if tk.Name == "blocking-lock/waiter" && tk.State == "waiting" && tk.WaitReason == "sync.Mutex.Lock" &&
				strings.HasSuffix(tk.Location.File, "blocking_lock.go") && tk.Labels["workload"] == "blocking-lock" {
				waiters = append(waiters, tk)
			}
		}
		if len(waiters) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no blocking-lock waiters in sync.Mutex.Lock in the snapshot after 15s (%d tasks, notes %v)", len(snap.Tasks), snap.Notes)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// (A window of slices starts and ends where they do.)
	if snap.WindowNS <= 0 || snap.WindowNS > int64(2600*time.Millisecond) || snap.Process.Goroutines == 0 || snap.Process.GOMAXPROCS == 0 {
		t.Errorf("snapshot window %v, process %+v", time.Duration(snap.WindowNS), snap.Process)
	}
	var site *api.Site
	for i, s := range snap.Sites {
		if s.Reason == "sync.Mutex.Lock" && strings.HasSuffix(s.Location.File, "blocking_lock.go") {
			site = &snap.Sites[i]
		}
	}
	if site == nil || site.Waiting < 4 || site.WaitNS <= 0 {
		t.Errorf("no wait site for the blocking-lock waiters: %+v", site)
	}

	code, body := get(t, base+"/api/v1/tasks/"+strconv.FormatInt(waiters[0].ID, 10))
	var task api.Task
	if code != 200 || json.Unmarshal([]byte(body), &task) != nil || len(task.Stack()) == 0 || task.Labels["role"] != "waiter" {
		t.Errorf("task %d: %d %.300s", waiters[0].ID, code, body)
	}
	if code, body := get(t, base+"/api/v1/tasks/999999999"); code != 404 || !strings.Contains(body, "no goroutine 999999999") {
		t.Errorf("unknown task: %d %s", code, body)
	}
	if code, body := get(t, base+"/api/v1/snapshot?window=forever"); code != 400 || !strings.Contains(body, "window") {
		t.Errorf("bad window: %d %s", code, body)
	}

	// Two updates of the watch stream: the first full, the next a diff.
	resp, err := http.Get(base + "/api/v1/watch?interval=200ms&window=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("watch content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var updates []api.Update
	for len(updates) < 2 && sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var u api.Update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				t.Fatalf("watch event: %v", err)
			}
			updates = append(updates, u)
		}
	}
	if len(updates) < 2 || !updates[0].Full || updates[1].Full || updates[1].Seq != 2 || len(updates[0].Tasks) == 0 {
		t.Errorf("watch: %d updates; want a full one then a diff", len(updates))
	}
}
