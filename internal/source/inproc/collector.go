// Package inproc is the in-process source of the task model: what the
// daemon and any program that embeds the agent inspect themselves with.
//
// It takes what the runtime records of this process (execution trace
// slices, the goroutine and goroutineleak profiles, goroutine dumps where
// they are cheap, runtime/metrics) and gives api.Snapshot values, joined
// by package model. Its promise is that inspection costs the program
// almost nothing: nothing at all while nobody asks (no tracer runs), within
// an overhead budget while clients ask (see recorder.go), and never a long
// stop-the-world pause (a full dump only where its pause fits MaxPause).
package inproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// CollectorOptions configure the in-process source. The zero value gives
// the defaults.
type CollectorOptions struct {
	// OverheadBudget is the share of the program's CPU time that
	// inspection may take while clients ask: the runtime's tracer and the
	// analysis of what it writes (default 0.05). A program whose
	// goroutines switch often (channel ping-pong) is traced a smaller
	// part of each interval, and the numbers are scaled up from it.
	OverheadBudget float64
	// MaxPause is the longest stop-the-world pause inspection may cause
	// (default 1ms). A full goroutine dump stops the world for about 6µs
	// per goroutine: it is taken only where that fits, and otherwise
	// labels come from the goroutine profile and waits from the trace.
	MaxPause time.Duration
	// DumpBudget is the share of wall time that full goroutine dumps may
	// take (default 0.01: 1%), a second bound beside MaxPause.
	DumpBudget float64
	// CPUBudget is the share of one core that building snapshots may take
	// while clients ask for them (default 0.25). Requests that come
	// sooner share the last snapshot.
	CPUBudget float64
	// IdleAfter is how long tracing goes on after the last request
	// (default 10s).
	IdleAfter time.Duration
	// FlightRecorder keeps an execution trace flight recorder running all
	// the time, bounded by TraceMinAge and TraceMaxBytes (defaults 10s
	// and 64 MiB), so that the first snapshot after a quiet spell covers
	// what happened just before it rather than what follows. It costs
	// the tracer's overhead all the time (BENCHMARKS.md: up to 60% of a
	// channel-heavy program's throughput), and only one flight recorder
	// runs per process.
	FlightRecorder bool
	TraceMinAge    time.Duration
	TraceMaxBytes  uint64
	// LeakInterval is the least time between two reads of the goroutine
	// leak profile, which forces a full GC (default 30s; at least 30s).
	LeakInterval time.Duration
	Logger       *slog.Logger
}

