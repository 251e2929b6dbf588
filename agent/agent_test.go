package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	rtrace "runtime/trace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/tracewin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A program that embeds the agent shows its own goroutines, labelled and in
// the states they are in, through the API the CLI reads.
func TestAgentServesTheProgramsGoroutines(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	a, err := Listen(Options{TraceMinAge: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	var mu sync.Mutex
	mu.Lock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ctx := pprof.WithLabels(context.Background(), pprof.Labels("task", "orders"))
	for range 3 {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("role", "waiter"), func(context.Context) {
				mu.Lock() // waits for the test to unlock
				mu.Unlock()
			})
		})
	}
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	defer func() {
		mu.Unlock()
		close(stop)
		wg.Wait()
	}()

	c := api.NewClient(a.Addr(), "")
	var waiting []api.Task
	deadline := time.Now().Add(10 * time.Second)
	for {
		var snap api.Snapshot
		if err := c.Do(context.Background(), "GET", "/api/v1/snapshot?window=1s", nil, &snap); err != nil {
			t.Fatal(err)
		}
		waiting = waiting[:0]
		for _, tk := range snap.Tasks {
			if tk.Name == "orders" && tk.WaitReason == "sync.Mutex.Lock" && tk.Labels["role"] == "waiter" &&
				strings.HasSuffix(tk.Location.File, "agent_test.go") {
				waiting = append(waiting, tk)
			}
		}
		if len(waiting) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("found %d of 3 waiters named orders in sync.Mutex.Lock in %d tasks", len(waiting), len(snap.Tasks))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// pprof is served too.
	if err := c.Do(context.Background(), "GET", "/debug/pprof/", nil, nil); err != nil {
		t.Errorf("pprof index: %v", err)
	}
	// An execution trace can be taken while the snapshots' live trace
	// stream runs (the runtime allows one such trace at a time): the stream
	// gives way, and snapshots go on.
	resp, err := http.Get("http://" + a.Addr() + "/debug/pprof/trace?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("go 1.")) {
		t.Fatalf("GET /debug/pprof/trace: %s, %d bytes starting %q, %v", resp.Status, len(body), body[:min(len(body), 40)], err)
	}
	if w, err := tracewin.AnalyzeTrace(bytes.NewReader(body), tracewin.WindowOptions{}); err != nil || len(w.Goroutines) == 0 {
		t.Errorf("the trace does not read: %d goroutines, %v", len(w.Goroutines), err)
	}
	var snap api.Snapshot
	if err := c.Do(context.Background(), "GET", "/api/v1/snapshot?window=1s", nil, &snap); err != nil || len(snap.Tasks) == 0 {
		t.Errorf("snapshot after the trace: %d tasks, %v", len(snap.Tasks), err)
	}
	// The port file lets inspect-cli ps find the agent.
	dir, _ := PortDir()
	pf := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if b, err := os.ReadFile(pf); err != nil || string(b) != a.Addr() {
		t.Errorf("port file %s: %q %v", pf, b, err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(pf); !os.IsNotExist(err) {
		t.Errorf("port file left after Close: %v", err)
	}
}

func TestAgentRefusesPublicWithoutToken(t *testing.T) {
	_, err := Listen(Options{Addr: "0.0.0.0:0", NoPortFile: true})
	if err == nil || !strings.Contains(err.Error(), "without a token") {
		t.Fatalf("Listen on 0.0.0.0 without token: %v", err)
	}
}

func TestAgentRefusesATokenThatCannotTravel(t *testing.T) {
	_, err := Listen(Options{Addr: "0.0.0.0:0", Token: "  ", NoPortFile: true})
	if err == nil || !strings.Contains(err.Error(), `Options.Token "  "`) {
		t.Fatalf("Listen with a blank token: %v", err)
	}
}

func TestAgentRefusesANegativeCPUBudget(t *testing.T) {
	_, err := Listen(Options{CPUBudget: -1, NoPortFile: true})
	if err == nil || !strings.Contains(err.Error(), "CPU budget -1") {
		t.Fatalf("Listen with a CPU budget of -1: %v", err)
	}
}

func TestOneAgentPerProcess(t *testing.T) {
	a, err := Listen(Options{NoPortFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := Listen(Options{NoPortFile: true}); err == nil {
		b.Close()
		t.Fatal("a second agent started beside the first; only one can trace the process")
	}
}

// While nobody asks, the agent traces nothing: the program's own
// runtime/trace.Start works, and costs it nothing.
func TestAgentIdleIsFree(t *testing.T) {
	a, err := Listen(Options{NoPortFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := rtrace.Start(io.Discard); err != nil {
		t.Fatalf("the program's own trace beside an idle agent: %v", err)
	}
	rtrace.Stop()
	// A client asks: the agent traces, and the program's trace waits.
	var snap api.Snapshot
	if err := api.NewClient(a.Addr(), "").Do(context.Background(), "GET", "/api/v1/snapshot?window=500ms", nil, &snap); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(snap.Source, "trace-slices") || snap.RecordingSince.IsZero() {
		t.Errorf("first snapshot: source %q, recording since %v; want trace slices recorded from the request on", snap.Source, snap.RecordingSince)
	}
}

// An address already taken is named as such, not as a token's fault.
func TestAgentPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(Options{Addr: ln.Addr().String(), NoPortFile: true})
	if err == nil || strings.Contains(err.Error(), "Token") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Listen on a taken port: %v", err)
	}
}

// A watcher of a program whose goroutines keep every core busy switching on
// channels gets updates from the first on, each saying what it covers: a
// window of trace, or that the agent records and has no window yet. (The
// runtime's tracer stops in steps that each wait for a turn, and a turn
// comes seldom there: the first window may take seconds.) Then the
// program's goroutines come, as tasks.
func TestWatchBusyPingPong(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const pairs = 50
	for range pairs {
		ping, pong := make(chan int), make(chan int)
		wg.Go(func() {
			for v := range ping {
				pong <- v + 1
			}
		})
		wg.Go(func() {
			defer close(ping)
			v := 0
			for {
				select {
				case <-stop:
					return
				case ping <- v:
				}
				v = <-pong
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	a, err := Listen(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := api.NewClient(a.Addr(), "").Open(ctx, "/api/v1/watch?interval=200ms&window=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan api.Update)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "event: ") && line != "event: update" {
				t.Errorf("watch stream: %s", line)
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var u api.Update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				t.Errorf("update %q: %v", data, err)
				return
			}
			select {
			case events <- u:
			case <-ctx.Done():
				return
			}
		}
	}()

	var state api.Snapshot
	for n := 1; ; n++ {
		var u api.Update
		select {
		case <-ctx.Done():
			t.Fatalf("after %d updates: no update with the ping-pong goroutines as tasks", n-1)
		case got, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %d updates", n-1)
			}
			u = got
		}
		if u.Seq != int64(n) {
			t.Fatalf("update %d has seq %d", n, u.Seq)
		}
		if u.WindowNS == 0 {
			// No window yet: it says why, and that it records.
			if !u.Full || u.RecordingSince.IsZero() || len(u.Tasks) != 0 || len(u.Notes) == 0 || u.Process.Goroutines < 2*pairs {
				t.Fatalf("update %d without a window: full %v, recording since %v, %d tasks, %d goroutines, notes %q", n, u.Full,
					u.RecordingSince, len(u.Tasks), u.Process.Goroutines, u.Notes)
			}
			t.Logf("update %d: recording for %s: %s", n, u.Time.Sub(u.RecordingSince).Round(time.Millisecond), u.Notes[0])
			state = api.Snapshot{}
			continue
		}
		api.Apply(&state, u)
		busy := 0
		for _, tk := range state.Tasks {
			if strings.HasSuffix(tk.Location.File, "agent_test.go") && (tk.Stats.BusyNS > 0 || tk.Stats.SchedNS > 0) {
				busy++
			}
		}
		t.Logf("update %d: window %s (traced %s), %d tasks, %d of them ping-pong's, busy or runnable", n,
			time.Duration(u.WindowNS), time.Duration(u.ObservedNS), len(state.Tasks), busy)
		if busy >= pairs {
			return
		}
	}
}
