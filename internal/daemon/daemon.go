// Package daemon assembles inspectd: configuration, logging, profiling rates,
// the workload supervisor, the HTTP surface and the gops agent, and runs them
// until its context ends. cmd/inspectd is a thin main around Run; tests start
// the whole daemon on port 0 through the same function.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/gops/agent"
	pyroscopepprof "github.com/grafana/pyroscope-go/http/pprof"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/portfile"
	"github.com/inspectd/inspectd/internal/pprofui"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/source/inproc"
	"github.com/inspectd/inspectd/internal/workload"
)

// ShutdownTimeout bounds the whole shutdown: stop workloads, close listeners.
const ShutdownTimeout = 4 * time.Second

// NewLogger returns the slog logger the configuration asks for.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Daemon is a running inspectd.
type Daemon struct {
	cfg Config
	log *slog.Logger
	reg *workload.Registry
	sup *workload.Supervisor
	ln  net.Listener
	// portFile is this process' port file while it serves.
	portFile string
	http     *http.Server
	col      *inproc.Collector
	diag     *diagnose.Inspector
	pyro     *pyroscopeAgent // nil unless --pyroscope-url is set

	cancelStreams context.CancelFunc

	gopsAddr string
}

// Addr is the address the HTTP surface listens on (useful with port 0).
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// GopsAddr is the gops agent's address, or "" when it is off.
func (d *Daemon) GopsAddr() string { return d.gopsAddr }

// Supervisor returns the workload supervisor.
func (d *Daemon) Supervisor() *workload.Supervisor { return d.sup }

// gopsMu serialises the process-wide gops agent between daemons (tests may
// start several in one process, one after another).
var gopsMu sync.Mutex

// Start sets the daemon up and binds its listeners, but serves nothing yet.
func Start(cfg Config, reg *workload.Registry, log *slog.Logger) (*Daemon, error) {
	runtime.SetMutexProfileFraction(cfg.MutexProfileFraction)
	runtime.SetBlockProfileRate(int(cfg.BlockProfileRate.Nanoseconds()))

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	sup := workload.NewSupervisor(reg, workload.Options{Logger: log, Registerer: promReg})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, listenError("listen on "+cfg.Listen, "--listen", err)
	}
	col, err := inproc.NewCollector(inproc.CollectorOptions{
		OverheadBudget: cfg.OverheadBudget, MaxPause: cfg.MaxPause, FlightRecorder: cfg.FlightRecorder,
		TraceMinAge: cfg.TraceMinAge, TraceMaxBytes: cfg.TraceMaxBytes, DumpBudget: cfg.DumpBudget, CPUBudget: cfg.CPUBudget, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	diag, err := newDiagnoser(col, cfg.Diagnose, promReg, log)
	if err != nil {
		ln.Close()
		col.Close()
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, reg: reg, sup: sup, ln: ln, col: col, diag: diag}
	var cpuProfile http.Handler
	if cfg.PyroscopeURL != "" {
		var pyro *pyroscopeAgent
		var err error
		// Its uploads are the daemon's own doing, not the lab's.
		source.Own("pyroscope", func() { pyro, err = startPyroscope(cfg, log, promReg) })
		if err != nil {
			ln.Close()
			col.Close()
			return nil, err
		}
		d.pyro = pyro
		// The goroutine-states profile, from the probes' task model.
		source.Own("pyroscope", func() { pyro.states, err = startStatePusher(cfg, pyro, col) })
		if err != nil {
			pyro.stop()
			ln.Close()
			col.Close()
			return nil, err
		}
		// pyroscope-go keeps the CPU profiler busy: its handler pauses the
		// background collection and shares the samples with the caller.
		cpuProfile = http.HandlerFunc(pyroscopepprof.Profile)
	}
	// Streams (the watch endpoint) end when this context does, at shutdown.
	base, cancelBase := context.WithCancel(context.Background())
	d.cancelStreams = cancelBase
	d.http = server.NewHTTPServer(newHandler(server.Options{Logger: log, Token: cfg.Token, Inspector: diag, PauseTrace: col.PauseLive, CPUProfile: cpuProfile},
		sup, promReg), log)
	d.http.BaseContext = func(net.Listener) context.Context { return base }
	if cfg.GopsAddr != "" && cfg.GopsAddr != "off" {
		var err error
		source.Own("gops", func() { err = d.startGops() })
		if err != nil {
			ln.Close()
			col.Close()
			cancelBase()
			if d.pyro != nil {
				d.pyro.stop()
			}
			return nil, err
		}
	}
	return d, nil
}

// newHandler is the daemon's HTTP surface: the inspection endpoints the
// embedded agent serves too (opts), and beside them the lab's control API,
// the metrics of gatherer and the flame-graph pages.
func newHandler(opts server.Options, sup *workload.Supervisor, gatherer prometheus.Gatherer) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ui := pprofui.NewUI(log, opts.CPUProfile)
	opts.Routes = func(mux *http.ServeMux) {
		(&lab{sup: sup}).route(mux)
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
		ui.Route(mux)
	}
	return server.New(opts)
}

