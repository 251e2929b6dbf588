package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors the supervisor returns; the HTTP layer maps them to status codes.
var (
	ErrUnknown    = errors.New("unknown workload")
	ErrRunning    = errors.New("workload already running")
	ErrNotRunning = errors.New("workload not running")
)

// Options tune a Supervisor. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the workload metrics; nil means none are exported.
	Registerer prometheus.Registerer
	// StopGrace is how long Stop waits for a workload's goroutines (default 1s).
	StopGrace time.Duration
	// MinBackoff and MaxBackoff bound the delay before a failed workload is
	// restarted (defaults 100ms and 30s); the delay doubles on each failure and
	// resets once a run has lasted a minute.
	MinBackoff, MaxBackoff time.Duration
}

// Supervisor starts, stops and restarts workloads of a registry.
type Supervisor struct {
	reg  *Registry
	opts Options
	log  *slog.Logger

	ops      *prometheus.CounterVec
	running  *prometheus.GaugeVec
	panics   *prometheus.CounterVec
	restarts *prometheus.CounterVec
	// figures are the gauges of the figures the specs declare, by name.
	figures map[string]*prometheus.GaugeVec

	mu   sync.Mutex
	inst map[string]*instance
	// last keeps each stopped workload's final run, whose detached goroutines
	// (a broken workload's leak) may live on.
	last map[string]*instance
}

type instance struct {
	spec    Spec
	params  Params
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time

	ops      atomic.Uint64
	panics   atomic.Int64
	restarts atomic.Int64
	lastErr  atomic.Pointer[string]
	env      atomic.Pointer[Env]

	figMu   sync.Mutex
	figures map[string]float64
}

// Status describes one workload for listings and the API.
type Status struct {
	Spec    Spec
	Running bool
	Params  Params // current values when running, defaults otherwise
	// Ran are the values of the last run of a stopped workload (zero when
	// it never ran).
	Ran      Params
	Figures  map[string]float64 // the figures it reports, while it runs
	Since    time.Time
	Ops      uint64
	Panics   int64
	Restarts int64
	LastErr  string
	// Detached counts goroutines left running on purpose and still alive,
	// also after the workload stopped.
	Detached int64
}

// NewSupervisor returns a supervisor for the workloads of reg.
func NewSupervisor(reg *Registry, opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	s := &Supervisor{
		reg:  reg,
		opts: opts,
		log:  opts.Logger,
		inst: map[string]*instance{},
		last: map[string]*instance{},
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inspectd_workload_operations_total",
			Help: "Operations completed by each workload: its progress.",
		}, []string{"workload"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inspectd_workload_running",
			Help: "1 while the workload runs, 0 otherwise.",
		}, []string{"workload", "kind"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inspectd_workload_panics_total",
			Help: "Panics recovered inside each workload.",
		}, []string{"workload"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inspectd_workload_restarts_total",
			Help: "Restarts of each workload after a panic or an error.",
		}, []string{"workload"}),
	}
	s.figures = map[string]*prometheus.GaugeVec{}
	for _, spec := range reg.Specs() {
		for _, f := range spec.Figures {
			g := s.figures[f.Name]
			if g == nil {
				g = prometheus.NewGaugeVec(prometheus.GaugeOpts{
					Name: "inspectd_workload_" + f.Name,
					Help: f.Help + " (a figure the workload reports while it runs; 0 when stopped).",
				}, []string{"workload"})
				s.figures[f.Name] = g
			}
			g.WithLabelValues(spec.Name).Set(0)
		}
		s.running.WithLabelValues(spec.Name, string(spec.Kind)).Set(0)
		// Every series from zero, so that increase() counts a first panic.
		s.ops.WithLabelValues(spec.Name)
		s.panics.WithLabelValues(spec.Name)
		s.restarts.WithLabelValues(spec.Name)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.ops, s.running, s.panics, s.restarts)
		for _, g := range s.figures {
			opts.Registerer.MustRegister(g)
		}
	}
	return s
}

// Start runs workload name with raw parameter values (nil for defaults).
func (s *Supervisor) Start(name string, raw map[string]any) error {
	spec, ok := s.reg.Lookup(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknown, name)
	}
	params, err := Resolve(name, spec.Params, raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inst[name]; ok {
		return fmt.Errorf("%w: %s", ErrRunning, name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{spec: spec, params: params, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	s.inst[name] = in
	s.running.WithLabelValues(name, string(spec.Kind)).Set(1)
	s.log.Info("workload started", "workload", name, "kind", spec.Kind, "params", params)
	go s.loop(ctx, in)
	return nil
}

// Stop cancels workload name and waits for its goroutines (up to StopGrace).
func (s *Supervisor) Stop(name string) error {
	if _, ok := s.reg.Lookup(name); !ok {
		return fmt.Errorf("%w %q", ErrUnknown, name)
	}
	s.mu.Lock()
	in, ok := s.inst[name]
	if ok {
		delete(s.inst, name)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotRunning, name)
	}
	in.cancel()
	<-in.done
	s.mu.Lock()
	s.last[name] = in
	s.mu.Unlock()
	s.running.WithLabelValues(name, string(in.spec.Kind)).Set(0)
	for _, f := range in.spec.Figures {
		s.figures[f.Name].WithLabelValues(name).Set(0)
	}
	s.log.Info("workload stopped", "workload", name, "ran", time.Since(in.started).Round(time.Millisecond), "ops", in.ops.Load(), "params", in.params)
	return nil
}

// Restart stops workload name and starts it again with new raw parameter
// values, which are validated before anything is stopped. The parameters
// raw does not name keep the values the workload runs with.
func (s *Supervisor) Restart(name string, raw map[string]any) error {
	spec, ok := s.reg.Lookup(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknown, name)
	}
	s.mu.Lock()
	if in := s.inst[name]; in != nil {
		cur := in.params.Map()
		maps.Copy(cur, raw)
		raw = cur
	}
	s.mu.Unlock()
	params, err := Resolve(name, spec.Params, raw)
	if err != nil {
		return err
	}
	if err := s.Stop(name); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	s.log.Info("workload parameters changed", "workload", name, "params", params)
	return s.Start(name, raw)
}

// StopAll stops every running workload, in parallel.
func (s *Supervisor) StopAll() {
	s.mu.Lock()
	names := make([]string, 0, len(s.inst))
	for n := range s.inst {
		names = append(names, n)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { _ = s.Stop(n) })
	}
	wg.Wait()
}