func (o *CollectorOptions) defaults() {
	if o.OverheadBudget <= 0 {
		o.OverheadBudget = 0.05
	}
	if o.MaxPause <= 0 {
		o.MaxPause = time.Millisecond
	}
	if o.DumpBudget <= 0 {
		o.DumpBudget = 0.01
	}
	if o.CPUBudget <= 0 {
		o.CPUBudget = 0.25
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = 10 * time.Second
	}
	if o.TraceMinAge <= 0 {
		o.TraceMinAge = 10 * time.Second
	}
	if o.TraceMaxBytes == 0 {
		o.TraceMaxBytes = 64 << 20
	}
	if o.LeakInterval < 30*time.Second {
		o.LeakInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Collector is the in-process source.
type Collector struct {
	opts CollectorOptions
	fr   *trace.FlightRecorder // nil unless opts.FlightRecorder
	// m joins windows with the last dump, the labels by stack and the
	// leak marks.
	m *model.Model

	mu sync.Mutex // guards everything below
	// The recorder: nil while nobody asks.
	rec       *recorder
	coldAt    time.Time // when it last started from idle
	asked     time.Time // the last request
	inflight  int       // requests being answered: the recorder is not idle meanwhile
	longest   time.Duration
	longestAt time.Time // the last request for the longest window
	paused    int
	plan      plan
	cost      costs
	// What inspection spends besides the recorder (builds, profile reads,
	// and what is charged: the diagnosis, the encoding): spent since
	// spentSince, and its smoothed rate, in CPU-seconds a second, for the
	// recorder's plan.
	spent      time.Duration
	spentSince time.Time
	otherRate  float64
	recErr     string
	slices     []*tracewin.Slice
	in         *tracewin.Interner
	sliced     chan struct{} // closed when a slice is kept
	sliceSeq   uint64        // slices kept since the start
	tracing    time.Time     // when the slice in flight began; zero between slices
	analysing  bool          // a slice has ended and is being analysed
	stopper    *stopper      // ends the slice in flight
	closed     bool
	// Builds: one at a time; building is closed when the one in flight
	// ends, and last is the last one.
	building  chan struct{}
	last      *built
	buildCost time.Duration
	// Names: a dump or a goroutine profile.
	named    bool
	lastDump time.Time
	dumpCost time.Duration
	// dumpGoroutines is how many goroutines the last dump listed.
	dumpGoroutines int
	dumpBytes      int
	dumpBuf        []byte
	profAt         time.Time // when the profile the model has was read
	lastProf       time.Time // when the last read began
	// profIDs are the goroutines the profile the model has saw, in
	// ascending order: those of a window that ended before it was read
	// (the goroutines it listed may be more). Nil: not known.
	profIDs []int64
	// profEvery is profileEvery, shorter in tests.
	profEvery time.Duration
	profCost  time.Duration
	profDone  chan struct{} // closed when the read in flight ends
	bg        sync.WaitGroup
	lastLeak  time.Time
	leaked    int          // -1: not read (the profile's pause would pass MaxPause)
	leaksRead bool         // a read of the goroutineleak profile has completed
	traceBuf  bytes.Buffer // the flight recorder's snapshot
}

type built struct {
	at     time.Time
	window time.Duration
	slices uint64 // the last slice it was built with (Collector.sliceSeq)
	snap   *api.Snapshot
	win    *tracewin.Window
	// stacks are the window's stacks in the API's form (apiStack).
	stacks map[stackRef][]api.Frame
}

// budgetWait is how long a request for another window than the last
// snapshot's waits for the CPU budget to allow a build.
const budgetWait = time.Second

// profileEvery is the least time between two reads of the goroutine
// profile for labels.
const profileEvery = 10 * time.Second

// profileMaxAge is how long the labels of a profile are kept when no
// goroutine was created since it was read: a goroutine can still change
// its own labels (pprof.SetGoroutineLabels, or pprof.Do around a wait at a
// new place), which nothing but a new read shows.
const profileMaxAge = time.Minute

// maxColdWait bounds how long a request waits for its window to be
// recorded on a process nobody watched: clients wait for an answer's
// headers 30s (api.AnswerTimeout).
const maxColdWait = 20 * time.Second

// slowBuilds is the spacing of builds past which a snapshot says why the
// next is far off: beyond a watching client's few intervals.
const slowBuilds = 3 * time.Second

// running is set while a Collector is open: one traces a process at a time.
var running atomic.Bool

// NewCollector returns the in-process source. It traces nothing until a
// snapshot is asked for, unless opts.FlightRecorder is set. Only one runs
// in a process at a time (the runtime runs one execution trace, and one
// flight recorder): a second fails until the first is closed.
func NewCollector(opts CollectorOptions) (*Collector, error) {
	opts.defaults()
	if !running.CompareAndSwap(false, true) {
		return nil, errors.New("an in-process collector already runs in this process (the runtime runs one execution trace at a time)")
	}
	c := &Collector{opts: opts, m: model.New(), sliced: make(chan struct{}), lastDump: time.Now(), leaked: -1, profEvery: profileEvery}
	if opts.FlightRecorder {
		fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: opts.TraceMinAge, MaxBytes: opts.TraceMaxBytes})
		if err := fr.Start(); err != nil {
			running.Store(false)
			return nil, fmt.Errorf("starting the flight recorder: %w", err)
		}
		c.fr = fr
	}
	return c, nil
}

// Charge implements source.Charger: cpu, spent on inspection outside the
// collector, comes out of the recorder's overhead budget.
func (c *Collector) Charge(cpu time.Duration) {
	c.mu.Lock()
	c.spent += cpu
	c.mu.Unlock()
}

