package inproc

// The recorder: the execution trace, taken in slices while clients ask.
//
// The runtime's tracer costs the program in proportion to its event rate:
// nothing for a program that computes in long stretches, most of its
// throughput for one whose goroutines switch every microsecond (channel
// ping-pong). So nothing is traced while nobody asks (idle is free), and
// while clients ask the recorder traces a part of each interval: a slice
// (runtime/trace.Start to Stop) analysed as soon as it ends, then a pause.
// The share traced is set after each slice so that the tracer's cost,
// estimated from the slice's events, and the analysis', measured on its
// thread, stay within the overhead budget of the CPU the program uses
// itself. Windows are composed of the last slices (tracewin.Compose),
// their numbers scaled up from the share observed.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/trace"
	"sync"
	"time"

	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/tracewin"
)

const (
	// tracerNSPerEvent is what the runtime's tracer costs the program per
	// event it writes: in channel ping-pong (some 6 events an operation)
	// tracing raises the CPU time of an operation by about 0.7 µs (120 ns
	// an event); in an HTTP server on loopback, whose events are mostly
	// system calls with their stacks (some 40 a request, client and
	// server), by 6-10 µs (150-250 ns an event). The higher is taken.
	tracerNSPerEvent = 250
	// sliceOverhead is what starting and stopping a slice costs besides
	// its events (stopping the world twice, the tracer's buffers).
	sliceOverhead = 2 * time.Millisecond
	// maxSlice and minSlice bound a slice; maxCycle bounds a slice and the
	// pause after it, so that a watcher sees new numbers at least that
	// often whatever the budget (the snapshot says when that costs more).
	maxSlice = time.Second
	minSlice = 100 * time.Millisecond
	maxCycle = 10 * time.Second
	// maxSlices bounds the slices kept: past it, every other one of the
	// older half is dropped, so that a long window is a sample of slices.
	maxSlices = 16
	// maxInterned bounds the stacks the interner holds.
	maxInterned = 50_000
	// firstSlice is the length of a slice before any cost is known.
	firstSlice = 250 * time.Millisecond
	// maxSliceBytes ends a slice early: some 50,000 events, whose analysis
	// takes about 100 ms of CPU. A program that switches goroutines a
	// million times a second writes that in a few milliseconds, and its
	// runnable goroutines leave the recorder a small share of the CPU: a
	// longer slice would take it minutes to analyse.
	maxSliceBytes = 256 << 10
	// maxSliceEvents bounds the analysis of a slice that overran
	// maxSliceBytes: the tracer writes until it has stopped, which in a
	// program whose goroutines keep every core busy can take seconds (and
	// megabytes). Some three times what maxSliceBytes holds.
	maxSliceEvents = 150_000
	// minCapped is the shortest slice maxSliceBytes plans for.
	minCapped = time.Millisecond
	// freshWait bounds how long a request waits for a slice to end.
	freshWait = 2 * time.Second
	// maxSliceGap is how soon after the slice before a slice must begin
	// for its goroutines, waiting since, to be placed where that one left
	// them (tracewin.WindowOptions.WaitingAt): the recorder's pause
	// between slices is a second or less.
	maxSliceGap = 3 * time.Second
)

// plan is how the recorder traces: slices of on, each followed by off.
type plan struct {
	on, off time.Duration
	// share is the part of the time traced; over is set when the budget
	// asked for less than maxCycle allows.
	share float64
	over  bool
}

// costs are what one slice cost, for the next plan.
type costs struct {
	on         time.Duration // how long it traced
	cycle      time.Duration // from its start to the end of its analysis
	analysis   time.Duration // the CPU time of stopping the trace and of the analysis
	events     int64
	bytes      int64         // the trace's size
	goroutines int           // the goroutines it saw: each is at least one event, whatever its length
	progCPU    time.Duration // the process' CPU time over the cycle, analysis included
	// other is what inspection spends besides the recorder, whatever the
	// plan (building, diagnosing and encoding snapshots), in CPU-seconds
	// a second.
	other float64
}

