package inproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// CollectorOptions configure the in-process source. The zero value gives the
// defaults.
type CollectorOptions struct {
	// TraceMinAge and TraceMaxBytes bound the always-on flight recorder: it
	// keeps at least MinAge of trace, but never much more than MaxBytes.
	// Defaults 10s and 64 MiB.
	TraceMinAge   time.Duration
	TraceMaxBytes uint64
	// DumpBudget is the share of wall time that full goroutine dumps, which
	// stop the world, may take (default 0.01: 1%). A dump that took d is not
	// repeated before d/DumpBudget has passed.
	DumpBudget float64
	// CPUBudget is the share of one core that building snapshots may take
	// while clients ask for them (default 0.25). Requests that come sooner
	// share the last snapshot. One for another window waits for the budget
	// to allow a build when that is within budgetWait, and otherwise gets
	// the last snapshot, whose WindowNS says what it covers. A build is
	// charged with its wall time, its analysis' once more when that parses
	// on a second goroutine, and the goroutine profile read that follows it.
	CPUBudget float64
	// LeakInterval is the least time between two reads of the goroutine leak
	// profile, which forces a full GC (default 30s; at least 30s).
	LeakInterval time.Duration
	// LiveIdle is how long the live trace stream runs after the last
	// request, built or shared (default 30s; negative: never stream, and
	// read every window from the flight recorder). See live.go.
	LiveIdle time.Duration
	Logger   *slog.Logger
}

func (o *CollectorOptions) defaults() {
	if o.TraceMinAge <= 0 {
		o.TraceMinAge = 10 * time.Second
	}
	if o.TraceMaxBytes == 0 {
		o.TraceMaxBytes = 64 << 20
	}
	if o.DumpBudget <= 0 {
		o.DumpBudget = 0.01
	}
	if o.CPUBudget <= 0 {
		o.CPUBudget = 0.25
	}
	if o.LeakInterval < 30*time.Second {
		o.LeakInterval = 30 * time.Second
	}
	if o.LiveIdle == 0 {
		o.LiveIdle = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Collector is the in-process source: it runs the flight recorder and builds
// snapshots from its window, joined with goroutine dumps taken within a
// stop-the-world budget, labels from the goroutine profile in between, the
// goroutine leak profile and runtime/metrics.
// It does nothing while nobody asks for a snapshot, but keep the recorder
// running. While snapshots are asked for, it also streams the trace and
// analyses each generation once (live.go): a snapshot then composes its
// window rather than parse the flight recorder's.
type Collector struct {
	opts CollectorOptions
	fr   *trace.FlightRecorder

	// m joins windows with the last dump, the labels by stack and the
	// leak marks.
	m *model.Model

	mu sync.Mutex // one snapshot at a time; guards everything below
	// Whether there is anything to name goroutines by: a dump or a
	// goroutine profile.
	named     bool
	lastDump  time.Time
	dumpCost  time.Duration
	dumpBytes int
	profAt    time.Time // when the profile the model has was read
	lastProf  time.Time // when the last read began
	profCost  time.Duration
	// A profile read runs in the background (profDone closes when it
	// ends): snapshots use the last one read, and wait only when there is
	// nothing else to name goroutines by.
	profDone chan struct{}
	traceEnd time.Time // when the last window was written out
	bg       sync.WaitGroup
	closed   bool
	lastLeak time.Time
	leaked   int
	// The last snapshot, shared by requests within the CPU budget.
	last     *built
	traceBuf bytes.Buffer
	dumpBuf  []byte
	// buildCost is the CPU time the last build is charged with: its wall
	// time, plus the analysis' again when a second goroutine parsed
	// alongside (an upper bound), plus the profile read that followed it.
	buildCost time.Duration

	// The live trace stream: nil when off. It runs from the first snapshot
	// until none was asked for LiveIdle, and not while paused.
	live       *tracewin.Stream
	livePaused int
	liveUsed   time.Time
	liveTimer  *time.Timer
	liveErr    string // the last reason it could not serve, logged once
	liveServed bool   // the last snapshot's window came from it
	liveCost   liveCost
	liveBusy   time.Duration // the parser's time up to the last build
}

// buildStage, when set (a benchmark sets it), is called as each stage of
// a build the live stream serves ends, with c.mu held: "catch-up" (the
// stream parsed), "compose" (the window made from it) and "model" (the
// snapshot's tasks made).
var buildStage func(stage string)

type built struct {
	at     time.Time
	window time.Duration
	snap   *api.Snapshot
	win    *tracewin.Window
}

// budgetWait is how long a request for another window than the last
// snapshot's waits for the CPU budget to allow a build (at 100k goroutines
// builds are a few hundred ms apart, at a million 15 s and more).
const budgetWait = time.Second

// slowBuilds is the spacing of builds past which a snapshot says why the
// next is far off: beyond a watching client's few intervals.
const slowBuilds = 3 * time.Second

// NewCollector starts the flight recorder. Only one flight recorder can run
// in a process: a second collector fails.
func NewCollector(opts CollectorOptions) (*Collector, error) {
	opts.defaults()
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: opts.TraceMinAge, MaxBytes: opts.TraceMaxBytes})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("starting the flight recorder: %w", err)
	}
	// The dump budget counts from the start: a program with a million
	// goroutines waits ten minutes for its first six-second dump.
	c := &Collector{opts: opts, fr: fr, m: model.New(), lastDump: time.Now()}
	if opts.LiveIdle > 0 {
		// Room for the generations of a few seconds between snapshots
		// at a million goroutines (25 MB each).
		c.live = tracewin.NewStream(int(min(2*opts.TraceMaxBytes, math.MaxInt32)))
	}
	return c, nil
}