// Close stops the recorder and the flight recorder. It is safe to call
// more than once.
func (c *Collector) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	r := c.rec
	c.mu.Unlock()
	if r != nil {
		r.halt()
		<-r.done
	}
	c.bg.Wait() // a profile or leak read in flight
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fr != nil && c.fr.Enabled() {
		c.fr.Stop()
	}
	running.Store(false)
}

// PauseLive stops the recorder until resume is called: the runtime runs
// one runtime/trace.Start at a time beside the flight recorder, and a
// /debug/pprof/trace request needs it.
func (c *Collector) PauseLive() (resume func()) {
	c.mu.Lock()
	c.paused++
	r := c.rec
	c.mu.Unlock()
	if r != nil {
		// The slice in flight ends now; the next request after resume
		// starts the recorder again.
		r.halt()
		<-r.done
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.paused--
			c.mu.Unlock()
		})
	}
}

// Snapshot builds the task model over the last window of trace. On a
// process nobody watched it starts the tracer and waits until the window
// is recorded (from the request on; the snapshot says so), unless ctx
// accepts a partial window (source.AcceptPartial): then the first slice
// will do.
func (c *Collector) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	b, err := c.build(ctx, window)
	if err != nil {
		return nil, err
	}
	return b.snap, nil
}

// Task returns one task of the current window with its histograms and full
// stack, or an error wrapping api.ErrNoTask.
func (c *Collector) Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	b, err := c.build(ctx, window)
	if err != nil {
		return nil, err
	}
	return c.m.Task(b.snap, b.win, id)
}

// build returns the snapshot of window: the last one when the CPU budget
// has it shared, else a new one. One build runs at a time: a request that
// comes while one runs waits for it (or for ctx) and shares it.
func (c *Collector) build(ctx context.Context, window time.Duration) (*built, error) {
	now := time.Now()
	c.mu.Lock()
	c.asked = now
	c.inflight++
	defer func() {
		c.mu.Lock()
		c.inflight--
		c.asked = time.Now()
		c.mu.Unlock()
	}()
	if window >= c.longest || now.Sub(c.longestAt) > c.opts.IdleAfter {
		c.longest, c.longestAt = window, now
	}
	if c.paused == 0 {
		c.startRecorder(now)
	}
	cold := c.coldAt
	c.mu.Unlock()

	// The waits below (for a slice to end and be analysed, for a build in
	// flight) take turns the program's goroutines may not leave: in one
	// whose goroutines keep every core busy, each can take seconds. A
	// request to be answered by a time waits until then at most.
	wctx := ctx
	if by, ok := source.AnswerDeadline(ctx); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	// A process nobody watched: what the window covers is recorded from
	// the first request on.
	if c.fr == nil && !cold.IsZero() {
		until := cold.Add(min(window, maxColdWait))
		if source.PartialAccepted(ctx) {
			until = cold
		}
		if err := c.waitSlice(wctx, until); err != nil && !c.haveSlices() {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if wctx.Err() != nil {
				return nil, &source.NotRecorded{Snapshot: c.recording(cold, window)}
			}
			return nil, err
		}
	}
	c.mu.Lock()
	shared := c.budgetShared(now, window) != nil
	c.mu.Unlock()
	if !shared {
		c.freshen(wctx)
	}
	for {
		c.mu.Lock()
		if b := c.shared(now, window); b != nil {
			c.mu.Unlock()
			return b, nil
		}
		if c.building == nil {
			break
		}
		ch := c.building
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wctx.Done():
			// The build in flight is late: the last snapshot, which
			// says how old it is, if there is one.
			c.mu.Lock()
			last := c.last
			c.mu.Unlock()
			if last != nil {
				return last, nil
			}
			return nil, &source.NotRecorded{Snapshot: c.recording(cold, window)}
		case <-ch:
		}
	}
	done := make(chan struct{})
	c.building = done
	c.mu.Unlock()
	b, err := c.buildNow(ctx, window)
	c.mu.Lock()
	c.building = nil
	close(done)
	c.mu.Unlock()
	return b, err
}