// nextPlan sets the length of the slices and the pause between them so
// that inspection costs at most budget of the CPU the program uses itself,
// or of one core for a program that uses less (an idle program loses
// nothing, but each slice's first events, one per goroutine, must be paid
// for).
//
// A slice costs a part that does not depend on its length (an event for
// every goroutine, when it starts or stops) and one that does (the events
// of what the goroutines do). Slices are made long enough for the first
// not to dominate, and spaced for the whole to fit the budget.
func nextPlan(c costs, budget float64) plan {
	if c.on <= 0 || c.events <= 0 {
		return plan{on: firstSlice, share: 1}
	}
	// The analysis allocates: the collector's work on its garbage comes
	// to about half its own. The tracer's cost is the program's.
	inspect := (c.analysis*3/2 + time.Duration(c.events)*tracerNSPerEvent).Seconds()
	perEvent := inspect / float64(c.events)
	fixedEvents := min(int64(c.goroutines), c.events)
	fixed := perEvent*float64(fixedEvents) + sliceOverhead.Seconds()
	perSec := perEvent * float64(c.events-fixedEvents) / c.on.Seconds() // per second traced
	prog := max(c.progCPU-c.analysis-time.Duration(c.other*float64(c.cycle)), 0)
	rate := max(prog.Seconds()/c.cycle.Seconds(), 1)
	// Inspection may take budget of what the program and it use together;
	// the recorder what the snapshots leave of it, and a tenth at least:
	// without slices, a watcher would see nothing new.
	allowed := budget / (1 - budget) * rate // CPU-seconds per second
	allowed = max(allowed-c.other, allowed/10)
	on := maxSlice
	if perSec > 0 {
		on = min(max(time.Duration(fixed/perSec*float64(time.Second)), minSlice), maxSlice)
	}
	if c.bytes > 0 {
		// What fits maxSliceBytes at the rate this one was written.
		fits := time.Duration(float64(maxSliceBytes) / float64(c.bytes) * float64(c.on))
		on = max(min(on, fits), minCapped)
	}
	cycle := time.Duration((fixed + perSec*on.Seconds()) / allowed * float64(time.Second))
	if cycle <= on {
		return plan{on: maxSlice, share: 1}
	}
	p := plan{on: on}
	if cycle > maxCycle {
		cycle, p.over = maxCycle, true
	}
	p.share = float64(on) / float64(cycle)
	// The stopping and the analysis run in the pause.
	p.off = max(cycle-on-(c.cycle-c.on), 0)
	return p
}

// recorder is one run of the recorder goroutine.
type recorder struct {
	stop chan struct{} // closed to end it
	done chan struct{} // closed when it has ended
	once sync.Once
}

// halt ends the recorder's run; done closes when it has ended.
func (r *recorder) halt() { r.once.Do(func() { close(r.stop) }) }

// startRecorder starts the recorder if it is not running. Called with c.mu
// held.
func (c *Collector) startRecorder(now time.Time) {
	if c.rec != nil || c.closed {
		return
	}
	r := &recorder{stop: make(chan struct{}), done: make(chan struct{})}
	c.rec = r
	if len(c.slices) == 0 {
		// From idle: nothing recorded, nothing known of its cost.
		c.coldAt = now
		c.plan = plan{on: firstSlice, share: 1}
		c.in = tracewin.NewInterner()
		c.spent, c.spentSince, c.otherRate = 0, now, 0
	}
	go source.Own("recorder", func() { c.record(r) })
}

