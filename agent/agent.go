// Package agent embeds inspectd's inspection API in any Go program, so that
// inspect-cli sees its goroutines as tasks: state, wait reason, labels, busy,
// scheduled and idle time, polls, spawn site and wait sites.
//
// One call, early in main:
//
//	a, err := agent.Listen(agent.Options{}) // 127.0.0.1, a free port
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer a.Close()
//	log.Printf("inspect with: inspect-cli top %s", a.Addr())
//
// The agent serves, on a loopback port of its own:
//
//	GET /api/v1/snapshot, /api/v1/tasks/{id}, /api/v1/sites, /api/v1/findings, /api/v1/watch
//	GET /debug/pprof/... (net/http/pprof, including goroutineleak), /debug/fgprof
//	GET /healthz
//
// Findings of the diagnosis rules (leaks, deadlocks, contention, ...) come
// with the snapshots, as from inspectd.
//
// Inspection costs the program almost nothing: while nobody asks, no
// tracer runs; while clients ask (inspect-cli top, diagnose), the execution
// tracer runs for a part of each interval, so that it, the analysis of
// what it writes and the snapshots clients ask for take at most
// Options.OverheadBudget of the CPU the program uses (default 5%); and no stop-the-world pause lasts longer than
// Options.MaxPause (default 1ms): a full goroutine dump is taken only in a
// program small enough for it. The program's own runtime/trace.Start fails
// while the agent traces (one execution trace runs at a time), and the
// agent's trace fails while the program's runs.
//
// It writes its address to a port file (in $XDG_CONFIG_HOME/inspectd/agents,
// named after the process id) so that `inspect-cli ps` finds it, and removes
// it on Close.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/portfile"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// Options configure the agent. The zero value listens on 127.0.0.1 on a
// free port.
type Options struct {
	// Addr is the listen address (default "127.0.0.1:0"). A non-loopback
	// address needs a Token.
	Addr string
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
	// OverheadBudget is the share of the program's CPU time that
	// inspection may take while clients ask (default 0.05): the runtime's
	// execution tracer, the agent's analysis of it, and building,
	// diagnosing and encoding the snapshots clients ask for. A program whose
	// goroutines switch often is traced a part of each interval, and the
	// numbers are scaled up from it (the snapshot says so).
	OverheadBudget float64
	// MaxPause is the longest stop-the-world pause inspection may cause
	// (default 1ms). A full goroutine dump, which gives exact labels and
	// wait minutes, stops the world for about 6µs per goroutine: it is
	// taken only where that fits.
	MaxPause time.Duration
	// FlightRecorder keeps an execution trace flight recorder running all
	// the time (bounded by TraceMinAge and TraceMaxBytes, defaults 10s and
	// 64 MiB), so that the first snapshot after a quiet spell covers what
	// happened just before it. It costs the tracer's overhead all the
	// time, whether anyone looks or not: nothing measurable for a program
	// that computes in long stretches, up to 60% of the throughput of one
	// whose goroutines switch every microsecond (BENCHMARKS.md). Only one
	// flight recorder runs per process: Listen fails when the program
	// already runs one.
	FlightRecorder bool
	TraceMinAge    time.Duration
	TraceMaxBytes  uint64
	// CPUBudget is the share of one core that building snapshots may take
	// while clients ask for them (default 0.25): requests that come sooner
	// share the last snapshot.
	CPUBudget float64
	// Logger receives the agent's few records (default: none).
	Logger *slog.Logger
	// NoPortFile leaves out the port file that `inspect-cli ps` reads.
	NoPortFile bool
	// DiagnoseEvery, when set, runs the diagnosis rules that often in the
	// background (at least 100ms), so that findings are current whenever a
	// client asks. By default they run only on the snapshots clients ask
	// for (inspect-cli top, diagnose), which costs nothing while nobody looks.
	DiagnoseEvery time.Duration
}