// recording is what a request to be answered by a time (source.AnswerBy)
// gets before the first snapshot of the trace is built: no tasks, the
// process' figures, and why. The recorder's first slice may take long to end and to
// be analysed in a program whose goroutines keep every core busy: the
// runtime's tracer stops in steps that each wait for a turn, and the
// analysis has the share of the CPU the scheduler leaves it.
func (c *Collector) recording(cold time.Time, window time.Duration) *api.Snapshot {
	now := time.Now()
	c.mu.Lock()
	tracing, analysing, recErr := c.tracing, c.analysing, c.recErr
	building := c.building != nil && len(c.slices) > 0
	leaked := -1
	if c.leaksRead {
		leaked = c.leaked
	}
	c.mu.Unlock()
	if cold.IsZero() {
		cold = now
	}
	proc := ReadProcess()
	proc.Leaked = leaked
	var doing string
	switch {
	case building:
		doing = "its first snapshot is being built"
	case recErr != "":
		doing = "the recorder cannot trace: " + recErr
	case analysing:
		doing = "its first slice has ended and is being analysed"
	case !tracing.IsZero():
		doing = fmt.Sprintf("its first slice has traced %s", now.Sub(tracing).Round(time.Millisecond))
	default:
		doing = "the tracer is starting"
	}
	return &api.Snapshot{
		Time: now, Source: "trace-slices", RecordingSince: cold,
		Tasks: []api.Task{}, Sites: []api.Site{}, Findings: []api.Finding{}, Process: proc,
		Notes: []string{fmt.Sprintf("recording since %s ago, nothing traced before (nobody asked): %s; the tasks of the %s window "+
			"come with the next updates (a program whose goroutines keep every core busy leaves the tracer and its analysis little of the CPU)",
			now.Sub(cold).Round(time.Millisecond), doing, window)},
	}
}

// haveSlices says some slice is kept.
func (c *Collector) haveSlices() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slices) > 0
}

// shared returns the last snapshot when a request for window at now is to
// share it: when no slice has come since it was built, or within the CPU
// budget, whatever window it asks (two clients
// asking for two windows must not build one each time), unless a request
// for another window can wait budgetWait for the budget. Called with c.mu
// held.
func (c *Collector) shared(now time.Time, window time.Duration) *built {
	if c.last != nil && c.last.window == window && c.last.slices == c.sliceSeq && c.last.slices > 0 {
		// No slice since: a new build would tell nothing new.
		return c.last
	}
	return c.budgetShared(now, window)
}

// budgetShared returns the last build when the CPU budget allows no new
// one yet. Called with c.mu held.
func (c *Collector) budgetShared(now time.Time, window time.Duration) *built {
	if c.last == nil {
		return nil
	}
	next := c.last.at.Add(source.Spacing(c.buildCost, c.opts.CPUBudget))
	if !now.Before(next) {
		return nil
	}
	if c.last.window == window || next.Sub(now) > budgetWait {
		// Its window_ns says what it covers. The same snapshot, not a
		// copy with a note: the diagnosis annotates each snapshot it
		// is handed once, in place, tasks included.
		return c.last
	}
	return nil
}