// record takes slices until r.stop closes (the slices stay) or nobody asked
// for IdleAfter (they go).
func (c *Collector) record(r *recorder) {
	defer close(r.done)
	defer func() {
		c.mu.Lock()
		if c.rec == r {
			c.rec, c.analysing = nil, false
		}
		c.notify()
		c.mu.Unlock()
	}()
	var buf bytes.Buffer
	for {
		c.mu.Lock()
		if c.inflight == 0 && time.Since(c.asked) >= c.opts.IdleAfter || c.closed {
			c.slices, c.in, c.coldAt = nil, nil, time.Time{}
			c.mu.Unlock()
			return
		}
		p := c.plan
		c.mu.Unlock()
		started := time.Now()
		cpu0 := source.ProcessCPU()
		buf.Reset()
		st := &stopper{running: make(chan struct{}), done: make(chan struct{})}
		w := &capWriter{buf: &buf, max: maxSliceBytes, full: st.stop, running: st.running}
		var err error
		// Starting costs some milliseconds of CPU (the tracer's CPU
		// sample buffer is cleared each time): counted as the stopping.
		startCPU := source.OnThread(func() { err = trace.Start(w) })
		if err != nil {
			// Another trace runs (the program's own, or a gops agent's).
			c.failed("starting the execution trace", err)
			if !sleep(r.stop, time.Second) {
				return
			}
			continue
		}
		c.mu.Lock()
		c.tracing, c.stopper = started, st
		c.mu.Unlock()
		// The slice ends on a timer, when it is full, or when a request
		// asks: each stops the trace from a goroutine of its own, which
		// the scheduler runs next, while this one may wait long for a
		// turn in a program whose goroutines keep both cores busy.
		timer := time.AfterFunc(p.on, st.stop)
		stopped := true
		select {
		case <-st.done:
		case <-r.stop:
			st.stop()
			<-st.done
			stopped = false
		}
		timer.Stop()
		stopCPU := startCPU + st.cpu
		c.mu.Lock()
		c.tracing, c.stopper, c.analysing = time.Time{}, nil, stopped
		c.mu.Unlock()
		if !stopped {
			return
		}
		c.mu.Lock()
		in := c.in
		if in == nil {
			c.analysing = false
		}
		var prev *tracewin.Slice
		if n := len(c.slices); n > 0 && started.Sub(c.slices[n-1].WallEnd) < maxSliceGap {
			prev = c.slices[n-1]
		}
		c.mu.Unlock()
		if in == nil {
			return
		}
		traced := time.Since(started)
		s, analysis, err := analyse(&buf, in, prev)
		if err != nil {
			c.failed("analysing the execution trace", err)
		}
		if buf.Cap() > 64<<20 {
			buf = bytes.Buffer{} // a burst of events: do not keep its room
		}
		cost := costs{on: s.Duration(), cycle: time.Since(started), analysis: stopCPU + analysis, events: s.Events, bytes: int64(w.n),
			goroutines: s.Goroutines(), progCPU: source.ProcessCPU() - cpu0}
		if d := s.Duration(); d > 0 && (w.dropped || s.Events >= maxSliceEvents) && traced > d {
			// The tracer ran on past what was kept or analysed, at the
			// program's cost: the plan counts all of it.
			cost.on, cost.events = traced, int64(float64(s.Events)*float64(traced)/float64(d))
		}
		c.mu.Lock()
		c.analysing = false
		cost.other = c.otherSpent(time.Now())
		if c.rec == r && c.in == in {
			c.addSlice(s)
			if in.Len() > maxInterned {
				// Stacks that change all the time (deep recursion): start
				// afresh; the slices kept keep theirs.
				c.in = tracewin.NewInterner()
			}
			c.plan = nextPlan(cost, c.opts.OverheadBudget)
			c.cost = cost
			p = c.plan
			if err == nil {
				c.recErr = ""
			}
		}
		c.mu.Unlock()
		if p.off > 0 && !sleep(r.stop, p.off) {
			return
		}
	}
}

// otherMemory is how long what inspection spent besides the recorder
// counts in its plan: builds follow the clients' intervals (a second or
// more), slices and their pauses are shorter or longer.
const otherMemory = 5 * time.Second

// otherSpent is the rate of what inspection spent besides the recorder, in
// CPU-seconds a second, smoothed over otherMemory, counting what was spent
// since it was last asked. Called with c.mu held.
func (c *Collector) otherSpent(now time.Time) float64 {
	if d := now.Sub(c.spentSince); d > 0 && !c.spentSince.IsZero() {
		keep := math.Exp(-d.Seconds() / otherMemory.Seconds())
		c.otherRate = keep*c.otherRate + (1-keep)*c.spent.Seconds()/d.Seconds()
	}
	c.spent, c.spentSince = 0, now
	return c.otherRate
}

// capWriter keeps a slice's trace, and ends the slice once it holds max
// bytes. The runtime's trace reader calls Write, ahead of other goroutines.
// Past max, it keeps the generation in flight to its end and drops what
// follows: the tracer writes on until it has stopped, which in a program
// whose goroutines keep every core busy can take seconds, and the whole
// generations kept make a trace of their own.
type capWriter struct {
	buf     *bytes.Buffer
	max     int
	n       int // bytes written, kept or dropped
	full    func()
	running <-chan struct{} // closed once the goroutine that stops the trace runs; nil: none to wait for
	waited  bool
	dropped bool // past max, a generation has ended: the rest is dropped
}

// endOfGeneration is the byte the runtime writes alone after each
// generation of a trace (tracev2.EvEndOfGeneration, Go 1.26 on).
const endOfGeneration = 52

func (w *capWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.dropped {
		return len(p), nil
	}
	if w.n >= w.max {
		w.full()
		if !w.waited && w.running != nil {
			// The scheduler runs the trace reader ahead of every other
			// goroutine while the tracer has data for it, which in a
			// busy program is all the time: the goroutine that stops
			// the trace, started from here, waited seconds for a turn
			// while the tracer wrote hundreds of megabytes. The reader
			// waits for it to run (it closes running before it stops the
			// trace, which waits for the reader).
			w.waited = true
			<-w.running
		}
		if len(p) == 1 && p[0] == endOfGeneration {
			w.dropped = true
		}
	}
	return w.buf.Write(p)
}

// stopper stops a slice's trace once, however many ask.
type stopper struct {
	once    sync.Once
	running chan struct{} // closed when the goroutine that stops the trace runs
	done    chan struct{} // closed when the trace has stopped
	cpu     time.Duration // the CPU time stopping took (set before done closes)
}

