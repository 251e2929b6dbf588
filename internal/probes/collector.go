package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/inspectd/inspectd/internal/api"
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

	mu sync.Mutex // one snapshot at a time; guards everything below
	// What the last dump said of each goroutine alive then.
	facts     map[int64]*dumpFacts
	lastDump  time.Time
	dumpCost  time.Duration
	dumpBytes int
	// Labels inherited at creation since the last dump.
	inherited map[int64]map[string]string
	// Labels by stack from the goroutine profile, for goroutines the last
	// dump did not see.
	profLabels stackLabels
	profAt     time.Time // when the profile behind profLabels was read
	lastProf   time.Time // when the last read began
	profCost   time.Duration
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
	live       *liveTrace
	livePaused int
	liveUsed   time.Time
	liveTimer  *time.Timer
	liveErr    string // the last reason it could not serve, logged once
	liveServed bool   // the last snapshot's window came from it
	liveCost   liveCost
	liveBusy   time.Duration // the parser's time up to the last build
}

// dumpFacts are what only a dump tells about a goroutine.
type dumpFacts struct {
	labels      map[string]string
	waitMinutes int
	locked      bool
	leaked      bool
	leakWait    string // the wait reason of a leaked goroutine
	createdBy   Frame
	parentID    int64
	frames      []Frame
	startFunc   string
}

// newDumpFacts keeps what the dump tells of g that the trace does not.
func newDumpFacts(g *Goroutine) *dumpFacts {
	f := &dumpFacts{labels: g.Labels, waitMinutes: g.WaitMinutes, locked: g.Locked, leaked: g.Leaked,
		createdBy: g.CreatedBy, parentID: g.ParentID, frames: g.Frames}
	if g.Leaked {
		f.leakWait = g.WaitReason
	}
	if len(g.Frames) > 0 {
		f.startFunc = g.Frames[len(g.Frames)-1].Func
	}
	return f
}

// settleLeak gives a task the dump found leaked the dump's wait: a leaked
// goroutine never runs again, so that wait is final, while a window that
// ends before the dump (the trace lags) can show it at an earlier one,
// sleeping or running on its way to the leak.
func (f *dumpFacts) settleLeak(t *api.Task) {
	if !f.leaked || len(f.frames) == 0 {
		return
	}
	t.State, t.WaitReason = Waiting.String(), f.leakWait
	t.Location = f.location(t.Location)
}