// buildNow builds a snapshot of window: the window composed of the
// recorder's slices (or read from the flight recorder), joined with the
// names, dumps and leak marks.
func (c *Collector) buildNow(ctx context.Context, window time.Duration) (*built, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The build's cost is the CPU time it takes, counted on its thread:
	// in a busy program its wall time is mostly waiting for a turn.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := source.ThreadCPU()
	now := time.Now()
	leakNote := c.readLeaks(now)
	c.mu.Lock()
	// The last window is garbage from here: let it go before the next one
	// is built.
	c.last = nil
	var notes []string
	from := "trace"
	profDue := false
	if c.dumpDue(now) {
		c.dump(now)
		from += "+dump"
	} else {
		// Labels by stack change slowly: a read (some 3 µs a goroutine) at
		// most every profileEvery, within the CPU budget, and only when
		// goroutines came since the last (see below).
		profDue = c.profDone == nil && now.Sub(c.lastProf) >= max(c.profEvery, source.Spacing(c.profCost, c.opts.CPUBudget))
		if profDue && !c.named {
			// Nothing names the goroutines yet: read the profile now.
			c.readProfile(now, nil)
			done := c.profDone
			c.mu.Unlock()
			<-done
			c.mu.Lock()
			profDue = false
		}
		notes = append(notes, c.dumpNote(now))
	}
	if leakNote != "" {
		notes = append(notes, leakNote)
	}
	parts := append([]*tracewin.Slice(nil), c.slices...)
	seq := c.sliceSeq
	plan, cost, cold, recErr := c.plan, c.cost, c.coldAt, c.recErr
	c.mu.Unlock()

	var win *tracewin.Window
	switch {
	case len(parts) > 0:
		win = tracewin.Compose(parts, window)
		from = "trace-slices" + strings.TrimPrefix(from, "trace")
		notes = append(notes, sliceNotes(win, window, plan, cost, cold, c.opts.OverheadBudget, now)...)
	case c.fr != nil:
		c.traceBuf.Reset()
		if _, err := c.fr.WriteTo(&c.traceBuf); err != nil {
			return nil, fmt.Errorf("flight recorder snapshot: %w", err)
		}
		var err error
		win, err = tracewin.AnalyzeTrace(&c.traceBuf, tracewin.WindowOptions{Sites: true, Since: now.Add(-window)})
		if err != nil {
			notes = append(notes, "trace: "+err.Error())
		}
		from = "flight-recorder" + strings.TrimPrefix(from, "trace")
		notes = append(notes, "from the flight recorder: what the program did before the request")
	default:
		return nil, fmt.Errorf("no execution trace of this process yet: %s", recErrOr(recErr, "the recorder has not completed a slice"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.profAt.IsZero() && c.profAt.After(c.lastDump) && !strings.Contains(from, "dump") {
		from += "+profile"
		if age := now.Sub(c.profAt); age > 0 {
			notes = append(notes, fmt.Sprintf("labels by stack from a goroutine profile read %s ago", age.Round(time.Millisecond)))
		}
	}
	if win.Truncated {
		notes = append(notes, "the trace was cut short: numbers are partial")
	}
	end := win.WallEnd
	if end.IsZero() {
		end = now
	}
	snap := c.model(win, end, now)
	snap.Source = from
	if win.Observed > 0 && win.Observed < win.Duration() {
		snap.ObservedNS = win.Observed
	}
	if !cold.IsZero() && c.fr == nil && win.WallStart.Sub(cold) < time.Second {
		// The window begins with the recording.
		snap.RecordingSince = cold
	}
	snap.Notes = append(snap.Notes, notes...)
	// The garbage it leaves costs the collector about half as much again.
	c.buildCost = (source.ThreadCPU() - cpu0) * 3 / 2
	c.spent += c.buildCost
	if gap := source.Spacing(c.buildCost, c.opts.CPUBudget); gap >= slowBuilds {
		// Requests until then share this snapshot: say why it stays.
		snap.Notes = append(snap.Notes, fmt.Sprintf("building this snapshot cost %s and the CPU budget allows snapshots %.3g%% of a core, "+
			"so the next comes in %s at the earliest: requests share this one until then",
			c.buildCost.Round(time.Millisecond), c.opts.CPUBudget*100, gap.Round(time.Second)))
	}
	c.last = &built{at: now, window: window, snap: snap, win: win, slices: seq}
	if c.profIDs == nil && !c.profAt.IsZero() && !win.WallEnd.IsZero() && win.WallEnd.Before(c.profAt) {
		// The profile read before this window was composed (the first,
		// read at once): its goroutines include this window's.
		c.profIDs = taskIDs(snap.Tasks)
	}
	if profDue && c.named && c.profIDs != nil && now.Sub(c.profAt) < profileMaxAge && !c.newGoroutines(snap.Tasks) {
		// Nothing new to name: a read costs some 500 bytes a goroutine
		// for a moment (at 100,000 goroutines, 50 MB that the collector
		// then leaves as room for the heap to grow into).
		profDue = false
	}
	if profDue {
		// For the next snapshots; read after this one rather than
		// alongside it, where it would compete with it for the CPU and
		// for the runtime's goroutine walks.
		c.readProfile(time.Now(), taskIDs(snap.Tasks))
	}
	return c.last, nil
}

// sliceNotes say what a composed window observed, and how old it is.
func sliceNotes(win *tracewin.Window, window time.Duration, p plan, cost costs, cold time.Time, budget float64, now time.Time) []string {
	var notes []string
	got := time.Duration(win.Duration())
	if share := win.ObservedShare(); share < 0.99 {
		notes = append(notes, fmt.Sprintf("traced %s of this %s window (%.0f%%), in slices, to keep inspection within %.3g%% of the program's CPU: "+
			"times and polls are scaled up from the slices (estimates); histograms are of what was traced",
			time.Duration(win.Observed).Round(time.Millisecond), got.Round(time.Millisecond), share*100, budget*100))
	}
	if p.over {
		notes = append(notes, fmt.Sprintf("tracing this program costs more than the budget allows even at %s every %s (its events: %d in the last %s slice)",
			p.on.Round(time.Millisecond), (p.on+p.off).Round(time.Second), cost.events, cost.on.Round(time.Millisecond)))
	}
	if !cold.IsZero() && got < window*9/10 && cold.After(now.Add(-window)) {
		notes = append(notes, fmt.Sprintf("recorded from the first request on (%s ago): nothing was traced while nobody asked", now.Sub(cold).Round(time.Second)))
	}
	if age := now.Sub(win.WallEnd); age > time.Second+window/10 {
		notes = append(notes, fmt.Sprintf("the window ended %s ago: the last slice, traced within the overhead budget", age.Round(100*time.Millisecond)))
	}
	return notes
}

func recErrOr(msg, def string) string {
	if msg != "" {
		return msg
	}
	return def
}

// dumpDue says a full dump is due now: its pause fits MaxPause and the
// dump budget allows it. Called with c.mu held.
func (c *Collector) dumpDue(now time.Time) bool {
	cost := c.expectedDumpCost()
	return cost <= c.opts.MaxPause && now.Sub(c.lastDump) >= source.Spacing(cost, c.opts.DumpBudget)
}

// dumpNote says where labels, waits and leak marks come from when no dump
// is taken. Called with c.mu held.
func (c *Collector) dumpNote(now time.Time) string {
	expected := c.expectedDumpCost()
	if expected > c.opts.MaxPause {
		return fmt.Sprintf("no goroutine dump: one would stop the world for about %s (%d goroutines), more than the %s allowed "+
			"(--max-pause): labels are from the goroutine profile by stack, or else the creator's; leak marks from the goroutineleak "+
			"profile; how long a goroutine waits is known as far as the trace shows",
			expected.Round(10*time.Microsecond), runtime.NumGoroutine(), c.opts.MaxPause)
	}
	if c.dumpCost == 0 {
		return fmt.Sprintf("no goroutine dump yet (dumps stop the world, about %s here: taken at most %.0f%% "+
			"of the time, the first in %s): no wait minutes; goroutines are named from the goroutine "+
			"profile by stack, or else carry their creator's labels",
			expected.Round(time.Microsecond), c.opts.DumpBudget*100,
			time.Until(c.lastDump.Add(source.Spacing(expected, c.opts.DumpBudget))).Round(time.Second))
	}
	return fmt.Sprintf("labels, wait minutes and leak marks are from a goroutine dump %s ago "+
		"(dumps stop the world for %s: taken at most %.0f%% of the time); goroutines it did not see are named "+
		"from the goroutine profile by stack, or else carry their creator's labels",
		now.Sub(c.lastDump).Round(time.Millisecond), c.dumpCost.Round(time.Microsecond), c.opts.DumpBudget*100)
}

// expectedDumpCost is the pause a dump of the goroutines alive now would
// cause: about 6µs each, or what each cost in the last dump when that is
// more (a slow machine). A small dump's cost is mostly fixed: it says
// nothing of the cost per goroutine.
func (c *Collector) expectedDumpCost() time.Duration {
	perG := float64(source.DumpNSPerGoroutine)
	if c.dumpGoroutines >= 1000 {
		perG = max(perG, float64(c.dumpCost)/float64(c.dumpGoroutines))
	}
	return time.Duration(perG * float64(runtime.NumGoroutine()))
}

// leakNSPerGoroutine is what the goroutineleak profile's forced GC stops
// the world for, per goroutine: its leak detection marks goroutines with
// the world stopped (some 30 ms at 100,000 goroutines here, against a few
// for an ordinary GC). It guards the first read, whose cost is not yet
// measured.
const leakNSPerGoroutine = 300

// expectedLeakPause is the pause a read of the goroutineleak profile would
// cause now. (What the last read measured is noisier than the estimate: a
// busy machine stretches any pause, and one long reading would stop the
// reads for good.)
func (c *Collector) expectedLeakPause() time.Duration {
	return time.Duration(leakNSPerGoroutine * runtime.NumGoroutine())
}

// readLeaks starts the leak detector when its pause fits MaxPause: the
// goroutineleak profile forces a GC that marks leaked goroutines, which it
// lists by stack (and a dump shows as "(leaked)"). It returns a note when
// it does not. Called without c.mu, which it takes.
func (c *Collector) readLeaks(now time.Time) string {
	c.mu.Lock()
	if now.Sub(c.lastLeak) < c.opts.LeakInterval {
		c.mu.Unlock()
		return ""
	}
	c.lastLeak = now
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		c.leaked = -1
		c.mu.Unlock()
		return ""
	}
	n := runtime.NumGoroutine()
	if pause := c.expectedLeakPause(); pause > c.opts.MaxPause {
		c.leaked = -1
		c.mu.Unlock()
		return fmt.Sprintf("no goroutineleak profile: its forced GC would stop the world for about %s (%d goroutines), more than the %s "+
			"allowed (--max-pause): leaks are found by their growth and how long goroutines wait",
			pause.Round(10*time.Microsecond), n, c.opts.MaxPause)
	}
	if c.closed {
		c.mu.Unlock()
		return ""
	}
	// In the background, for the snapshots to come: the GC it forces takes
	// seconds in a program whose goroutines keep every core busy, and a
	// snapshot must not wait for it.
	c.background("leaks", func() { c.readLeaksNow(p) })
	c.mu.Unlock()
	return ""
}

// readLeaksNow reads the goroutineleak profile p for readLeaks.
func (c *Collector) readLeaksNow(p *pprof.Profile) {
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		c.opts.Logger.Warn("reading the goroutine leak profile", "err", err)
		return
	}
	leaks, err := model.ParseStackProfile(&buf)
	if err != nil {
		c.opts.Logger.Warn("reading the goroutine leak profile", "err", err)
		return
	}
	c.mu.Lock()
	c.m.SetLeaks(leaks)
	c.leaked = int(leaks.Total())
	c.leaksRead = true
	c.mu.Unlock()
}

// Dump takes a full goroutine dump now, whatever the budgets, so that the
// next snapshot's labels, wait minutes and leak marks are exact. It stops
// the world for about 6us per goroutine.
func (c *Collector) Dump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dump(time.Now())
	c.last = nil
}