// Close stops the flight recorder.
func (c *Collector) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.bg.Wait() // a profile read in flight
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.liveTimer != nil {
		c.liveTimer.Stop()
	}
	if c.live != nil {
		c.live.Stop()
	}
	if c.fr.Enabled() {
		c.fr.Stop()
	}
}

// Snapshot builds the task model over the last window of trace.
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

func (c *Collector) build(ctx context.Context, window time.Duration) (*built, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.keepLive(now, window)
	// Within the CPU budget, requests share the last snapshot, whatever
	// window they ask: two clients asking for two windows must not build
	// one each time.
	asked := now
	for c.last != nil {
		next := c.nextBuild(c.last.at, c.buildCost)
		if !now.Before(next) {
			break
		}
		if c.last.window == window {
			return c.last, nil
		}
		if next.Sub(asked) > budgetWait {
			// Its window_ns says what it covers. The same snapshot, not a
			// copy with a note: the diagnosis annotates each snapshot it
			// is handed once, in place, tasks included.
			return c.last, nil
		}
		c.mu.Unlock()
		t := time.NewTimer(next.Sub(now))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		c.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now = time.Now()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The last window is garbage from here: let it go before the next one
	// is built (at 1M goroutines it holds some 300 MB).
	c.last = nil
	began := time.Now()
	var notes []string
	from := "trace"
	profDue := false

	if now.Sub(c.lastDump) >= source.Spacing(c.expectedDumpCost(), c.opts.DumpBudget) {
		if c.lastLeakDue(now) {
			c.readLeaks(now)
		}
		c.dump(now)
		from += "+dump"
	} else {
		profDue = c.profDone == nil && now.Sub(c.lastProf) >= source.Spacing(c.profCost, c.opts.CPUBudget)
		if profDue && !c.named {
			// Nothing names the goroutines yet: read the profile now.
			// Not alongside the trace's generation switch: together they
			// stopped the world for ~4ms at 100k goroutines.
			c.readProfile(now)
			done := c.profDone
			c.mu.Unlock()
			<-done
			c.mu.Lock()
			profDue = false
		}
		if c.dumpCost == 0 {
			// None taken yet: the budget spaces the first from the start.
			notes = append(notes, fmt.Sprintf("no goroutine dump yet (dumps stop the world, about %s here: taken at most %.0f%% "+
				"of the time, the first in %s): no wait minutes or leak marks; goroutines are named from the goroutine "+
				"profile by stack, or else carry their creator's labels",
				c.expectedDumpCost().Round(time.Microsecond), c.opts.DumpBudget*100,
				time.Until(c.lastDump.Add(source.Spacing(c.expectedDumpCost(), c.opts.DumpBudget))).Round(time.Second)))
		} else {
			notes = append(notes, fmt.Sprintf("labels, wait minutes and leak marks are from a goroutine dump %s ago "+
				"(dumps stop the world for %s: taken at most %.0f%% of the time); goroutines it did not see are named "+
				"from the goroutine profile by stack, or else carry their creator's labels",
				now.Sub(c.lastDump).Round(time.Millisecond), c.dumpCost.Round(time.Microsecond), c.opts.DumpBudget*100))
		}
	}

	var err error
	parallel := time.Duration(0)
	win, live := c.liveWindow(window, now)
	if live {
		c.traceEnd = win.WallEnd
		if c.traceEnd.IsZero() {
			c.traceEnd = time.Now()
		}
		// The flight recorder's last snapshot, read before the stream
		// served (tens of MB at a million goroutines), is not needed
		// while it does.
		c.traceBuf = bytes.Buffer{}
	} else {
		c.traceBuf.Reset()
		if _, err := c.fr.WriteTo(&c.traceBuf); err != nil {
			return nil, fmt.Errorf("flight recorder snapshot: %w", err)
		}
		c.traceEnd = time.Now() // the window ends at or before
		opts := snapshotWindow(now.Add(-window))
		analysing := time.Now()
		win, err = tracewin.AnalyzeTrace(&c.traceBuf, opts)
		if opts.Parallel && runtime.GOMAXPROCS(0) > 1 {
			parallel = time.Since(analysing)
		}
	}
	c.liveServed = live
	if live {
		from = "trace-stream" + strings.TrimPrefix(from, "trace")
	}
	if !c.profAt.IsZero() && c.profAt.After(c.lastDump) && !strings.Contains(from, "dump") {
		from += "+profile"
		if age := now.Sub(c.profAt); age > 0 {
			notes = append(notes, fmt.Sprintf("labels by stack from a goroutine profile read %s ago", age.Round(time.Millisecond)))
		}
	}
	if err != nil {
		notes = append(notes, "trace: "+err.Error())
	}
	if win.Truncated {
		notes = append(notes, "the trace window was cut short: numbers are partial")
	}
	snap := c.model(win, now)
	if live && buildStage != nil {
		buildStage("model")
	}
	snap.Source = from
	snap.Notes = append(snap.Notes, notes...)
	c.buildCost = time.Since(began) + parallel
	if live {
		// The stream parsed since the last build, outside this one.
		c.buildCost += c.liveCost.background
	}
	if gap := source.Spacing(c.buildCost, c.opts.CPUBudget); gap >= slowBuilds {
		// Requests until then share this snapshot: say why it stays.
		snap.Notes = append(snap.Notes, fmt.Sprintf("building this snapshot cost %s (its time, and the live stream's since the last) "+
			"and the CPU budget allows snapshots %.3g%% of a core, so the next comes in %s at the earliest: requests share "+
			"this one until then (a trace dense with events, such as a goroutine spinning on runtime.Gosched, costs most)",
			c.buildCost.Round(time.Millisecond), c.opts.CPUBudget*100, gap.Round(time.Second)))
	}
	c.last = &built{at: now, window: window, snap: snap, win: win}
	c.liveWait()
	if profDue {
		// For the next snapshots; read after this one rather than
		// alongside it, where it would compete with it for the CPU and
		// for the runtime's goroutine walks.
		c.readProfile(time.Now())
	}
	return c.last, nil
}

// liveWindow composes the window from the live trace stream, starting the
// stream if it is not running. It returns false when the stream cannot
// serve the window: it is off or paused, it has not yet run for as long as
// the window, or the runtime refused a second trace (another
// runtime/trace.Start runs). at is when the build began. Called with c.mu
// held.
func (c *Collector) liveWindow(window time.Duration, at time.Time) (*tracewin.Window, bool) {
	if c.live == nil || c.livePaused > 0 || c.closed {
		return nil, false
	}
	if err := c.live.Start(); err != nil {
		c.liveFailed("starting the live trace stream", err)
		return nil, false
	}
	began := time.Now()
	b, err := c.live.CatchUp()
	if err != nil {
		c.liveFailed("analysing the live trace stream", err)
		if errors.Is(err, tracewin.ErrStreamFormat) {
			c.live.Stop()
			c.live = nil
		}
		return nil, false
	}
	c.liveErr = ""
	caught := time.Now()
	if buildStage != nil {
		buildStage("catch-up")
	}
	win, ok := b.LiveWindow(window)
	if buildStage != nil {
		buildStage("compose")
	}
	busy := c.live.ParseTime()
	c.liveCost = liveCost{catchUp: caught.Sub(began), compose: time.Since(caught), events: b.Events(),
		background: max(busy-c.liveBusy-caught.Sub(began), 0)}
	c.liveBusy = busy
	// While analysing the stream as it comes costs at most half the CPU
	// budget (about 5% of a core per second of trace at 100k goroutines,
	// half a core at a million), do so: the next snapshot then finds
	// little left to parse. Otherwise parse only when a snapshot asks,
	// skipping what no window needs.
	cost := c.live.Cost(b)
	c.live.Release(cost > 0 && cost <= c.opts.CPUBudget/2)
	// When the budget spaces builds out too far for the analysis to go on
	// (see liveTrace.idle), it goes now, before the tasks are made: at a
	// million goroutines its builder and x/exp/trace's reader (some
	// 250 MB) would be held beside them (300 MB). This build costs at
	// least what it took so far, and likely what the last did.
	if ok {
		c.live.Idle(time.Until(c.nextBuild(at, max(c.buildCost, time.Since(at)+c.liveCost.background))))
	}
	return win, ok
}

// liveWait tells the live stream when the next build can come at the
// earliest, after one it served: the CPU budget spaces builds out.
func (c *Collector) liveWait() {
	if c.live == nil || !c.liveServed || c.last == nil {
		return
	}
	c.live.Idle(time.Until(c.nextBuild(c.last.at, c.buildCost)))
}

// nextBuild is the earliest a build may follow one that began at and cost
// cost, within the CPU budget.
func (c *Collector) nextBuild(at time.Time, cost time.Duration) time.Time {
	return at.Add(source.Spacing(cost, c.opts.CPUBudget))
}

// liveCost is what the last live window cost.
type liveCost struct {
	catchUp, compose time.Duration
	// background is the parser's time since the last build outside the
	// catch-up: the stream analysed as it came.
	background time.Duration
	events     int64 // analysed since the stream began
}

// liveFailed logs why the live stream could not serve, once per reason.
func (c *Collector) liveFailed(what string, err error) {
	if msg := what + ": " + err.Error(); msg != c.liveErr {
		c.liveErr = msg
		c.opts.Logger.Info(what+"; reading windows from the flight recorder", "err", err)
	}
}

// keepLive keeps the live stream running, or starts it, for a request of a
// window: every request counts, those that share the last snapshot too, or
// a client that the CPU budget spaces far apart (a snapshot a minute at a
// million goroutines) would find the stream stopped at each build, and
// every build would read the flight recorder. Called with c.mu held.
func (c *Collector) keepLive(now time.Time, window time.Duration) {
	if c.live == nil || c.livePaused > 0 || c.closed {
		return
	}
	c.liveUsed = now
	if c.liveTimer == nil {
		c.liveTimer = time.AfterFunc(c.opts.LiveIdle, c.liveIdle)
	} else {
		c.liveTimer.Reset(c.opts.LiveIdle)
	}
	c.live.KeepFor(window)
	// An error (another runtime/trace.Start runs) is the build's to log.
	_ = c.live.Start()
}

// liveIdle stops the live stream when no snapshot was asked for LiveIdle.
func (c *Collector) liveIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == nil || c.closed {
		return
	}
	if idle := time.Since(c.liveUsed); idle < c.opts.LiveIdle {
		c.liveTimer.Reset(c.opts.LiveIdle - idle)
		return
	}
	c.live.Stop()
}