// listenError is a listener that could not be had: the address is in use,
// not this machine's, or not allowed. The configuration asks for what the
// machine cannot give, so it is a UsageError (exit status 2), which says
// which flag chooses another.
func listenError(what, flag string, err error) error {
	hint := "choose another address with " + flag
	if errors.Is(err, syscall.EADDRINUSE) {
		hint = "another program (another inspectd?) listens there: stop it, or " + hint
	}
	return &UsageError{Err: fmt.Errorf("%s: %w; %s", what, err, hint)}
}

// startGops starts the gops agent without its signal handling: the daemon
// owns SIGINT/SIGTERM and removes the agent itself on shutdown.
func (d *Daemon) startGops() error {
	dir, err := gopsConfigDir()
	if err != nil {
		return fmt.Errorf("gops agent: %w", err)
	}
	gopsMu.Lock()
	if err := agent.Listen(agent.Options{Addr: d.cfg.GopsAddr, ConfigDir: dir, ShutdownCleanup: false}); err != nil {
		gopsMu.Unlock()
		return listenError("gops agent on "+d.cfg.GopsAddr, "--gops-addr", err)
	}
	// The agent reports its port only through the port file the gops CLI reads.
	port, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(os.Getpid())))
	if err != nil {
		agent.Close()
		gopsMu.Unlock()
		return fmt.Errorf("gops agent: reading its port file: %w", err)
	}
	host, _, _ := net.SplitHostPort(d.cfg.GopsAddr)
	d.gopsAddr = net.JoinHostPort(host, strings.TrimSpace(string(port)))
	return nil
}

// gopsConfigDir is where the gops CLI looks for port files.
func gopsConfigDir() (string, error) {
	if dir := os.Getenv("GOPS_CONFIG_DIR"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "gops"), nil
}

// Serve starts the configured workloads and serves until ctx ends, then shuts
// everything down within ShutdownTimeout. A clean shutdown returns nil.
func (d *Daemon) Serve(ctx context.Context) error {
	d.log.Info("inspectd listening", "addr", d.Addr(), "token", d.cfg.Token != "",
		"gops", d.gopsAddr, "go", runtime.Version(), "version", version(), "pid", os.Getpid())
	for _, name := range d.cfg.Workloads {
		if err := d.sup.Start(name, d.cfg.Params[name]); err != nil {
			d.shutdown()
			return fmt.Errorf("starting workload %s: %w", name, err)
		}
	}
	// The port file makes the daemon a target by its pid and lists it in
	// inspect-cli ps, like a program that embeds the agent.
	if path, err := portfile.Write(d.ln.Addr().String()); err != nil {
		d.log.Warn("writing the port file inspect-cli ps reads", "err", err)
	} else {
		d.portFile = path
	}
	served := make(chan error, 1)
	// The server's goroutines, those of the connections it serves, and
	// the diagnosis loop are the daemon's own: the diagnosis leaves them
	// out (the lab's API starts workloads without the label).
	go source.Own("api", func() { served <- d.http.Serve(server.LimitListener(d.ln)) })
	diagCtx, stopDiag := context.WithCancel(ctx)
	diagDone := make(chan struct{})
	go source.Own("diagnose", func() {
		defer close(diagDone)
		if d.cfg.DiagnoseInterval > 0 {
			d.diag.Run(diagCtx, d.cfg.DiagnoseInterval, d.cfg.DiagnoseWindow, func(err error) {
				d.log.Warn("building a snapshot to diagnose", "err", err)
			})
		}
	})
	stop := func() { stopDiag(); <-diagDone }
	select {
	case err := <-served:
		stop()
		d.shutdown()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("shutting down")
	stop()
	err := d.shutdown()
	<-served
	d.log.Info("stopped")
	return err
}

// shutdown stops workloads, the HTTP server and the Pyroscope push (its last
// upload bounded by pyroscopeFlushTimeout+pyroscopeStopTimeout) in parallel,
// on a fresh timeout.
func (d *Daemon) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(d.sup.StopAll)
	if d.pyro != nil {
		wg.Go(d.pyro.stop)
	}
	var httpErr error
	d.cancelStreams()
	wg.Go(func() {
		httpErr = d.http.Shutdown(ctx)
		if errors.Is(httpErr, context.DeadlineExceeded) {
			httpErr = d.http.Close()
		}
	})
	wg.Wait()
	if d.portFile != "" {
		os.Remove(d.portFile)
		d.portFile = ""
	}
	d.col.Close()
	d.pyro = nil
	if d.gopsAddr != "" {
		agent.Close()
		gopsMu.Unlock()
		d.gopsAddr = ""
	}
	if errors.Is(httpErr, http.ErrServerClosed) {
		return nil
	}
	return httpErr
}

// Run starts the daemon and serves until ctx ends.
func Run(ctx context.Context, cfg Config, reg *workload.Registry, log *slog.Logger) error {
	d, err := Start(cfg, reg, log)
	if err != nil {
		return err
	}
	return d.Serve(ctx)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