// Status returns the status of every workload of the registry, in Specs order.
func (s *Supervisor) Status() []Status {
	specs := s.reg.Specs()
	out := make([]Status, 0, len(specs))
	for _, spec := range specs {
		st, _ := s.StatusOf(spec.Name)
		out = append(out, st)
	}
	return out
}

// StatusOf returns the status of workload name.
func (s *Supervisor) StatusOf(name string) (Status, error) {
	spec, ok := s.reg.Lookup(name)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknown, name)
	}
	s.mu.Lock()
	in, last := s.inst[name], s.last[name]
	s.mu.Unlock()
	if in == nil {
		p, _ := Resolve(name, spec.Params, nil)
		st := Status{Spec: spec, Params: p}
		if last != nil {
			st.Ran = last.params
			// Its last run's: a broken workload's goroutines that outlive
			// the stop still count, as inspectd_workload_operations_total does.
			st.Ops, st.Panics, st.Restarts = last.ops.Load(), last.panics.Load(), last.restarts.Load()
			if env := last.env.Load(); env != nil {
				st.Detached = env.Detached()
			}
		}
		return st, nil
	}
	st := Status{
		Spec: spec, Running: true, Params: in.params, Since: in.started,
		Ops: in.ops.Load(), Panics: in.panics.Load(), Restarts: in.restarts.Load(),
	}
	if e := in.lastErr.Load(); e != nil {
		st.LastErr = *e
	}
	if env := in.env.Load(); env != nil {
		st.Detached = env.Detached()
	}
	in.figMu.Lock()
	if len(in.figures) > 0 {
		st.Figures = maps.Clone(in.figures)
	}
	in.figMu.Unlock()
	return st, nil
}

// loop runs the workload until ctx is cancelled, restarting it with backoff
// after a panic or an error.
func (s *Supervisor) loop(ctx context.Context, in *instance) {
	defer close(in.done)
	name := in.spec.Name
	backoff := s.opts.MinBackoff
	for {
		began := time.Now()
		err := s.runOnce(ctx, in)
		if ctx.Err() != nil {
			return
		}
		msg := err.Error()
		in.lastErr.Store(&msg)
		var p *panicError
		if errors.As(err, &p) {
			in.panics.Add(1)
			s.panics.WithLabelValues(name).Inc()
			s.log.Error("workload panicked", "workload", name, "role", p.role, "panic", fmt.Sprint(p.value), "stack", string(p.stack), "restart_in", backoff)
		} else {
			s.log.Error("workload failed", "workload", name, "err", err, "restart_in", backoff)
		}
		if time.Since(began) > time.Minute {
			backoff = s.opts.MinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
		in.restarts.Add(1)
		s.restarts.WithLabelValues(name).Inc()
		s.log.Info("workload restarted", "workload", name, "restarts", in.restarts.Load())
	}
}

type panicError struct {
	value any
	stack []byte
	role  string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic in role %s: %v", p.role, p.value) }

// runOnce runs the workload once and returns why it ended: nil when ctx was
// cancelled, a *panicError, or the error (or early return) of Run.
func (s *Supervisor) runOnce(ctx context.Context, in *instance) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ops := s.ops.WithLabelValues(in.spec.Name)
	env := &Env{
		Name:     in.spec.Name,
		Params:   in.params,
		Log:      s.log.With("workload", in.spec.Name),
		panicked: make(chan panicReport, 1),
		ops: func(n float64) {
			ops.Add(n)
			in.ops.Add(uint64(n))
		},
		figure: func(name string, v float64) {
			g := s.figures[name]
			if g == nil || !slices.ContainsFunc(in.spec.Figures, func(f FigureSpec) bool { return f.Name == name }) {
				panic(fmt.Sprintf("workload %s: undeclared figure %q", in.spec.Name, name))
			}
			g.WithLabelValues(in.spec.Name).Set(v)
			in.figMu.Lock()
			if in.figures == nil {
				in.figures = map[string]float64{}
			}
			in.figures[name] = v
			in.figMu.Unlock()
		},
	}
	in.env.Store(env)
	ended := make(chan error, 1)
	labelled := pprof.WithLabels(runCtx, pprof.Labels("workload", in.spec.Name))
	go env.Spawn(labelled, "main")(func(ctx context.Context) {
		err := in.spec.Run(ctx, env)
		if err == nil && ctx.Err() == nil {
			err = errors.New("Run returned before the workload was stopped")
		}
		ended <- err
	})
	var err error
	select {
	case err = <-ended:
	case p := <-env.panicked:
		err = &panicError{value: p.value, stack: p.stack, role: p.role}
	case <-ctx.Done():
		// Stopped: Run gets StopGrace to return, like every other goroutine.
	}
	cancel()
	s.wait(env)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// wait waits up to StopGrace for the workload's tracked goroutines.
func (s *Supervisor) wait(env *Env) {
	done := make(chan struct{})
	go func() {
		env.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(s.opts.StopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("workload goroutines did not stop in time; they will be waited for in the background",
			"workload", env.Name, "grace", s.opts.StopGrace)
	}
}