// PauseLive stops the live trace stream until resume is called: the runtime
// runs one runtime/trace.Start at a time beside the flight recorder, and a
// /debug/pprof/trace request needs it. Snapshots meanwhile read the flight
// recorder.
func (c *Collector) PauseLive() (resume func()) {
	c.mu.Lock()
	c.livePaused++
	if c.live != nil {
		c.live.Stop()
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.livePaused--
			c.mu.Unlock()
		})
	}
}

// snapshotWindow is how the collector analyses its window: with sites,
// from since, and parsing on a second goroutine where there is a second
// core (the same window, in about 0.8x the wall time for 10% more CPU).
func snapshotWindow(since time.Time) tracewin.WindowOptions {
	return tracewin.WindowOptions{Sites: true, Since: since, Parallel: true}
}

// expectedDumpCost is the larger of the last dump's measured cost and the
// estimate for the goroutines alive now, so a program that grew since the
// last dump is not stopped for longer than the budget allows.
func (c *Collector) expectedDumpCost() time.Duration {
	return max(c.dumpCost, time.Duration(runtime.NumGoroutine())*source.DumpNSPerGoroutine)
}

func (c *Collector) lastLeakDue(now time.Time) bool {
	return now.Sub(c.lastLeak) >= c.opts.LeakInterval
}