// readProfile starts refreshing the labels by stack from the goroutine
// profile, in the background: reading it costs about 2.5us per goroutine
// (250 ms at 100k), as long as the rest of a snapshot, without a long
// pause. ids are the goroutines of a window that ended before now, in
// ascending order, or nil. Called with c.mu held; the read takes it when
// done.
func (c *Collector) readProfile(now time.Time, ids []int64) {
	if c.closed {
		return
	}
	done := make(chan struct{})
	c.profDone = done
	c.lastProf = now
	c.background("profile", func() { c.readProfileNow(done, now, ids) })
}

// background runs f as the collector's own goroutine, labelled role, which
// Close waits for. (Not c.bg.Go: the go statement here is what tells the
// goroutine is the collector's, see ownGoroutine.)
func (c *Collector) background(role string, f func()) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		source.Own(role, f)
	}()
}

// readProfileNow reads the goroutine profile for readProfile, and closes
// done.
func (c *Collector) readProfileNow(done chan struct{}, now time.Time, ids []int64) {
	{
		defer close(done)
		began := time.Now()
		var sp *model.StackProfile
		var err error
		cost := source.OnThread(func() { sp, err = readProfile() })
		c.mu.Lock()
		defer c.mu.Unlock()
		c.profDone = nil
		c.profCost = cost
		c.spent += cost * 3 / 2
		if c.last != nil && c.last.at.Before(began) {
			c.buildCost += cost // read for the snapshots to come: charged to the last one
		}
		if err != nil {
			c.opts.Logger.Warn("reading the goroutine profile for labels", "err", err)
			return
		}
		if began.Before(c.lastDump) {
			return // a dump since tells more
		}
		// Dated from the request: a goroutine created since may have been
		// caught by the read before it set its labels.
		c.m.SetProfile(sp, now)
		c.profAt, c.named, c.profIDs = now, true, ids
	}
}

