//go:build linux

// Package target is the program that cmd/costbench measures: one workload
// (channel ping-pong, a pool of tiny tasks, an HTTP server, or parked
// goroutines) under one kind of inspection (none, the embedded agent with
// default options, or net/http/pprof), run as a subprocess of the driver.
//
// The driver starts it (its own executable, with Env set in the
// environment: see Main) and talks to it over a pipe. The target writes one
// JSON line to stdout once it runs, a Ready; then it answers each line
// "stat" read on stdin with a JSON line, a Stat: operations done, its CPU
// time (CLOCK_PROCESS_CPUTIME_ID, and getrusage's split), resident memory (VmRSS) and the runtime's
// stop-the-world pause histograms. A line "heap PATH" writes its heap
// profile to PATH and answers with a Stat too. It exits when stdin closes,
// on "quit", SIGINT or SIGTERM, after closing the agent.
//
// By hand:
//
//	COSTBENCH_TARGET=1 go run ./cmd/costbench -workload parked -parked 10000 -inspect agent
//	stat
//
// Everything listens on 127.0.0.1 on a free port.
package target

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof" // served by the pprof inspection only, on a listener of its own
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/felixge/fgprof"
	gopsagent "github.com/google/gops/agent"
	"golang.org/x/sys/unix"

	"github.com/inspectd/inspectd/agent"
)

// Env is the environment variable that makes cmd/costbench's executable run
// as a target: its value is irrelevant, its arguments are the target's flags.
const Env = "COSTBENCH_TARGET"

// Workloads and inspections a target runs.
const (
	Pingpong = "pingpong"
	Pool     = "pool"
	HTTP     = "http"
	Parked   = "parked"

	InspectNone  = "none"
	InspectAgent = "agent"
	InspectPprof = "pprof"
)

// Pause histograms read from runtime/metrics.
const (
	pausesGC    = "/sched/pauses/total/gc:seconds"
	pausesOther = "/sched/pauses/total/other:seconds"
	heapLive    = "/gc/heap/live:bytes"
	heapGoal    = "/gc/heap/goal:bytes"
)