// readLeaks runs the leak detector: the goroutineleak profile forces a GC
// that marks leaked goroutines, which it lists by stack (and the following
// dump shows as "(leaked)").
func (c *Collector) readLeaks(now time.Time) {
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		c.leaked = -1
		return
	}
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
	c.m.SetLeaks(leaks)
	c.leaked = int(leaks.Total())
	c.lastLeak = now
}

// Dump takes a full goroutine dump now, whatever the budget, so that the next
// snapshot's labels, wait minutes and leak marks are exact. It stops the
// world for about 6us per goroutine.
func (c *Collector) Dump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dump(time.Now())
	c.last = nil
}

// readProfile starts refreshing the labels by stack from the goroutine
// profile, in the background: reading it costs about 2.5us per goroutine
// (250 ms at 100k), as long as the rest of a snapshot. Called with c.mu
// held; the read takes it when done.
func (c *Collector) readProfile(now time.Time) {
	if c.closed {
		return
	}
	done := make(chan struct{})
	c.profDone = done
	c.lastProf = now
	c.bg.Go(func() {
		defer close(done)
		began := time.Now()
		sp, err := readProfile()
		cost := time.Since(began)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.profDone = nil
		c.profCost = cost
		if c.last != nil && c.last.at.Before(began) {
			c.buildCost += cost // read for the snapshots to come: charged to the last one
			c.liveWait()
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
		c.profAt, c.named = now, true
	})
}

// dump takes a full goroutine dump and records what it says of every goroutine.
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
}

// model makes the snapshot of win, asked for at now: its tasks from the
// model, and the process' runtime/metrics.
func (c *Collector) model(win *tracewin.Window, now time.Time) *api.Snapshot {
	snap := c.m.Snapshot(win, c.traceEnd)
	snap.Time = now
	snap.Process = ReadProcess()
	if !c.lastLeak.IsZero() {
		snap.Process.Leaked = c.leaked
	}
	return snap
}