// taskIDs are the IDs of tasks, which are in ascending order.
func taskIDs(tasks []api.Task) []int64 {
	ids := make([]int64, len(tasks))
	for i := range tasks {
		ids[i] = tasks[i].ID
	}
	return ids
}

// newGoroutines says some task is not among c.profIDs (both ascending):
// created since the profile was read, it may carry labels the profile
// shows for no goroutine, or other ones for its stack. The collector's own
// goroutines (the one that stops each slice, a read in flight) do not
// count, nor the runtime's: they come and go with each slice. Called with
// c.mu held.
func (c *Collector) newGoroutines(tasks []api.Task) bool {
	known := c.profIDs
	for i := range tasks {
		t := &tasks[i]
		for len(known) > 0 && known[0] < t.ID {
			known = known[1:]
		}
		if len(known) > 0 && known[0] == t.ID {
			continue
		}
		if !ownGoroutine(t) {
			return true
		}
	}
	return false
}

// ownGoroutine says t was started by the collector (a go statement of
// this package) or by the runtime, which starts goroutines of its own with
// each slice (the tracer's CPU sample reader, runtime/trace's writer):
// neither is the program's, nor carries labels of its.
func ownGoroutine(t *api.Task) bool {
	return strings.HasPrefix(t.CreatedBy.Function, ownPackage) ||
		strings.HasPrefix(t.CreatedBy.Function, "runtime.") || strings.HasPrefix(t.CreatedBy.Function, "runtime/")
}