// stop stops the trace from a new goroutine: the runtime's trace reader
// may be the caller, and trace.Stop waits for it. Stopping writes the
// status of every goroutine the slice did not see (some 0.7 µs each): that
// goroutine's thread pays it, and counts it.
func (s *stopper) stop() {
	s.once.Do(func() {
		go source.Own("recorder", func() {
			close(s.running)
			s.cpu = source.OnThread(trace.Stop)
			close(s.done)
		})
	})
}

// pace lets the recorder's work through in a program whose goroutines
// keep every core busy: a goroutine a timer wakes runs before the others,
// while one that is preempted waits its turn behind all of them (a
// hundred goroutines switching on channels left the analysis 0.3% of the
// CPU; sleeping a moment every millisecond of it, 5 to 10%).
func pace() { time.Sleep(time.Microsecond) }

// analyse analyses one slice on a thread of its own, and says how much CPU
// time that took. Only the recorder uses in while it runs.
func analyse(buf *bytes.Buffer, in *tracewin.Interner, prev *tracewin.Slice) (*tracewin.Slice, time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := source.ThreadCPU()
	// A slice whose analysis stopped at maxSliceEvents stays Truncated:
	// its quiet goroutines, told at the end of the generation, are not in
	// it, and a window must not take them for gone.
	s, err := tracewin.AnalyzeSlice(buf, in, prev, pace, maxSliceEvents)
	return s, source.ThreadCPU() - t0, err
}

// addSlice keeps s, and drops what no window needs. Called with c.mu held.
func (c *Collector) addSlice(s *tracewin.Slice) {
	if s.WallEnd.IsZero() {
		return // no clock: cannot be placed (a trace before Go 1.25)
	}
	c.slices = append(c.slices, s)
	c.sliceSeq++
	keep := c.keep()
	i := 0
	for i < len(c.slices)-1 && s.WallEnd.Sub(c.slices[i].WallEnd) > keep {
		i++
	}
	c.slices = c.slices[i:]
	for len(c.slices) > maxSlices {
		// Every other one of the older half.
		half := len(c.slices) / 2
		kept := c.slices[:0]
		for j, x := range c.slices {
			if j >= half || j%2 == 0 {
				kept = append(kept, x)
			}
		}
		clear(c.slices[len(kept):])
		c.slices = kept
	}
	c.notify()
}

// keep is how far back slices are kept: the longest window asked lately,
// and a cycle of the recorder more (the window's first slice may start
// before it).
func (c *Collector) keep() time.Duration {
	return c.longest + c.plan.on + c.plan.off + time.Second
}

// notify wakes those waiting for a slice. Called with c.mu held.
func (c *Collector) notify() {
	close(c.sliced)
	c.sliced = make(chan struct{})
}

// failed logs why the recorder could not trace, once per reason. Called
// without c.mu.
func (c *Collector) failed(what string, err error) {
	msg := what + ": " + err.Error()
	c.mu.Lock()
	defer c.mu.Unlock()
	if msg != c.recErr {
		c.recErr = msg
		c.opts.Logger.Info(what, "err", err)
	}
}

// freshen ends the slice in flight, if it has run long enough to say
// something, and waits for its analysis: a request gets the program as it
// is now rather than as the last slice left it. A slice that has ended and
// is being analysed is waited for too, for at most freshWait: a program
// whose goroutines keep every core busy may leave the analysis little CPU,
// and the last snapshot says how old it is. In the pause between slices,
// which the overhead budget sets, there is nothing to end.
func (c *Collector) freshen(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, freshWait)
	defer cancel()
	c.mu.Lock()
	now := time.Now()
	var last time.Time
	if n := len(c.slices); n > 0 {
		last = c.slices[n-1].WallEnd
	}
	if c.rec != nil && c.analysing {
		c.mu.Unlock()
		_ = c.waitSlice(ctx, last)
		return
	}
	if c.rec == nil || c.tracing.IsZero() || now.Sub(c.tracing) < minSlice || now.Sub(last) < minSlice {
		c.mu.Unlock()
		return
	}
	c.stopper.stop()
	c.mu.Unlock()
	_ = c.waitSlice(ctx, last)
}

// sleep waits d, or until stop closes: false then.
func sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// waitSlice waits until a slice newer than after is kept, or ctx ends.
func (c *Collector) waitSlice(ctx context.Context, after time.Time) error {
	for {
		c.mu.Lock()
		if n := len(c.slices); n > 0 && c.slices[n-1].WallEnd.After(after) {
			c.mu.Unlock()
			return nil
		}
		if c.rec == nil || c.recErr != "" && len(c.slices) == 0 {
			err := fmt.Errorf("no execution trace of this process: %s", recErrOr(c.recErr, "the recorder is stopped"))
			c.mu.Unlock()
			return err
		}
		ch := c.sliced
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