// location is where the dump saw the goroutine (its top frame in user
// code), for one the window has no stack of; else loc.
func (f *dumpFacts) location(loc api.Frame) api.Frame {
	if len(f.frames) == 0 {
		return loc
	}
	return traceAPIFrame((&Goroutine{Frames: f.frames, CreatedBy: f.createdBy}).Location())
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
	win    *Window
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
	c := &Collector{opts: opts, fr: fr, facts: map[int64]*dumpFacts{}, inherited: map[int64]map[string]string{}, lastDump: time.Now()}
	if opts.LiveIdle > 0 {
		// Room for the generations of a few seconds between snapshots
		// at a million goroutines (25 MB each).
		c.live = newLiveTrace(int(min(2*opts.TraceMaxBytes, math.MaxInt32)))
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
		c.live.stop()
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
	return taskDetail(b.snap, b.win, &c.mu, c.facts, id)
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
	source := "trace"
	profDue := false

	if now.Sub(c.lastDump) >= spacing(c.expectedDumpCost(), c.opts.DumpBudget) {
		if c.lastLeakDue(now) {
			c.readLeaks(now)
		}
		c.dump(now)
		source += "+dump"
	} else {
		profDue = c.profDone == nil && now.Sub(c.lastProf) >= spacing(c.profCost, c.opts.CPUBudget)
		if profDue && c.profLabels == nil && len(c.facts) == 0 {
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
				time.Until(c.lastDump.Add(spacing(c.expectedDumpCost(), c.opts.DumpBudget))).Round(time.Second)))
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
		win, err = AnalyzeTrace(&c.traceBuf, opts)
		if opts.Parallel && runtime.GOMAXPROCS(0) > 1 {
			parallel = time.Since(analysing)
		}
	}
	c.liveServed = live
	if live {
		source = "trace-stream" + strings.TrimPrefix(source, "trace")
	}
	if c.profLabels != nil && !strings.Contains(source, "dump") {
		source += "+profile"
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
	snap.Source = source
	snap.Notes = append(snap.Notes, notes...)
	c.buildCost = time.Since(began) + parallel
	if live {
		// The stream parsed since the last build, outside this one.
		c.buildCost += c.liveCost.background
	}
	if gap := spacing(c.buildCost, c.opts.CPUBudget); gap >= slowBuilds {
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
func (c *Collector) liveWindow(window time.Duration, at time.Time) (*Window, bool) {
	if c.live == nil || c.livePaused > 0 || c.closed {
		return nil, false
	}
	if err := c.live.start(); err != nil {
		c.liveFailed("starting the live trace stream", err)
		return nil, false
	}
	began := time.Now()
	b, err := c.live.catchUp()
	if err != nil {
		c.liveFailed("analysing the live trace stream", err)
		if errors.Is(err, errLiveFormat) {
			c.live.stop()
			c.live = nil
		}
		return nil, false
	}
	c.liveErr = ""
	caught := time.Now()
	if buildStage != nil {
		buildStage("catch-up")
	}
	win, ok := b.liveWindow(window)
	if buildStage != nil {
		buildStage("compose")
	}
	busy := c.live.parseTime()
	c.liveCost = liveCost{catchUp: caught.Sub(began), compose: time.Since(caught), events: b.events,
		background: max(busy-c.liveBusy-caught.Sub(began), 0)}
	c.liveBusy = busy
	// While analysing the stream as it comes costs at most half the CPU
	// budget (about 5% of a core per second of trace at 100k goroutines,
	// half a core at a million), do so: the next snapshot then finds
	// little left to parse. Otherwise parse only when a snapshot asks,
	// skipping what no window needs.
	cost := c.live.cost(b)
	c.live.release(cost > 0 && cost <= c.opts.CPUBudget/2)
	// When the budget spaces builds out too far for the analysis to go on
	// (see liveTrace.idle), it goes now, before the tasks are made: at a
	// million goroutines its builder and x/exp/trace's reader (some
	// 250 MB) would be held beside them (300 MB). This build costs at
	// least what it took so far, and likely what the last did.
	if ok {
		c.live.idle(time.Until(c.nextBuild(at, max(c.buildCost, time.Since(at)+c.liveCost.background))))
	}
	return win, ok
}

// liveWait tells the live stream when the next build can come at the
// earliest, after one it served: the CPU budget spaces builds out.
func (c *Collector) liveWait() {
	if c.live == nil || !c.liveServed || c.last == nil {
		return
	}
	c.live.idle(time.Until(c.nextBuild(c.last.at, c.buildCost)))
}

// nextBuild is the earliest a build may follow one that began at and cost
// cost, within the CPU budget.
func (c *Collector) nextBuild(at time.Time, cost time.Duration) time.Time {
	return at.Add(spacing(cost, c.opts.CPUBudget))
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
	c.live.keepFor(window)
	// An error (another runtime/trace.Start runs) is the build's to log.
	_ = c.live.start()
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
	c.live.stop()
}

// PauseLive stops the live trace stream until resume is called: the runtime
// runs one runtime/trace.Start at a time beside the flight recorder, and a
// /debug/pprof/trace request needs it. Snapshots meanwhile read the flight
// recorder.
func (c *Collector) PauseLive() (resume func()) {
	c.mu.Lock()
	c.livePaused++
	if c.live != nil {
		c.live.stop()
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
func snapshotWindow(since time.Time) WindowOptions {
	return WindowOptions{Sites: true, Since: since, Parallel: true}
}

// spacing is how long work that cost cost must wait before it runs again to
// stay within share of the time. It saturates rather than overflow: a tiny
// share means "practically never", not a negative wait.
func spacing(cost time.Duration, share float64) time.Duration {
	d := float64(cost) / share
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// dumpNSPerGoroutine is what a dump costs per goroutine on a 2-core machine
// (about 6us, all of it stop-the-world); it guards the first dump, whose
// cost is not yet measured.
const dumpNSPerGoroutine = 6000

// expectedDumpCost is the larger of the last dump's measured cost and the
// estimate for the goroutines alive now, so a program that grew since the
// last dump is not stopped for longer than the budget allows.
func (c *Collector) expectedDumpCost() time.Duration {
	return max(c.dumpCost, time.Duration(runtime.NumGoroutine())*dumpNSPerGoroutine)
}

func (c *Collector) lastLeakDue(now time.Time) bool {
	return now.Sub(c.lastLeak) >= c.opts.LeakInterval
}

// readLeaks runs the leak detector: the goroutineleak profile forces a GC that
// marks leaked goroutines, which the following dump then shows as "(leaked)".
func (c *Collector) readLeaks(now time.Time) {
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		c.leaked = -1
		return
	}
	if err := p.WriteTo(io.Discard, 0); err != nil {
		c.opts.Logger.Warn("reading the goroutine leak profile", "err", err)
		return
	}
	c.leaked = p.Count()
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
		sl, err := readProfileLabels()
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
		c.profLabels, c.profAt = sl, now
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
	gs, err := ParseDumpBytes(c.dumpBuf[:n])
	if err != nil {
		c.opts.Logger.Warn("parsing a goroutine dump of this process", "err", err)
	}
	clear(c.facts)
	clear(c.inherited)
	c.profLabels = nil // older than the dump
	for i := range gs {
		g := &gs[i]
		c.facts[g.ID] = newDumpFacts(g)
	}
}

// model joins the window with what the dumps said.
func (c *Collector) model(win *Window, now time.Time) *api.Snapshot {
	snap := &api.Snapshot{Time: now, WindowNS: win.Duration(), Tasks: make([]api.Task, 0, win.count())}
	// Creation order is id order, so a parent's labels are known before its children's.
	stale := 0
	// Goroutines that wait at the same place share their stack (the window
	// keeps one []Frame per distinct stack): join each stack once.
	joins := make(map[stackRef]*stackJoin)
	join := func(stk []Frame) *stackJoin {
		k := stackRef{unsafe.SliceData(stk), len(stk)}
		j := joins[k]
		if j == nil {
			j = &stackJoin{}
			j.labels, j.labelled = c.profLabels.lookup(stk)
			for _, f := range stk {
				if !isStdFunc(f.Func) {
					j.loc, j.userLoc = traceAPIFrame(f), true
					break
				}
			}
			joins[k] = j
		}
		return j
	}
	// Names from labels, by label set: most goroutines share theirs.
	names := make(map[unsafe.Pointer]string)
	// Stats.IdleByReason of the tasks idle all the window, by reason;
	// shared, like labels: read-only.
	idleAll := make(map[string]map[string]int64)
	spawns := newSpawnCounter(win.Duration())
	for g := range win.all() {
		if g.Exited {
			spawns.add(traceAPIFrame(g.CreatedBy), g)
			continue
		}
		id := g.ID
		j := join(g.Stack)
		loc := j.loc
		if !j.userLoc {
			loc = traceAPIFrame(g.Location()) // may fall back on the creator
		}
		t := api.Task{
			ID:         id,
			State:      g.State.String(),
			WaitReason: g.WaitReason,
			CreatedBy:  traceAPIFrame(g.CreatedBy),
			ParentID:   g.ParentID,
			Location:   loc,
		}
		if len(g.IdleByReason) == 1 && g.Idle == win.Duration() {
			// Idle for one reason all the window long, as most goroutines
			// of a large program are: share one map per reason.
			t.Stats = g.taskStatsNoIdle()
			r := g.IdleByReason[0]
			m := idleAll[r.Reason]
			if m == nil {
				m = map[string]int64{r.Reason: r.NS}
				idleAll[r.Reason] = m
			}
			t.Stats.IdleByReason = m
		} else {
			t.Stats = g.TaskStats()
		}
		startFunc := g.StartFunc
		var f *dumpFacts
		if len(c.facts) > 0 {
			f = c.facts[id]
		}
		if f != nil {
			t.Labels, t.WaitMinutes, t.Locked, t.Leaked = f.labels, f.waitMinutes, f.locked, f.leaked
			if t.CreatedBy.Function == "" {
				t.CreatedBy, t.ParentID = traceAPIFrame(f.createdBy), f.parentID
			}
			if startFunc == "" {
				startFunc = f.startFunc
			}
			if len(g.Stack) == 0 {
				t.Location = f.location(t.Location)
			}
			f.settleLeak(&t)
		} else if j.labelled && !(g.ParentID != 0 && c.traceEnd.Add(-time.Duration(g.Total)).After(c.profAt)) {
			// (A goroutine created after the profile was read may have
			// labels other than those it showed for the same stack: it
			// takes its creator's below.)
			t.Labels = j.labels
		} else if l, ok := c.inherited[id]; ok {
			t.Labels, t.LabelsStale = l, true
		} else if g.ParentID != 0 {
			// Created since the last dump: it started with its creator's labels.
			t.Labels = inheritLabels(c.facts, c.inherited, id, g.ParentID)
			t.LabelsStale = t.Labels != nil
		}
		if t.LabelsStale {
			stale++
		}
		if lp := mapPointer(t.Labels); lp != nil {
			n, ok := names[lp]
			if !ok {
				if n = labelName(t.Labels); n != "" {
					names[lp] = n
				}
			}
			t.Name = n
		}
		if t.Name == "" {
			t.Name = taskName(t.Labels, startFunc, t.CreatedBy.Function)
		}
		spawns.add(t.CreatedBy, g)
		snap.Tasks = append(snap.Tasks, t)
	}
	snap.Spawns = spawns.list()
	if stale > 0 {
		snap.Notes = append(snap.Notes, fmt.Sprintf("%d tasks were created since the last dump: their labels are their creator's and may be stale", stale))
	}
	snap.Sites = make([]api.Site, 0, len(win.Sites))
	for _, s := range win.Sites {
		snap.Sites = append(snap.Sites, s.Site())
	}
	snap.Process = ReadProcess()
	if !c.lastLeak.IsZero() {
		snap.Process.Leaked = c.leaked
	}
	snap.Findings = []api.Finding{}
	return snap
}

// labelName is the task name the labels give, if any.
func labelName(labels map[string]string) string {
	if n := labels["task"]; n != "" {
		return n
	}
	if w, r := labels["workload"], labels["role"]; w != "" || r != "" {
		return strings.Trim(w+"/"+r, "/")
	}
	return ""
}

// mapPointer tells maps apart by identity (nil for a nil map): goroutines
// named from the same label set share its map.
func mapPointer(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

// stackRef identifies one of a window's stacks: goroutines with the same
// stack share its frames.
type stackRef struct {
	first *Frame
	n     int
}

// stackJoin is what the model takes from a stack: its labels in the
// goroutine profile, and its top frame in user code.
type stackJoin struct {
	labels   map[string]string
	labelled bool
	loc      api.Frame
	userLoc  bool // loc is the top frame in user code
}

// taskName is tokio-console's task name: label "task", else workload/role,
// else the function the goroutine started in.
func taskName(labels map[string]string, startFunc, createdBy string) string {
	if n := labelName(labels); n != "" {
		return n
	}
	if startFunc != "" {
		return startFunc
	}
	return createdBy
}