// ownPackage prefixes the functions of this package.
const ownPackage = "github.com/inspectd/inspectd/internal/source/inproc."

// dump takes a full goroutine dump and records what it says of every
// goroutine. Called with c.mu held.
func (c *Collector) dump(now time.Time) {
	size := max(c.dumpBytes+c.dumpBytes/4, runtime.NumGoroutine()*1024, 64<<10)
	if cap(c.dumpBuf) < size {
		c.dumpBuf = make([]byte, size)
	}
	began := time.Now()
	var n int
	for {
		n = runtime.Stack(c.dumpBuf[:cap(c.dumpBuf)], true)
		if n < cap(c.dumpBuf) {
			break
		}
		c.dumpBuf = make([]byte, 2*cap(c.dumpBuf))
	}
	c.dumpCost = time.Since(began)
	c.dumpBytes = n
	c.lastDump = now
	gs, err := dump.ParseDumpBytes(c.dumpBuf[:n])
	if err != nil {
		c.opts.Logger.Warn("parsing a goroutine dump of this process", "err", err)
	}
	c.m.SetDump(gs, now)
	c.named = true
	c.dumpGoroutines = len(gs)
	if cap(c.dumpBuf) > 1<<20 {
		c.dumpBuf = nil // rare and small: not worth keeping a large one
	}
}

// model makes the snapshot of win, which ended at end, asked for at now:
// its tasks from the model, and the process' runtime/metrics.
func (c *Collector) model(win *tracewin.Window, end, now time.Time) *api.Snapshot {
	snap := c.m.Snapshot(win, end)
	snap.Time = now
	snap.Process = ReadProcess()
	if c.leaksRead || c.leaked < 0 {
		snap.Process.Leaked = c.leaked
	}
	return snap
}