// Agent is a running agent.
type Agent struct {
	ln        net.Listener
	srv       *http.Server
	col       *inproc.Collector
	stopDiag  context.CancelFunc
	diagDone  chan struct{}
	portFile  string
	closeOnce sync.Once
	closeErr  error
}

// Listen starts the agent.
func Listen(opts Options) (*Agent, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := server.CheckToken(opts.Token); err != nil {
		return nil, fmt.Errorf("agent: Options.Token %w", err)
	}
	if loopback, err := server.IsLoopback(opts.Addr); err != nil {
		return nil, fmt.Errorf("agent: address %q: %w", opts.Addr, err)
	} else if !loopback && opts.Token == "" {
		return nil, fmt.Errorf("agent: refusing to listen on %s without a token: the API shows every goroutine's stack; set Options.Token or use a loopback address", opts.Addr)
	}
	if opts.CPUBudget < 0 {
		return nil, fmt.Errorf("agent: CPU budget %v: want a share of one core above 0 (0: the default, 0.25)", opts.CPUBudget)
	}
	if opts.OverheadBudget < 0 || opts.OverheadBudget > 1 {
		return nil, fmt.Errorf("agent: overhead budget %v: want a share of the program's CPU from 0 to 1 (0: the default, 0.05)", opts.OverheadBudget)
	}
	if opts.MaxPause < 0 {
		return nil, fmt.Errorf("agent: max pause %v: want a duration above 0 (0: the default, 1ms)", opts.MaxPause)
	}
	copts := inproc.CollectorOptions{OverheadBudget: opts.OverheadBudget, MaxPause: opts.MaxPause, FlightRecorder: opts.FlightRecorder,
		TraceMinAge: opts.TraceMinAge, TraceMaxBytes: opts.TraceMaxBytes, CPUBudget: opts.CPUBudget, Logger: opts.Logger}
	col, err := inproc.NewCollector(copts)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		col.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	eng, err := diagnose.New(diagnose.Config{})
	if err != nil {
		ln.Close()
		col.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	insp := diagnose.NewInspector(col, eng)
	diagCtx, stopDiag := context.WithCancel(context.Background())
	a := &Agent{ln: ln, col: col, stopDiag: stopDiag, diagDone: make(chan struct{})}
	go source.Own("diagnose", func() {
		defer close(a.diagDone)
		if opts.DiagnoseEvery > 0 {
			insp.Run(diagCtx, max(opts.DiagnoseEvery, 100*time.Millisecond), 5*time.Second, func(err error) {
				opts.Logger.Warn("inspectd agent: building a snapshot to diagnose", "err", err)
			})
		}
	})
	a.srv = server.NewHTTPServer(server.New(server.Options{Inspector: insp, Token: opts.Token, Logger: opts.Logger, PauseTrace: col.PauseLive}), opts.Logger)
	if !opts.NoPortFile {
		if path, err := portfile.Write(ln.Addr().String()); err != nil {
			opts.Logger.Warn("agent: writing the port file inspect-cli ps reads", "err", err)
		} else {
			a.portFile = path
		}
	}
	// The server's goroutines, and those of the connections it serves,
	// are the agent's: the diagnosis leaves them out.
	go source.Own("api", func() { a.srv.Serve(server.LimitListener(ln)) })
	opts.Logger.Info("inspectd agent listening", "addr", a.Addr())
	return a, nil
}

// Addr is the address the agent serves on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Close stops serving, stops tracing and removes the port file.
// It is safe to call more than once.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.stopDiag()
		<-a.diagDone
		err := a.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = a.srv.Close() // watchers hold their streams open
		}
		a.col.Close()
		if a.portFile != "" {
			os.Remove(a.portFile)
		}
		a.closeErr = err
	})
	return a.closeErr
}

// PortDir is where agents write their port files: one file per process,
// named after its pid, holding the agent's address.
func PortDir() (string, error) { return portfile.Dir() }
