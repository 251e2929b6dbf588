// Package workload is inspectd's lab: a catalog of concurrency workloads, each a
// lesson of the talk "1 Hour Dive into Asynchronous Rust" redone in Go, in a
// healthy form and in deliberately broken forms, and the supervisor that runs them.
//
// A workload is a Spec that registers itself from its own file:
//
//	func init() {
//		Register(Spec{
//			Name: "hello", Lesson: "hello_tokio", Kind: Healthy,
//			Description: "...",
//			Params: []ParamSpec{DurationParam("interval", "time between ticks", time.Second, time.Millisecond, time.Minute)},
//			Run: runHello,
//		})
//	}
//
// Run receives an Env. Every goroutine a workload starts goes through Env.Spawn
// (or Env.SpawnDetached for what a broken workload leaks on purpose), which labels it
// with pprof labels workload=<name> and role=<role>, recovers its panics and lets
// the supervisor wait for it on stop. The supervisor, not the workload, owns
// restarts, backoff, logging and the Prometheus metrics.
package workload

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/grafana/pyroscope-go"
)

// Kind tells whether a workload is a healthy lesson or a deliberately broken scenario.
type Kind string

const (
	Healthy Kind = "healthy"
	Broken  Kind = "broken"
)

// Spec describes one workload of the catalog.
type Spec struct {
	Name        string
	Lesson      string // the talk's lesson it redoes, e.g. "tokio_select"
	Kind        Kind
	Description string // one paragraph a learner reads in the CLI
	Params      []ParamSpec
	// Caps says what a broken workload may leave behind or consume, in words;
	// the bounds themselves are parameters.
	Caps string
	// MaxLeft is how many of its goroutines a broken workload may leave alive
	// after it is stopped (its leak cap under these parameters); nil means none.
	MaxLeft func(p Params) int
	// Rule is the diagnosis rule whose finding names a broken workload's
	// bug (a rule id of internal/diagnose).
	Rule string
	// Fix says, in words, what the broken workload's parameter fix (see
	// FixParam) changes: the corrected code of its lesson, which sits
	// beside the bug in the workload's own file.
	Fix string
	// ShowsAfterStop: the bug shows once the workload is stopped (its
	// goroutines outlive the stop), not while it runs.
	ShowsAfterStop bool
	// LeaksForGood: what the broken form leaks can never be reclaimed, so
	// after the fix its finding stays (and stops growing) until the
	// process restarts.
	LeaksForGood bool
	// Figures are the numbers the workload reports while it runs
	// (Env.SetFigure): a gauge inspectd_workload_<name>{workload} each on
	// /metrics, and the workload's figures in the catalog.
	Figures []FigureSpec
	// Run does the work until ctx is cancelled. It returns nil on cancellation.
	Run func(ctx context.Context, env *Env) error
}

// FigureSpec declares a number a workload reports while it runs, such as
// a service's requests per second. Name is a Prometheus name fragment with
// its unit (requests_per_second, read_p99_seconds).
type FigureSpec struct {
	Name string
	Help string
}

// FixParam is the parameter every broken workload declares: true runs the
// corrected code of its lesson instead of the bug.
func FixParam() ParamSpec {
	return BoolParam("fix", "run the corrected code of the lesson instead of the bug", false)
}

// Registry holds workload specs by name. The package has a default registry
// that the catalog's files register into; tests can build their own.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]Spec{}} }

// Default is the registry of the built-in catalog.
var Default = NewRegistry()

// Register adds a spec to the default registry.
func Register(s Spec) { Default.Register(s) }

// Register adds a spec. It panics on a duplicate or incomplete spec: both are
// programming errors that the first test run reveals.
func (r *Registry) Register(s Spec) {
	if s.Name == "" || s.Run == nil || (s.Kind != Healthy && s.Kind != Broken) {
		panic(fmt.Sprintf("workload: incomplete spec %q", s.Name))
	}
	for _, p := range s.Params {
		if _, err := convert(p, Wire(p.Default)); err != nil {
			panic(fmt.Sprintf("workload %s: default of %q is outside its own bounds", s.Name, p.Name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Name]; dup {
		panic("workload: duplicate name " + s.Name)
	}
	r.specs[s.Name] = s
}

// Lookup returns the spec of name.
func (r *Registry) Lookup(name string) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[name]
	return s, ok
}

// Specs returns all specs: healthy ones first, then broken, each sorted by name.
func (r *Registry) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.specs))
	for _, s := range r.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == Healthy
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Names returns the names of all specs in Specs order.
func (r *Registry) Names() []string {
	specs := r.Specs()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// Env is what a running workload gets from the supervisor.
type Env struct {
	Name   string
	Params Params
	Log    *slog.Logger

	ops      func(n float64)
	figure   func(name string, v float64)
	wg       sync.WaitGroup
	detached atomic.Int64
	panicked chan panicReport
}

type panicReport struct {
	value any
	stack []byte
	role  string
}

// Op counts one operation of the workload: the progress that starvation or
// overhead slows down.
func (e *Env) Op() { e.ops(1) }

// Ops counts n operations.
func (e *Env) Ops(n int) { e.ops(float64(n)) }

// SetFigure reports the current value of one of the figures the workload's
// spec declares. It panics on an undeclared name, a programming error the
// catalog tests catch.
func (e *Env) SetFigure(name string, v float64) {
	if e.figure != nil {
		e.figure(name, v)
	}
}

// Spawn prepares a goroutine labelled role (the workload label is inherited)
// and returns the function to start with a go statement:
//
//	go env.Spawn(ctx, "worker")(func(ctx context.Context) { ... })
//
// The go statement stays in the workload's code, so goroutine dumps and traces
// name the workload's line as the creation site, not this package. The
// supervisor waits for the goroutine when the workload stops, so fn must return
// soon after ctx is done. Every Spawn must be started exactly once.
func (e *Env) Spawn(ctx context.Context, role string) func(fn func(ctx context.Context)) {
	e.wg.Add(1)
	return func(fn func(ctx context.Context)) {
		defer e.wg.Done()
		e.run(ctx, role, fn)
	}
}

// SpawnDetached is Spawn for the goroutines a broken workload leaks or lets
// outlive its context on purpose: the supervisor does not wait for them. The
// caller bounds how many it starts (the workload's cap).
func (e *Env) SpawnDetached(ctx context.Context, role string) func(fn func(ctx context.Context)) {
	e.detached.Add(1)
	return func(fn func(ctx context.Context)) {
		defer e.detached.Add(-1)
		e.run(ctx, role, fn)
	}
}

// Detached reports how many detached goroutines are still alive.
func (e *Env) Detached() int64 { return e.detached.Load() }

func (e *Env) run(ctx context.Context, role string, fn func(ctx context.Context)) {
	defer func() {
		if v := recover(); v != nil {
			select {
			case e.panicked <- panicReport{value: v, stack: debug.Stack(), role: role}:
			default: // a report is already pending; the restart will clean up
			}
		}
	}()
	// pyroscope.TagWrapper is pprof.Do underneath: the role label joins the
	// workload label the supervisor put on ctx (pprof.WithLabels), so goroutine
	// dumps, pprof profiles and Pyroscope uploads all carry workload and role.
	pyroscope.TagWrapper(ctx, pyroscope.Labels("role", role), fn)
}