// Ready is the first line a target writes: what it serves and where.
type Ready struct {
	PID        int    `json:"pid"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Goroutines int    `json:"goroutines"`
	// Addresses, empty when not served.
	AgentAddr string `json:"agent_addr,omitempty"` // the inspection API (agent.Listen)
	PprofAddr string `json:"pprof_addr,omitempty"` // net/http/pprof (and /debug/fgprof with -gops-dir)
	GopsAddr  string `json:"gops_addr,omitempty"`  // the gops agent
	HTTPAddr  string `json:"http_addr,omitempty"`  // the http workload: GET /work
	// PauseBuckets are the boundaries of the pause histograms of Stat, in
	// seconds, as runtime/metrics gives them (GC, then other), with
	// math.MaxFloat64 for infinity.
	PauseBucketsGC    []float64 `json:"pause_buckets_gc"`
	PauseBucketsOther []float64 `json:"pause_buckets_other"`
}

// Stat is a target's answer to "stat".
type Stat struct {
	MonoNS int64 `json:"mono_ns"` // monotonic time since the target started
	Ops    int64 `json:"ops"`     // operations done since it started
	// CPUNS is the CPU time of every thread of the process,
	// clock_gettime(CLOCK_PROCESS_CPUTIME_ID): exact, where getrusage's
	// user and system split is sampled at clock ticks and adjusted.
	CPUNS    int64 `json:"cpu_ns"`
	UserNS   int64 `json:"user_ns"` // getrusage(RUSAGE_SELF)
	SysNS    int64 `json:"sys_ns"`
	RSSBytes int64 `json:"rss_bytes"` // VmRSS
	// HeapLiveBytes is the heap the last GC found live, and HeapGoalBytes
	// the size the heap may grow to before the next: RSS follows the goal
	// (the heap's garbage) more than what is live.
	HeapLiveBytes uint64   `json:"heap_live_bytes"`
	HeapGoalBytes uint64   `json:"heap_goal_bytes"`
	Goroutines    int      `json:"goroutines"`
	PausesGC      []uint64 `json:"pauses_gc"` // counts per bucket of Ready.PauseBucketsGC
	PauseOther    []uint64 `json:"pauses_other"`
}

// config is a target's command line.
type config struct {
	workload     string
	inspect      string
	pairs        int
	taskIters    int
	handlerIters int
	parked       int
	gopsDir      string
	budget       float64 // the agent's OverheadBudget; 0: its default
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("costbench target", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.workload, "workload", Pingpong, "pingpong, pool, http or parked")
	fs.StringVar(&c.inspect, "inspect", InspectNone, "none, agent (agent.Listen with default options) or pprof (net/http/pprof)")
	fs.IntVar(&c.pairs, "pairs", 50, "pingpong: goroutine pairs")
	fs.IntVar(&c.taskIters, "task-iters", 1500, "pool: Spin iterations per task")
	fs.IntVar(&c.handlerIters, "handler-iters", 50000, "http: Spin iterations per request")
	fs.IntVar(&c.parked, "parked", 10000, "parked: goroutines")
	fs.Float64Var(&c.budget, "overhead-budget", 0, "with -inspect agent: the agent's OverheadBudget (0: its default)")
	fs.StringVar(&c.gopsDir, "gops-dir", "", "with -inspect pprof: also serve /debug/fgprof and run a gops agent that writes its port file here")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch c.workload {
	case Pingpong, Pool, HTTP, Parked:
	default:
		return c, fmt.Errorf("-workload %q: want pingpong, pool, http or parked", c.workload)
	}
	switch c.inspect {
	case InspectNone, InspectAgent, InspectPprof:
	default:
		return c, fmt.Errorf("-inspect %q: want none, agent or pprof", c.inspect)
	}
	if c.pairs < 1 || c.taskIters < 0 || c.handlerIters < 0 || c.parked < 0 {
		return c, errors.New("-pairs must be positive, -task-iters, -handler-iters and -parked not negative")
	}
	if c.budget < 0 || c.budget > 1 || c.budget != 0 && c.inspect != InspectAgent {
		return c, errors.New("-overhead-budget goes with -inspect agent, from 0 to 1")
	}
	if c.gopsDir != "" && c.inspect != InspectPprof {
		return c, errors.New("-gops-dir goes with -inspect pprof")
	}
	return c, nil
}

// Main runs a target with args (its flags, without the program name) until
// stdin closes, "quit" or a signal, and returns the exit status.
func Main(args []string) int {
	c, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "costbench target:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "costbench target:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, c config, in io.Reader, out io.Writer) error {
	start := time.Now()
	ready := Ready{PID: os.Getpid(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var pauses [2]metrics.Sample
	pauses[0].Name, pauses[1].Name = pausesGC, pausesOther
	metrics.Read(pauses[:])
	for _, s := range pauses {
		if s.Value.Kind() != metrics.KindFloat64Histogram {
			return fmt.Errorf("runtime/metrics has no histogram %s in %s", s.Name, runtime.Version())
		}
	}
	ready.PauseBucketsGC = finite(pauses[0].Value.Float64Histogram().Buckets)
	ready.PauseBucketsOther = finite(pauses[1].Value.Float64Histogram().Buckets)

	// The inspection first, as a program would start it early in main.
	switch c.inspect {
	case InspectAgent:
		a, err := agent.Listen(agent.Options{OverheadBudget: c.budget})
		if err != nil {
			return fmt.Errorf("starting the agent: %w", err)
		}
		defer a.Close()
		ready.AgentAddr = a.Addr()
	case InspectPprof:
		if c.gopsDir != "" {
			http.Handle("/debug/fgprof", fgprof.Handler())
			addr, err := startGops(c.gopsDir)
			if err != nil {
				return err
			}
			defer gopsagent.Close()
			ready.GopsAddr = addr
		}
		addr, err := serve(http.DefaultServeMux)
		if err != nil {
			return fmt.Errorf("serving net/http/pprof: %w", err)
		}
		ready.PprofAddr = addr
	}

	ops := newCounters(max(c.pairs, runtime.GOMAXPROCS(0), 1))
	switch c.workload {
	case Pingpong:
		pingpong(c.pairs, ops)
	case Pool:
		pool(c.taskIters, ops)
	case HTTP:
		addr, err := serve(workHandler(c.handlerIters, ops))
		if err != nil {
			return fmt.Errorf("serving the http workload: %w", err)
		}
		ready.HTTPAddr = addr
	case Parked:
		park(c.parked)
	}
	ready.Goroutines = runtime.NumGoroutine()

	enc := json.NewEncoder(out)
	if err := enc.Encode(ready); err != nil {
		return fmt.Errorf("writing the ready line: %w", err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok || line == "quit" {
				return nil
			}
			if path, ok := strings.CutPrefix(line, "heap "); ok {
				if err := writeHeapProfile(path); err != nil {
					return err
				}
			} else if line != "stat" {
				return fmt.Errorf("unknown command %q: want stat, heap PATH or quit", line)
			}
			st, err := stat(start, ops, pauses[:])
			if err != nil {
				return err
			}
			if err := enc.Encode(st); err != nil {
				return fmt.Errorf("writing a stat: %w", err)
			}
		}
	}
}

// finite replaces the infinite bounds of histogram buckets, which JSON
// cannot carry, with the largest finite ones.
func finite(buckets []float64) []float64 {
	out := slices.Clone(buckets)
	for i, b := range out {
		if math.IsInf(b, 0) {
			out[i] = math.Copysign(math.MaxFloat64, b)
		}
	}
	return out
}

// serve serves h on a free loopback port until the process exits.
func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return ln.Addr().String(), nil
}

// startGops starts a gops agent on a loopback port, its port file in dir.
func startGops(dir string) (string, error) {
	if err := gopsagent.Listen(gopsagent.Options{Addr: "127.0.0.1:0", ConfigDir: dir}); err != nil {
		return "", fmt.Errorf("starting the gops agent: %w", err)
	}
	// The agent tells its port only through its port file.
	port, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(os.Getpid())))
	if err != nil {
		gopsagent.Close()
		return "", fmt.Errorf("gops agent: reading its port file: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strings.TrimSpace(string(port))), nil
}

func stat(start time.Time, ops *counters, pauses []metrics.Sample) (Stat, error) {
	// The time, the operations and the CPU time together, with no system
	// call between them: the goroutine can wait long for a P on its return
	// from one (a tenth of a second behind 100 ping-pong goroutines), which
	// would shift work from one interval to the next.
	var cpu unix.Timespec
	st := Stat{MonoNS: time.Since(start).Nanoseconds(), Ops: ops.sum()}
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &cpu); err != nil {
		return Stat{}, fmt.Errorf("clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %w", err)
	}
	st.CPUNS = cpu.Nano()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Stat{}, fmt.Errorf("getrusage: %w", err)
	}
	st.UserNS, st.SysNS = ru.Utime.Nano(), ru.Stime.Nano()
	rss, err := vmRSS()
	if err != nil {
		return Stat{}, err
	}
	st.RSSBytes = rss
	st.Goroutines = runtime.NumGoroutine()
	metrics.Read(pauses)
	st.PausesGC = pauses[0].Value.Float64Histogram().Counts
	st.PauseOther = pauses[1].Value.Float64Histogram().Counts
	heap := []metrics.Sample{{Name: heapLive}, {Name: heapGoal}}
	metrics.Read(heap)
	if heap[0].Value.Kind() == metrics.KindUint64 {
		st.HeapLiveBytes = heap[0].Value.Uint64()
	}
	if heap[1].Value.Kind() == metrics.KindUint64 {
		st.HeapGoalBytes = heap[1].Value.Uint64()
	}
	return st, nil
}

// writeHeapProfile writes the heap profile (what is live at the last GC,
// and what was allocated since the start) to path, without forcing a GC,
// which would change what is measured.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the heap profile %s: %w", path, err)
	}
	return nil
}

// vmRSS reads this process's resident set size from /proc/self/status.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading VmRSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}
