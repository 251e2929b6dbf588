package probes

// Execution trace windows.
//
// AnalyzeTrace (or a WindowBuilder fed event by event) turns an execution
// trace into the per-goroutine numbers of the task view: how long each
// goroutine was busy (running), scheduled (runnable: ready but not running),
// idle (waiting, split by wait reason) and in system calls, how often it was
// scheduled, its longest run and histograms of its run times and scheduling
// delays; plus the blocking sites (wait reason + call site) with their wait
// time, wake-ups and the stack that most often woke them.
//
// It reads any execution trace of Go 1.22 or later (older ones are converted
// by the parser): runtime/trace.Start output, a runtime/trace.FlightRecorder
// snapshot, `curl 'http://host/debug/pprof/trace?seconds=5'`, the gops
// agent's trace:
//
//	w, err := probes.AnalyzeTrace(resp.Body, probes.WindowOptions{Sites: true})
//	// err != nil: the trace was cut or corrupt; w holds what was read.
//	for id, g := range w.Goroutines {
//		fmt.Println(id, g.State, g.WaitReason, g.Busy, g.Sched, g.Idle, g.Polls)
//	}
//
// The accounting is that of Go's own trace summary (internal/trace's
// Summarizer, the per-goroutine breakdown of `go tool trace`): every
// goroutine state transition closes an interval of the old state and opens
// one of the new state; a goroutine whose first event tells a state it was
// already in (a status event: it existed before the trace started) counts
// that state from the window start; intervals still open at the end close at
// the window end. So Busy is Go's "Execution time", Sched its "Sched wait
// time", Idle the sum of its "Block time (...)" columns, and Syscall its
// "Syscall execution time" plus "Block time (syscall)". Two differences, on
// purpose: a goroutine that blocks "forever" (select {}, a nil channel) is
// still there and still waiting, so its idle time goes on (Go's summary
// treats it as gone); and wait reasons are the goroutine dump's ("sync.Mutex.Lock",
// "IO wait", "sync.Cond.Wait", ...) rather than the trace's coarser ones
// ("sync", "network", "sync.(*Cond).Wait"), told apart by the blocking stack.
//
// What the trace lacks: labels (join with a goroutine dump by goroutine ID),
// and the wait reason of a goroutine blocked since before the window: its
// status event has its stack but no reason, so the reason is read off the
// top frames (chanrecv: "chan receive", selectgo: "select", time.Sleep:
// "sleep", ...) and GoStats.ReasonInferred says so.

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/exp/trace"

	"github.com/inspectd/inspectd/internal/api"
)

// WindowOptions bound the analysis of a trace window.
type WindowOptions struct {
	// MaxEvents stops the analysis after this many events (0: no limit). The
	// window then ends at the last event analysed and is marked Truncated.
	MaxEvents int64
	// Sites collects blocking sites (Window.Sites) and their wakers. It costs
	// a stack look-up per block and per wake-up.
	Sites bool
	// Since, if not zero, starts the window at this wall-clock time rather
	// than at the first event: the events before it only tell each
	// goroutine's state at the window start. It needs the clock snapshot
	// traces carry since Go 1.25; without one it is ignored. A
	// FlightRecorder snapshot keeps more than asked for: Since cuts it to
	// the last seconds of interest. In a Go 1.26+ trace, AnalyzeTrace then
	// does not even parse the generations that ended before the one before
	// Since (see genSkipper), so a goroutine created before those has no
	// CreatedBy or ParentID.
	Since time.Time
	// Parallel has AnalyzeTrace parse on a second goroutine while it
	// analyses on the calling one: less wall time where a core is free
	// (the CLI), some 10% more CPU time (see AnalyzeTrace).
	Parallel bool
	// For, if not zero, ends the window For after its start (Since, or the
	// first event): AnalyzeTrace stops reading there, and Window.More says
	// the trace went on. Stepping Since and For through a saved trace
	// gives its successive windows.
	For time.Duration
}

// Window is the analysis of one execution trace window: per goroutine
// statistics and blocking sites.
type Window struct {
	Start, End int64              // trace timestamps (ns) of the first and last event, or of WindowOptions.Since and the last
	Goroutines map[int64]*GoStats // every goroutine that existed in the window, by ID
	Sites      []*SiteStats       // blocking sites, most wait first (with WindowOptions.Sites)
	Events     int64              // events analysed
	Truncated  bool               // the input ended early or MaxEvents was hit: partial results
	// WallStart and WallEnd are Start and End on the wall clock, from the
	// trace's clock snapshots (Go 1.25 and later); zero without one.
	WallStart, WallEnd time.Time
	More               bool // WindowOptions.For ended the window before the trace ended

	// byID is Goroutines in ID order, when the builder listed them (nil:
	// sort the map): at a million goroutines, iterating the map and
	// sorting cost about as much as the model built from them.
	byID []*GoStats
	// quiet holds, in a live window (the Collector's own), the goroutines
	// that waited all of it without an event: most of a large program's.
	// They are kept compact, apart from Goroutines, and get their GoStats
	// when asked for (see all and get).
	quiet *quietSet
}

// count is the number of goroutines in the window.
func (w *Window) count() int {
	return len(w.Goroutines) + w.quiet.len()
}

// get returns goroutine id's numbers, or nil when it was not in the window.
func (w *Window) get(id int64) *GoStats {
	if g := w.Goroutines[id]; g != nil {
		return g
	}
	return w.quiet.get(id)
}

// all yields the window's goroutines in ID order. A quiet goroutine's
// GoStats are made for the yield and are not valid after it.
func (w *Window) all() iter.Seq[*GoStats] {
	return func(yield func(*GoStats) bool) {
		listed := w.sortedGoroutines()
		if w.quiet.len() == 0 {
			for _, g := range listed {
				if !yield(g) {
					return
				}
			}
			return
		}
		var scratch GoStats
		var idle [1]ReasonTime
		q := w.quiet
		i := 0
		for _, g := range listed {
			for ; i < len(q.gs) && int64(q.gs[i].id) < g.ID; i++ {
				q.stats(&q.gs[i], &scratch, &idle)
				if !yield(&scratch) {
					return
				}
			}
			if !yield(g) {
				return
			}
		}
		for ; i < len(q.gs); i++ {
			q.stats(&q.gs[i], &scratch, &idle)
			if !yield(&scratch) {
				return
			}
		}
	}
}

// sortedGoroutines returns the window's goroutines in ID order.
func (w *Window) sortedGoroutines() []*GoStats {
	if w.byID != nil {
		return w.byID
	}
	gs := slices.Collect(maps.Values(w.Goroutines))
	slices.SortFunc(gs, func(a, b *GoStats) int { return cmp.Compare(a.ID, b.ID) })
	return gs
}

// listByID sets byID from stats, which hold every goroutine of the window:
// in ID order (a live window), or in order of appearance, nearly ID order,
// which the sort sees through.
func (w *Window) listByID(stats []GoStats) {
	w.byID = make([]*GoStats, len(stats))
	for i := range stats {
		w.byID[i] = &stats[i]
	}
	if !slices.IsSortedFunc(w.byID, func(a, b *GoStats) int { return cmp.Compare(a.ID, b.ID) }) {
		slices.SortFunc(w.byID, func(a, b *GoStats) int { return cmp.Compare(a.ID, b.ID) })
	}
}

// Duration is the window's length in ns.
func (w *Window) Duration() int64 { return w.End - w.Start }

// GoStats are one goroutine's numbers over a window. All durations are in ns
// and clipped to the window; Busy+Sched+Idle+Syscall == Total.
type GoStats struct {
	ID int64
	// State is the goroutine's state at the end of the window; the zero
	// State for a goroutine that exited (Exited).
	State  State
	Exited bool
	// Ended is, for an exited goroutine, when it exited: ns from the
	// window's start.
	Ended int64
	// WaitReason is why the goroutine waits at the end of the window, in the
	// goroutine dump's words ("chan receive", "sync.Mutex.Lock", "sleep",
	// "IO wait", ...); "" unless State is Waiting.
	WaitReason string
	// ReasonInferred says the trace recorded no reason for this wait (it
	// began before the window) and WaitReason was read off the stack.
	ReasonInferred bool
	// InState is how long the goroutine has been in State at the end of
	// the window, as far as the window shows (at most its length).
	InState int64
	// Stack is the latest stack the trace recorded for the goroutine, top
	// first: where it waits, or where it last blocked, yielded, entered a
	// system call, woke or created a goroutine. Shared: read-only.
	Stack []Frame
	// CreatedBy is the go statement that created the goroutine and ParentID
	// the goroutine that ran it, when the creation is in the window.
	CreatedBy Frame
	ParentID  int64
	// StartFunc is the function the goroutine started in, when known.
	StartFunc string

	Total   int64 // time the goroutine existed within the window
	Busy    int64 // running
	Sched   int64 // runnable: ready but not running
	Idle    int64 // waiting, for any reason
	Syscall int64 // in a system call
	// IdleByReason splits Idle by wait reason, longest first.
	IdleByReason []ReasonTime

	Polls      int64 // times it was scheduled (runnable -> running)
	LongestRun int64 // longest uninterrupted stretch of running
	// LongestStretch is the longest time on CPU between two waits: runs
	// split only by preemption add up, so a loop that never blocks shows
	// whole however often the scheduler preempts it (every 10ms).
	LongestStretch int64
	// StretchStack is where the longest stretch was last preempted: the
	// code that computed for so long (nil when no preemption cut it).
	StretchStack []Frame
	// RunTimes are the durations of its runs and SchedDelays those of its
	// runnable stretches (the time from ready to running); an interval cut
	// by the window's start or end counts clipped. Nil when there were none.
	RunTimes, SchedDelays *Hist
}

// ReasonTime is the time spent waiting for one reason.
type ReasonTime struct {
	Reason string
	NS     int64
}

// Location is the top frame in user code of the goroutine's stack (see
// Goroutine.Location).
func (g *GoStats) Location() Frame {
	return (&Goroutine{Frames: g.Stack, CreatedBy: g.CreatedBy}).Location()
}

// IdleFor returns the idle time spent waiting for reason.
func (g *GoStats) IdleFor(reason string) int64 {
	for _, r := range g.IdleByReason {
		if r.Reason == reason {
			return r.NS
		}
	}
	return 0
}

// TaskStats converts g's numbers to the wire form.
func (g *GoStats) TaskStats() api.TaskStats {
	ts := g.taskStatsNoIdle()
	if len(g.IdleByReason) > 0 {
		ts.IdleByReason = make(map[string]int64, len(g.IdleByReason))
		for _, r := range g.IdleByReason {
			ts.IdleByReason[r.Reason] += r.NS
		}
	}
	return ts
}

// taskStatsNoIdle is TaskStats without IdleByReason.
func (g *GoStats) taskStatsNoIdle() api.TaskStats {
	return api.TaskStats{
		TotalNS:          g.Total,
		BusyNS:           g.Busy,
		SchedNS:          g.Sched,
		IdleNS:           g.Idle,
		SyscallNS:        g.Syscall,
		Polls:            g.Polls,
		LongestRunNS:     g.LongestRun,
		LongestStretchNS: g.LongestStretch,
		InStateNS:        g.InState,
	}
}

// SiteStats is a place where goroutines wait: a wait reason at a blocking
// call site.
type SiteStats struct {
	Reason string
	// Location is the blocking call site: the top frame in user code of the
	// waiting stack (see Goroutine.Location), or for a runtime goroutine its
	// own function; zero when the trace recorded no stack.
	Location Frame
	Waiting  int   // goroutines waiting there at the end of the window
	WaitNS   int64 // total wait there within the window
	Wakeups  int64 // goroutines woken from there
	// Waker is the stack that most often woke goroutines from this site (the
	// stack of the goroutine that made them runnable); nil when they were
	// woken by the runtime only (timers, the network poller).
	Waker []Frame
	// Wakers are where in user code the goroutines that woke them were,
	// with how often, most often first (at most 8): the unlocks of a lock,
	// the sends of a channel.
	Wakers []WakerSite
	// Tasks are the IDs of the goroutines waiting there at the end of the
	// window, ascending, at most maxSiteTasks.
	Tasks []int64
}

// WakerSite is a place in user code that woke goroutines from a site.
type WakerSite struct {
	Location Frame
	Count    int64
}

// maxSiteTasks caps SiteStats.Tasks.
const maxSiteTasks = 100

// Site converts s to the wire form.
func (s *SiteStats) Site() api.Site {
	return api.Site{
		Reason:   s.Reason,
		Location: traceAPIFrame(s.Location),
		Waiting:  s.Waiting,
		WaitNS:   s.WaitNS,
		Wakeups:  s.Wakeups,
		Tasks:    s.Tasks,
		Waker:    traceAPIFrames(s.Waker),
		Wakers:   wakerSites(s.Wakers),
	}
}

func wakerSites(ws []WakerSite) []api.WakerSite {
	if len(ws) == 0 {
		return nil
	}
	out := make([]api.WakerSite, len(ws))
	for i, w := range ws {
		out[i] = api.WakerSite{Location: traceAPIFrame(w.Location), Count: w.Count}
	}
	return out
}

func traceAPIFrame(f Frame) api.Frame {
	return api.Frame{Function: f.Func, File: f.File, Line: f.Line}
}

func traceAPIFrames(fs []Frame) []api.Frame {
	if len(fs) == 0 {
		return nil
	}
	out := make([]api.Frame, len(fs))
	for i, f := range fs {
		out[i] = traceAPIFrame(f)
	}
	return out
}

// ErrTraceTruncated is wrapped by AnalyzeTrace's error when the trace ended
// in the middle of a generation or could not be read on.
var ErrTraceTruncated = errors.New("execution trace truncated or corrupt")

// errAnalysis is wrapped by AnalyzeTrace's error when the analysis itself
// failed on an event the parser accepted: a bug of ours (the fuzz test looks
// for it).
var errAnalysis = errors.New("internal error analysing the trace")

// AnalyzeTrace reads a whole execution trace and analyses it as one window.
// On a cut or corrupt trace it returns the window of the events read before
// the problem (Truncated set) and an error wrapping ErrTraceTruncated; it
// never panics. When MaxEvents stops it, it returns the partial window and
// no error. The window is never nil.
//
// With opts.Parallel, no MaxEvents, GOMAXPROCS above 1 and a trace that
// may be larger than a megabyte, it parses on a second goroutine while it
// analyses on the calling one: on an idle second core the analysis then
// runs at about 0.85x the speed of the bare parse instead of 0.75x, for
// some 10% more CPU time. Either way it returns only once it has stopped
// reading r.
func AnalyzeTrace(r io.Reader, opts WindowOptions) (w *Window, err error) {
	b := NewWindowBuilder(opts)
	inEvent := false
	defer func() {
		// The parser panics on some corrupt input. Keep what was analysed.
		if p := recover(); p != nil {
			b.truncated = true
			w = b.safeFinalize()
			if inEvent {
				err = fmt.Errorf("event %d: %w: %v", b.events, errAnalysis, p)
			} else {
				err = fmt.Errorf("reading trace after %d events: %w: %v", b.events, ErrTraceTruncated, p)
			}
		}
	}()
	pipelined := opts.Parallel && opts.MaxEvents <= 0 && runtime.GOMAXPROCS(0) > 1 && !small(r)
	tr, err := trace.NewReader(newGenSkipper(r, opts.Since))
	if err != nil {
		b.truncated = true
		return b.Finalize(), fmt.Errorf("reading trace header: %w: %w", ErrTraceTruncated, err)
	}
	var rerr error
	if pipelined {
		rerr = b.readPipelined(tr, &inEvent)
	} else {
		rerr = b.readSequential(tr, &inEvent)
	}
	switch {
	case rerr == nil: // MaxEvents or For
		b.truncated = b.truncated || !b.more
		return b.Finalize(), nil
	case rerr != io.EOF:
		b.truncated = true
		return b.Finalize(), fmt.Errorf("reading trace after %d events: %w: %w", b.events, ErrTraceTruncated, rerr)
	case b.syncs < 2:
		// Every generation opens with a sync and the trace closes with one:
		// this one holds no generation.
		b.truncated = true
		return b.Finalize(), fmt.Errorf("reading trace: %w: no generation after the header", ErrTraceTruncated)
	}
	return b.Finalize(), nil
}

// small reports whether r is known to hold less than a megabyte (a
// bytes.Reader, a bytes.Buffer, a strings.Reader): not worth a second
// goroutine.
func small(r io.Reader) bool {
	l, ok := r.(interface{ Len() int })
	return ok && l.Len() < 1<<20
}

// readSequential feeds b the events of tr until the reader fails (io.EOF at
// the end) or MaxEvents or For is reached (nil).
func (b *WindowBuilder) readSequential(tr *trace.Reader, inEvent *bool) error {
	for (b.opts.MaxEvents <= 0 || b.events < b.opts.MaxEvents) && !b.more {
		ev, err := tr.ReadEvent()
		if err != nil {
			return err
		}
		*inEvent = true
		b.Event(&ev)
		*inEvent = false
	}
	return nil
}

// eventBatch carries events from the parsing goroutine to the analysing one;
// err is the reader's error after the last event (io.EOF at the end).
type eventBatch struct {
	evs    []trace.Event
	sts    []trace.StateTransition // evs[i]'s, for state transitions, with withST
	withST bool
	err    error
}

const (
	pipeBatch   = 512 // events per batch: ~50 KB, amortises the hand-offs
	pipeBatches = 4   // batches in flight
)

// readPipelined is readSequential with the parsing on a second goroutine,
// handing batches of events over; it returns after that goroutine ended.
func (b *WindowBuilder) readPipelined(tr *trace.Reader, inEvent *bool) error {
	full := make(chan *eventBatch, pipeBatches)
	free := make(chan *eventBatch, pipeBatches)
	for range pipeBatches {
		free <- &eventBatch{evs: make([]trace.Event, 0, pipeBatch), sts: make([]trace.StateTransition, pipeBatch)}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var bt *eventBatch
		defer func() {
			// The parser panics on some corrupt input: hand it over as an error.
			if p := recover(); p != nil {
				bt.err = fmt.Errorf("parser panic: %v", p)
				select {
				case full <- bt:
				case <-stop:
				}
			}
		}()
		for {
			// No batch free: the analysis is behind, so take the state
			// transitions out of this batch's events here.
			behind := len(free) == 0
			select {
			case bt = <-free:
			case <-stop:
				return
			}
			bt.evs = bt.evs[:0]
			bt.withST = behind
			for len(bt.evs) < pipeBatch {
				ev, err := tr.ReadEvent()
				if err != nil {
					bt.err = err
					break
				}
				if behind && ev.Kind() == trace.EventStateTransition {
					bt.sts[len(bt.evs)] = ev.StateTransition()
				}
				bt.evs = append(bt.evs, ev)
			}
			select {
			case full <- bt:
			case <-stop:
				return
			}
			if bt.err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done // never return (or panic) while r is still being read
	}()
	for bt := range full {
		*inEvent = true
		for i := range bt.evs {
			var st *trace.StateTransition
			if bt.withST && bt.evs[i].Kind() == trace.EventStateTransition {
				st = &bt.sts[i]
			}
			b.event(&bt.evs[i], st)
		}
		*inEvent = false
		if b.more {
			return nil
		}
		if bt.err != nil {
			return bt.err
		}
		free <- bt
	}
	return io.ErrUnexpectedEOF // not reached: the reader always ends with an error
}

// safeFinalize finalizes after a panic; a second panic gives an empty window.
func (b *WindowBuilder) safeFinalize() (w *Window) {
	defer func() {
		if recover() != nil {
			w = &Window{Start: int64(b.start), End: int64(b.end), Goroutines: map[int64]*GoStats{}, Events: b.events, Truncated: true}
		}
	}()
	return b.Finalize()
}

// WindowBuilder analyses a trace window event by event, in the shape of
// cmd/trace's accumulators: feed it every event of a trace.Reader in order
// with Event, then call Finalize. The window spans from the first event fed
// (or WindowOptions.Since) to the last; a cut input gives the window of the
// events fed, as if the trace ended there.
//
//	r, _ := trace.NewReader(f)
//	b := probes.NewWindowBuilder(probes.WindowOptions{Sites: true})
//	for {
//		ev, err := r.ReadEvent()
//		if err != nil {
//			break
//		}
//		b.Event(&ev)
//	}
//	w := b.Finalize()
type WindowBuilder struct {
	opts       WindowOptions
	started    bool
	start, end trace.Time
	events     int64
	syncs      int
	truncated  bool
	result     *Window
	// winStart is the window start when WindowOptions.Since applies: no
	// time before it is accounted.
	winStart    trace.Time
	sinceSet    bool
	sincePassed bool // a generation began after Since: winStart stays
	more        bool // an event came after WindowOptions.For: the window ended there
	// The first clock snapshot: trace time clockTrace was clockWall.
	clockSet   bool
	clockTrace trace.Time
	clockWall  time.Time

	gs        goTable
	all       []*goState // in order of first appearance
	slab      []goState
	wholeSlab []wholeGo // not live: goroutines with their numbers
	// goActivity to hand out: a slab, and those a live builder is done
	// with.
	actSlab   []goActivity
	spareActs []*goActivity

	reasons   []string         // normalized wait reasons, by index
	reasonIdx map[string]int32 // and their indexes
	raw       []rawReason      // the trace's reason strings seen, with their normal form

	stacks  map[trace.Stack]int32 // a generation's stack -> index in infos
	infos   []stackInfo
	content map[string]int32 // a stack's PCs -> index in frames: the same stack across generations
	frames  [][]Frame
	strs    map[string]string // interned function and file names
	pcKey   []byte            // scratch

	lastStk trace.Stack // frameIndex's last look-up
	lastIdx int32

	sites   []*siteAcc
	siteIdx map[siteKey]int32

	// live, when set, keeps the builder going over an endless stream:
	// instead of one window it keeps what each generation added (see
	// live.go).
	live *liveState
}

// goTable finds a goroutine's state by ID. The runtime hands out IDs
// counting up from 1 (in batches per P), so the IDs of one window cluster:
// pages of goTablePage entries, found through a directory indexed by
// ID/goTablePage, cost one or two loads; IDs past the directory's reach
// (billions of goroutines created) go to a map.
type goTable struct {
	dir    []*[goTablePage]*goState
	sparse map[trace.GoID]*goState
}

const (
	goTablePage = 64
	goTableDir  = 1 << 20 // pages: IDs below 2^26 are paged; the directory tops out at 8 MB
)

func (t *goTable) get(id trace.GoID) *goState {
	if p := uint64(id) / goTablePage; p < uint64(len(t.dir)) {
		if page := t.dir[p]; page != nil {
			return page[uint64(id)%goTablePage]
		}
		return nil
	}
	if t.sparse == nil {
		return nil
	}
	return t.sparse[id]
}

// inOrder appends every goroutine of the table to out, by ID.
func (t *goTable) inOrder(out []*goState) []*goState {
	for _, page := range t.dir {
		if page == nil {
			continue
		}
		for _, g := range page {
			if g != nil {
				out = append(out, g)
			}
		}
	}
	if len(t.sparse) > 0 {
		n := len(out)
		for _, g := range t.sparse {
			out = append(out, g)
		}
		slices.SortFunc(out[n:], func(x, y *goState) int { return cmp.Compare(x.id, y.id) })
	}
	return out
}

// del forgets id, if it is still g.
func (t *goTable) del(id trace.GoID, g *goState) {
	if p := uint64(id) / goTablePage; p < uint64(len(t.dir)) {
		if page := t.dir[p]; page != nil && page[uint64(id)%goTablePage] == g {
			page[uint64(id)%goTablePage] = nil
		}
		return
	}
	if t.sparse[id] == g {
		delete(t.sparse, id)
	}
}

func (t *goTable) put(id trace.GoID, g *goState) {
	p := uint64(id) / goTablePage
	if p >= goTableDir {
		if t.sparse == nil {
			t.sparse = make(map[trace.GoID]*goState)
		}
		t.sparse[id] = g
		return
	}
	if p >= uint64(len(t.dir)) {
		n := max(2*len(t.dir), int(p)+1, 64)
		t.dir = append(t.dir, make([]*[goTablePage]*goState, min(n, goTableDir)-len(t.dir))...)
	}
	if t.dir[p] == nil {
		t.dir[p] = new([goTablePage]*goState)
	}
	t.dir[p][uint64(id)%goTablePage] = g
}

// goState is what the builder knows of one goroutine. The fields every
// transition touches come first. Its numbers are apart (goActivity): a live
// builder keeps them only for the goroutines that change in a generation,
// and a million goroutines that wait cost 128 bytes each.
type goState struct {
	state    trace.GoState
	exited   bool
	inferred bool       // the current wait's reason was inferred
	reason   int32      // current wait reason (index in reasons) while waiting
	site     int32      // current site (index in sites) while waiting; -1 for none
	since    trace.Time // when it entered state
	act      *goActivity

	stretch   int64  // on-CPU time since the last wait
	preemptFn string // the top function of the last preemption in the current stretch

	id      trace.GoID
	parent  trace.GoID
	created trace.Time  // its first moment in the trace
	ended   trace.Time  // when it exited
	stack   trace.Stack // latest own stack

	// Live mode only (see live.go).
	gen uint32 // the last generation it changed in
	acc int32  // its index in the window being composed; -1 for none, accQuiet for quiet
	// The stacks once their generation is over (stack, and goActivity's
	// first, start and creator): an index+1 in frames, 0 for none (a
	// trace.Stack keeps its generation's tables).
	stackF, firstF, startF, creatorF int32
}

// goActivity is a goroutine's numbers in the window or, in a live builder,
// in the current generation, with what is known of it only while the
// generation lasts.
type goActivity struct {
	busy, sched, idle, syscall int64
	polls, longest             int64
	longestStretch             int64       // the longest stretch (goState.stretch)
	stretchStack               trace.Stack // where the longest stretch was last preempted (see preempted)
	stretchOwn                 bool        // stretchStack is the current stretch's
	runs, delays               *Hist
	idles                      idleSet     // idle time by reason
	blocks                     *blockCache // the last places it blocked at
	carry                      carried     // the interval it was in when the generation began, if it closed in it (live)

	first   trace.Stack // first own stack seen (its root frame names the start function)
	start   trace.Stack // start stack from its creation
	creator trace.Stack // creator's stack at creation
}

// wholeGo is how a builder that is not live allocates a goroutine: its
// numbers last the window, so they sit beside its state.
type wholeGo struct {
	g goState
	a goActivity
}

// act returns g's goActivity, made on first use.
func (b *WindowBuilder) act(g *goState) *goActivity {
	if g.act != nil {
		return g.act
	}
	if n := len(b.spareActs); n > 0 {
		g.act = b.spareActs[n-1]
		b.spareActs = b.spareActs[:n-1]
		return g.act
	}
	if len(b.actSlab) == 0 {
		b.actSlab = make([]goActivity, 256)
	}
	g.act = &b.actSlab[0]
	b.actSlab = b.actSlab[1:]
	return g.act
}

// blockCache remembers the last two places a goroutine blocked at, with the
// reason and site they gave: goroutines block at the same few places over
// and over (a ping-pong partner alternates two), and comparing stacks is
// cheaper than looking them up.
type blockCache struct {
	e    [2]blockEntry
	next uint8
}

type blockEntry struct {
	stk          trace.Stack
	raw          string
	reason, site int32
}

type reasonNS struct {
	reason int32
	ns     int64
}

// rawReason is a reason string of the trace and its dump form: reason >= 0
// when the trace's reason is enough, -1 when the stack must tell it apart.
type rawReason struct {
	s      string
	reason int32
}

// stackInfo is one generation's stack: its frames and the wait reason and
// site last found for it.
type stackInfo struct {
	frames int32 // index in frames
	raw    string
	rawOK  bool // raw, reason and site are set
	reason int32
	site   int32
}

type siteKey struct {
	reason int32
	loc    Frame
}

// siteAcc accumulates one blocking site.
type siteAcc struct {
	reason    int32
	loc       Frame
	waitNS    int64
	wakeups   int64
	wakers    []wakerCount
	lastWaker trace.Stack // the last waker stack seen and its frames index
	lastIdx   int32
}

type wakerCount struct {
	frames int32
	n      int64
}

// maxWakers bounds the distinct waker stacks counted per site; past it a
// new stack replaces the least counted one (the most frequent survive).
const maxWakers = 8

// NewWindowBuilder returns an empty builder.
func NewWindowBuilder(opts WindowOptions) *WindowBuilder {
	return &WindowBuilder{
		opts:      opts,
		reasonIdx: make(map[string]int32),
		stacks:    make(map[trace.Stack]int32),
		content:   make(map[string]int32),
		strs:      make(map[string]string),
		siteIdx:   make(map[siteKey]int32),
	}
}

// Event analyses the next event of the trace. Events after Finalize, or
// past WindowOptions.MaxEvents, are ignored (the latter mark the window
// Truncated).
func (b *WindowBuilder) Event(ev *trace.Event) {
	b.event(ev, nil)
}

// event is Event with, for a state transition, the transition already
// taken out of the event (st; nil to take it here): the parsing goroutine
// of readPipelined does it, ev.StateTransition() being as costly as a
// good part of the parse.
func (b *WindowBuilder) event(ev *trace.Event, st *trace.StateTransition) {
	if b.result != nil || b.more {
		return
	}
	if b.opts.MaxEvents > 0 && b.events >= b.opts.MaxEvents {
		b.truncated = true
		return
	}
	t := ev.Time()
	if b.opts.For > 0 && b.started {
		start := b.start
		if b.sinceSet {
			start = max(start, b.winStart)
		}
		if lim := start + trace.Time(b.opts.For); t > lim {
			b.more, b.end = true, max(b.end, lim)
			return
		}
	}
	b.events++
	if !b.started {
		b.started = true
		b.start = t
	}
	if t > b.end {
		b.end = t
	}
	switch ev.Kind() {
	case trace.EventStateTransition:
	case trace.EventSync:
		b.syncs++
		if b.live != nil {
			b.liveSync(ev, t)
			return
		}
		if !b.clockSet {
			// Once per generation until one has it: it allocates.
			if cs := ev.Sync().ClockSnapshot; cs != nil {
				b.clockSet, b.clockTrace, b.clockWall = true, cs.Trace, cs.Wall
			}
		}
		if !b.sincePassed && !b.opts.Since.IsZero() {
			// Place Since by the clock snapshot of the last generation that
			// began at or before it (the closest, and the first one read when
			// AnalyzeTrace leaves out the generations before it), else of the
			// first. Once per generation, and it allocates: only until a
			// generation begins after Since.
			if cs := ev.Sync().ClockSnapshot; cs != nil {
				if !b.sinceSet || !cs.Wall.After(b.opts.Since) {
					b.winStart = cs.Trace + trace.Time(b.opts.Since.Sub(cs.Wall))
					b.sinceSet = true
				}
				b.sincePassed = cs.Wall.After(b.opts.Since)
			}
		}
		return
	default:
		return
	}
	if st == nil {
		s := ev.StateTransition()
		st = &s
	}
	if st.Resource.Kind != trace.ResourceGoroutine {
		return
	}
	b.transition(ev, st, t)
}

// transition handles a goroutine state transition. It is most of the
// analysis' cost: the common case, a known goroutine going from one state
// to another, stays on a short path.
func (b *WindowBuilder) transition(ev *trace.Event, st *trace.StateTransition, t trace.Time) {
	id := st.Resource.Goroutine()
	from, to := st.Goroutine()
	g := b.gs.get(id)
	if from == to {
		// A status event of a goroutine already known (a new generation
		// started): nothing changes but we learn its stack.
		if g != nil && st.Stack != trace.NoStack && (to != trace.GoRunnable || preemptedIn(st.Stack) != "") {
			g.stack = st.Stack
		}
		return
	}
	since := t
	// Seen first in a status event (it existed before the stream): in a
	// live builder, it did nothing in this generation, and a million
	// goroutines that wait get neither a record nor a goActivity.
	status := false
	if g == nil || g.exited || from == trace.GoUndetermined || from == trace.GoNotExist {
		var ok bool
		if g, since, ok = b.appear(ev, st, g, id, from, t); !ok {
			return
		}
		status = from == trace.GoUndetermined && b.live != nil
	} else {
		if g.state != from {
			g.state = from // should not happen with a valid trace: trust the event
		}
		if t >= b.winStart {
			b.close(g, t, to)
			if from == trace.GoWaiting && g.site >= 0 {
				b.wakeup(g, ev)
			}
		}
	}
	if b.live != nil && !status {
		b.touch(g)
	}
	g.state = to
	g.since = since
	stk, fn := st.Stack, ""
	if stk != trace.NoStack && (to == trace.GoRunnable || st.Reason == "preempted") {
		// Preempted (runnable, or waiting for the GC to scan it), or found
		// runnable (preempted before the trace).
		if fn = preemptedIn(stk); fn == "" {
			stk = trace.NoStack // says nothing: the goroutine keeps the stack it had
		}
	}
	if to == trace.GoWaiting || to == trace.GoSyscall || (to == trace.GoRunnable && from == trace.GoRunning && st.Reason != "preempted") {
		// A wait or a yield ends the stretch; a preemption does not.
		g.stretch, g.preemptFn = 0, ""
		if g.act != nil {
			g.act.stretchOwn = false
		}
	} else if to == trace.GoRunnable && from == trace.GoRunning && stk != trace.NoStack {
		b.preempted(g, stk, fn)
	}
	if stk != trace.NoStack {
		g.stack = stk
		if status {
			g.firstF = b.frameRef(stk)
		} else if a := b.act(g); a.first == trace.NoStack && g.firstF == 0 {
			a.first = stk
		}
	}
	switch to {
	case trace.GoRunning:
		if from == trace.GoRunnable && t >= b.winStart {
			b.act(g).polls++
		}
	case trace.GoWaiting:
		b.block(g, st.Reason, stk)
	case trace.GoNotExist:
		g.exited = true
		g.ended = t
	}
	if from == trace.GoWaiting || from == trace.GoNotExist {
		// A wake-up or a creation: the goroutine that made it was running
		// there, and its stack is its latest.
		if w := ev.Goroutine(); w != trace.NoGoroutine && w != id {
			if s := ev.Stack(); s != trace.NoStack {
				if wg := b.gs.get(w); wg != nil {
					wg.stack = s
				}
			}
		}
	}
}

// preempted notes where g was preempted (in function fn), for the stack of
// its longest stretch: where the stretch last computed, as told by two
// preemptions in a row in the same function. A single preemption elsewhere
// at the end (a loop preempted on its way back to a select, after the
// computation) does not move it.
func (b *WindowBuilder) preempted(g *goState, stk trace.Stack, fn string) {
	if a := b.act(g); g.stretch == a.longestStretch && g.stretch > 0 && (!a.stretchOwn || fn == g.preemptFn) {
		a.stretchStack, a.stretchOwn = stk, true
	}
	g.preemptFn = fn
}

// preemptedIn returns the function at the top of a preempted goroutine's
// stack below the runtime's asynchronous preemption; "" when the stack has
// nothing else, or nothing but the standard library. The runtime unwinds by
// frame pointers, and a loop in a goroutine's own function that has no
// frame (a leaf) leaves none to follow: such a stack does not say where the
// goroutine runs. It may keep the function inlined at the preempted
// instruction (sync/atomic.(*Bool).Load in the loop's condition) and stop
// there, short of any of the program's own.
func preemptedIn(stk trace.Stack) string {
	top := ""
	for f := range stk.Frames() {
		if f.Func == "runtime.asyncPreempt2" || f.Func == "runtime.asyncPreempt" {
			continue
		}
		if top == "" {
			top = f.Func
		}
		if !isStdFunc(f.Func) {
			return top
		}
	}
	return ""
}

// appear handles a goroutine's first transition: its creation, or its first
// status event if it existed before the trace. It returns the goroutine's
// state, since when it has been in its new state, and false to ignore the
// event.
func (b *WindowBuilder) appear(ev *trace.Event, st *trace.StateTransition, g *goState, id trace.GoID, from trace.GoState, t trace.Time) (*goState, trace.Time, bool) {
	switch from {
	case trace.GoNotExist:
		if g == nil || g.exited {
			g = b.newGoroutine(id)
		}
		g.created = t
		a := b.act(g)
		a.start = st.Stack
		a.creator = ev.Stack()
		g.parent = ev.Goroutine()
		return g, t, true
	case trace.GoUndetermined:
		if g == nil || g.exited {
			g = b.newGoroutine(id)
		}
		// It existed before the trace: it has been in its state since the
		// start, as Go's summary counts it.
		g.created = b.start
		return g, b.start, true
	}
	if g != nil {
		return g, t, false // an exited goroutine does nothing: corrupt input
	}
	// Not seen before yet not new: should not happen in a valid trace. Take
	// it as in its old state since the start.
	g = b.newGoroutine(id)
	g.created, g.since, g.state = b.start, b.start, from
	if t >= b.winStart {
		b.close(g, t, trace.GoUndetermined)
	}
	return g, t, true
}

func (b *WindowBuilder) newGoroutine(id trace.GoID) *goState {
	var g *goState
	if b.live == nil {
		if len(b.wholeSlab) == 0 {
			b.wholeSlab = make([]wholeGo, 256)
		}
		w := &b.wholeSlab[0]
		b.wholeSlab = b.wholeSlab[1:]
		g = &w.g
		g.act = &w.a
	} else {
		if len(b.slab) == 0 {
			b.slab = make([]goState, 256)
		}
		g = &b.slab[0]
		b.slab = b.slab[1:]
	}
	g.id = id
	g.site = -1
	g.parent = trace.NoGoroutine
	b.gs.put(id, g)
	b.all = append(b.all, g)
	return g
}

// close accounts g's time in its current state up to t (not before the
// window start); to is the state it goes to (trace.GoUndetermined at the
// end of the window).
func (b *WindowBuilder) close(g *goState, t trace.Time, to trace.GoState) {
	if b.live != nil && g.since < b.live.genStart {
		b.carryOver(g, t, to)
		return
	}
	d := int64(t - max(g.since, b.winStart))
	if d < 0 {
		d = 0
	}
	a := b.act(g)
	switch g.state {
	case trace.GoRunning:
		a.busy += d
		a.longest = max(a.longest, d)
		g.stretch += d
		a.longestStretch = max(a.longestStretch, g.stretch)
		if a.runs == nil {
			a.runs = new(Hist)
		}
		a.runs.Add(d)
	case trace.GoRunnable:
		a.sched += d
		if to == trace.GoRunning || to == trace.GoUndetermined {
			if a.delays == nil {
				a.delays = new(Hist)
			}
			a.delays.Add(d)
		}
	case trace.GoWaiting:
		a.idle += d
		a.idles.add(g.reason, d)
		if g.site >= 0 {
			b.sites[g.site].waitNS += d
		}
	case trace.GoSyscall:
		a.syscall += d
	}
}

// wakeup counts g's wake-up at its site, and who woke it.
func (b *WindowBuilder) wakeup(g *goState, ev *trace.Event) {
	s := b.sites[g.site]
	s.wakeups++
	ws := ev.Stack()
	if ws == trace.NoStack {
		return
	}
	if ws != s.lastWaker {
		s.lastWaker, s.lastIdx = ws, b.infos[b.stackInfo(ws)].frames
	}
	s.addWaker(s.lastIdx)
}

// block sets g's wait reason and site as it starts waiting.
func (b *WindowBuilder) block(g *goState, raw string, stk trace.Stack) {
	g.inferred = raw == ""
	if g.act != nil && g.act.blocks != nil && stk != trace.NoStack {
		c := g.act.blocks
		for i := range c.e {
			if e := &c.e[i]; e.stk == stk && e.raw == raw {
				g.reason, g.site = e.reason, e.site
				return
			}
		}
	}
	g.reason, g.site = b.waitReason(raw, stk)
	if stk == trace.NoStack || g.inferred {
		return // status events: once per goroutine, not worth a cache
	}
	a := b.act(g)
	if a.blocks == nil {
		a.blocks = new(blockCache)
	}
	c := a.blocks
	c.e[c.next] = blockEntry{stk: stk, raw: raw, reason: g.reason, site: g.site}
	c.next ^= 1
}

// idleSet is idle time by reason: the first reason inline, the others in
// more (most goroutines wait for one reason).
type idleSet struct {
	first reasonNS
	more  []reasonNS
}

func (s *idleSet) add(reason int32, d int64) {
	if s.first.reason == reason || s.first.ns == 0 && len(s.more) == 0 {
		s.first.reason = reason
		s.first.ns += d
		return
	}
	for i := range s.more {
		if s.more[i].reason == reason {
			s.more[i].ns += d
			return
		}
	}
	s.more = append(s.more, reasonNS{reason, d})
}

func (s *siteAcc) addWaker(frames int32) {
	least := 0
	for i := range s.wakers {
		if s.wakers[i].frames == frames {
			s.wakers[i].n++
			return
		}
		if s.wakers[i].n < s.wakers[least].n {
			least = i
		}
	}
	if len(s.wakers) < maxWakers {
		s.wakers = append(s.wakers, wakerCount{frames, 1})
		return
	}
	// Space-saving: the newcomer inherits the least count.
	s.wakers[least].frames = frames
	s.wakers[least].n++
}

// waitReason returns the dump form of a wait's reason (an index in
// b.reasons) and its site (-1 without Sites).
func (b *WindowBuilder) waitReason(raw string, stk trace.Stack) (reason, site int32) {
	rr := b.rawReason(raw)
	if rr.reason >= 0 && !b.opts.Sites {
		return rr.reason, -1
	}
	if stk == trace.NoStack {
		reason = rr.reason
		if reason < 0 {
			reason = b.intern(reasonFromStack(raw, nil))
		}
		site = -1
		if b.opts.Sites {
			site = b.site(reason, nil) // a site of unknown location
		}
		return reason, site
	}
	si := &b.infos[b.stackInfo(stk)]
	if si.rawOK && si.raw == raw {
		return si.reason, si.site
	}
	frames := b.frames[si.frames]
	reason = rr.reason
	if reason < 0 {
		reason = b.intern(reasonFromStack(raw, frames))
	}
	site = -1
	if b.opts.Sites {
		site = b.site(reason, frames)
	}
	si = &b.infos[b.stackInfo(stk)] // b.infos may have grown
	si.raw, si.rawOK, si.reason, si.site = raw, true, reason, site
	return reason, site
}

// rawReason looks up a reason string of the trace. There are a dozen; a
// generation's copies of a string share their bytes, so once one is seen
// the comparisons are mostly pointer checks.
func (b *WindowBuilder) rawReason(raw string) rawReason {
	for i := range b.raw {
		if r := &b.raw[i]; r.s == raw {
			r.s = raw // this generation's copy: pointer-equal from now on
			return *r
		}
	}
	r := rawReason{s: raw, reason: -1}
	if dump, ok := traceReasons[raw]; ok && dump != "" {
		r.reason = b.intern(dump)
	}
	b.raw = append(b.raw, r)
	return r
}

// traceReasons maps the runtime's trace block reasons (traceBlockReasonStrings
// in runtime/traceruntime.go) to its goroutine dump wait reasons
// (waitReasonStrings in runtime/runtime2.go). "" means the trace's reason
// covers several dump reasons: the stack tells which.
var traceReasons = map[string]string{
	"chan receive":                 "chan receive",
	"chan send":                    "chan send",
	"select":                       "select",
	"sleep":                        "sleep",
	"network":                      "IO wait",
	"sync.(*Cond).Wait":            "sync.Cond.Wait",
	"GC mark assist wait for work": "GC assist wait",
	"GC background sweeper wait":   "GC sweep wait",
	"preempted":                    "preempted",
	"wait for debug call":          "debug call",
	"wait until GC ends":           "wait for GC cycle",
	"GC weak to strong wait":       "GC weak to strong wait",
	"sync":                         "", // sync.Mutex.Lock, sync.RWMutex.RLock, sync.WaitGroup.Wait, semacquire
	"forever":                      "", // select (no cases), chan receive (nil chan), chan send (nil chan), panicwait
	"system goroutine wait":        "", // GC worker (idle), finalizer wait, force gc (idle), ...
	"synctest":                     "", // synctest.Run, synctest.Wait
	"unspecified":                  "",
	"":                             "", // a status event: the wait began before the trace
}

// waitFuncs tell a wait reason from a function of the blocking stack,
// looked for from the top. The runtime's own dump reasons for the same waits.
var waitFuncs = map[string]string{
	"sync.(*Mutex).Lock":             "sync.Mutex.Lock",
	"sync.(*RWMutex).RLock":          "sync.RWMutex.RLock",
	"sync.(*RWMutex).Lock":           "sync.RWMutex.Lock",
	"sync.(*WaitGroup).Wait":         "sync.WaitGroup.Wait",
	"sync.(*Cond).Wait":              "sync.Cond.Wait",
	"sync.runtime_notifyListWait":    "sync.Cond.Wait",
	"runtime.block":                  "select (no cases)",
	"runtime.selectgo":               "select",
	"runtime.chanrecv":               "chan receive",
	"runtime.chanrecv1":              "chan receive",
	"runtime.chanrecv2":              "chan receive",
	"runtime.chansend":               "chan send",
	"runtime.chansend1":              "chan send",
	"time.Sleep":                     "sleep",
	"runtime.netpollblock":           "IO wait",
	"internal/poll.runtime_pollWait": "IO wait",
	"runtime.gcBgMarkWorker":         "GC worker (idle)",
	"runtime.bgsweep":                "GC sweep wait",
	"runtime.bgscavenge":             "GC scavenge wait",
	"runtime.runfinq":                "finalizer wait",
	"runtime.runFinalizers":          "finalizer wait",
	"runtime.runCleanups":            "cleanup wait",
	"runtime/trace.(*traceMultiplexer).startLocked.func1": "trace reader (blocked)",
	"runtime.forcegchelper":                               "force gc (idle)",
	"runtime.(*cleanupQueue).dequeue":                     "cleanup wait",
	"runtime.updateMaxProcsGoroutine":                     "GOMAXPROCS updater (idle)",
	"runtime.ReadTrace":                                   "trace reader (blocked)",
	"runtime.readTrace0":                                  "trace reader (blocked)",
	"runtime.gcStart":                                     "wait for GC cycle",
	"runtime.gcWaitOnMark":                                "wait for GC cycle",
	"runtime.coroswitch":                                  "coroutine",
	"internal/synctest.Run":                               "synctest.Run",
	"internal/synctest.Wait":                              "synctest.Wait",
	"runtime.synctestRun":                                 "synctest.Run",
	"runtime.synctestWait":                                "synctest.Wait",
	"runtime.gopanic":                                     "panicwait",
	"runtime.semacquire":                                  "semacquire", // weak: only when nothing above names the wait
	"runtime.semacquire1":                                 "semacquire",
	"sync.runtime_Semacquire":                             "semacquire",
	"internal/sync.runtime_Semacquire":                    "semacquire",
	"sync.runtime_SemacquireWaitGroup":                    "sync.WaitGroup.Wait",
	"sync.runtime_SemacquireRWMutexR":                     "sync.RWMutex.RLock",
	"sync.runtime_SemacquireRWMutex":                      "sync.RWMutex.Lock",
	"internal/sync.runtime_SemacquireMutex":               "sync.Mutex.Lock",
	"sync.runtime_SemacquireMutex":                        "sync.Mutex.Lock",
}

// reasonFromStack tells the dump's wait reason from the blocking stack: the
// first function from the top that names a wait (a generic semaphore only
// when nothing else does), refined by the trace's reason.
func reasonFromStack(raw string, frames []Frame) string {
	reason := ""
	for i, f := range frames {
		if i == 32 {
			break
		}
		r, ok := waitFuncs[f.Func]
		if !ok {
			continue
		}
		if r == "semacquire" {
			if reason == "" {
				reason = r
			}
			continue
		}
		reason = r
		break
	}
	switch raw {
	case "forever":
		switch reason {
		case "chan receive", "chan send":
			return reason + " (nil chan)"
		case "":
			return "select (no cases)"
		}
	case "sync":
		if reason == "" {
			return "semacquire"
		}
	}
	if reason != "" {
		return reason
	}
	if raw != "" {
		return raw
	}
	return "unknown"
}

func (b *WindowBuilder) intern(reason string) int32 {
	if i, ok := b.reasonIdx[reason]; ok {
		return i
	}
	i := int32(len(b.reasons))
	reason = strings.Clone(reason)
	b.reasons = append(b.reasons, reason)
	b.reasonIdx[reason] = i
	return i
}

// stackInfo returns the index in b.infos of a generation's stack, converting
// its frames the first time the same stack is met in any generation.
func (b *WindowBuilder) stackInfo(stk trace.Stack) int32 {
	if i, ok := b.stacks[stk]; ok {
		return i
	}
	key := b.pcKey[:0]
	for f := range stk.Frames() {
		key = appendUint64(key, f.PC)
	}
	b.pcKey = key
	fi, ok := b.content[string(key)]
	if !ok {
		var frames []Frame
		for f := range stk.Frames() {
			frames = append(frames, Frame{Func: b.str(f.Func), File: b.str(f.File), Line: int(f.Line)})
		}
		fi = int32(len(b.frames))
		b.frames = append(b.frames, frames)
		b.content[string(key)] = fi
	}
	i := int32(len(b.infos))
	b.infos = append(b.infos, stackInfo{frames: fi})
	b.stacks[stk] = i
	return i
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func (b *WindowBuilder) str(s string) string {
	if v, ok := b.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	b.strs[s] = s
	return s
}

// framesOf returns the frames of a stack; nil for none.
func (b *WindowBuilder) framesOf(stk trace.Stack) []Frame {
	if stk == trace.NoStack {
		return nil
	}
	return b.frames[b.frameIndex(stk)]
}

// frameIndex returns the index in frames of a stack's frames.
func (b *WindowBuilder) frameIndex(stk trace.Stack) int32 {
	if stk != b.lastStk {
		// Goroutines that wait at the same place come one after another.
		b.lastStk, b.lastIdx = stk, b.infos[b.stackInfo(stk)].frames
	}
	return b.lastIdx
}

// siteLocation is where a stack waits: its top frame in user code, else,
// for a stack all in the standard library, the first frame that is not part
// of the runtime's blocking machinery (the runtime goroutine's own function).
func siteLocation(frames []Frame) Frame {
	loc := (&Goroutine{Frames: frames}).Location()
	if !blockFuncs[loc.Func] {
		return loc
	}
	for _, f := range frames {
		if !blockFuncs[f.Func] && !strings.HasPrefix(f.Func, "sync.runtime_") && !strings.HasPrefix(f.Func, "internal/sync.runtime_") {
			return f
		}
	}
	return loc
}

// blockFuncs are the runtime's functions through which goroutines block.
var blockFuncs = map[string]bool{
	"runtime.gopark": true, "runtime.goparkunlock": true,
	"runtime.chanrecv": true, "runtime.chanrecv1": true, "runtime.chanrecv2": true,
	"runtime.chansend": true, "runtime.chansend1": true,
	"runtime.selectgo": true, "runtime.block": true,
	"runtime.semacquire": true, "runtime.semacquire1": true, "runtime.notifyListWait": true,
	"runtime.netpollblock": true, "internal/poll.runtime_pollWait": true,
}

func (b *WindowBuilder) site(reason int32, frames []Frame) int32 {
	k := siteKey{reason: reason, loc: siteLocation(frames)}
	if i, ok := b.siteIdx[k]; ok {
		return i
	}
	i := int32(len(b.sites))
	b.sites = append(b.sites, &siteAcc{reason: reason, loc: k.loc})
	b.siteIdx[k] = i
	return i
}

// Finalize closes the intervals still open at the end of the window and
// returns the analysis. Later calls return the same Window.
func (b *WindowBuilder) Finalize() *Window {
	if b.result != nil {
		return b.result
	}
	start := b.start
	if b.sinceSet {
		b.winStart = min(max(b.winStart, b.start), b.end)
		start = b.winStart
	}
	w := &Window{
		Start:      int64(start),
		End:        int64(b.end),
		Goroutines: make(map[int64]*GoStats, len(b.all)),
		Events:     b.events,
		Truncated:  b.truncated,
		More:       b.more,
	}
	if b.clockSet {
		w.WallStart = b.clockWall.Add(time.Duration(start - b.clockTrace))
		w.WallEnd = b.clockWall.Add(time.Duration(b.end - b.clockTrace))
	}
	b.result = w
	stats := make([]GoStats, 0, len(b.all))
	nIdle := 0
	for _, g := range b.all {
		nIdle++
		if g.act != nil {
			nIdle += len(g.act.idles.more)
		}
	}
	idleBy := make([]ReasonTime, 0, nIdle) // one backing array for all IdleByReason
	sites := b.siteStats()
	for _, g := range b.all {
		if g.exited && g.ended < start {
			continue // gone before the window
		}
		stats = append(stats, GoStats{ID: int64(g.id)})
		gs := &stats[len(stats)-1]
		end := b.end
		if g.exited {
			end = g.ended
			gs.Exited, gs.Ended = true, int64(g.ended-start)
		} else {
			gs.InState = int64(b.end - max(g.since, start))
			b.close(g, b.end, trace.GoUndetermined)
			g.since = b.end
			b.endState(gs, g, sites)
		}
		gs.Total = int64(end - max(g.created, start))
		a := b.act(g)
		gs.Busy, gs.Sched, gs.Idle, gs.Syscall = a.busy, a.sched, a.idle, a.syscall
		gs.Polls, gs.LongestRun, gs.LongestStretch = a.polls, a.longest, a.longestStretch
		gs.RunTimes, gs.SchedDelays = a.runs, a.delays
		idleBy, gs.IdleByReason = b.idleByReason(idleBy, &a.idles)
		if a.stretchStack != trace.NoStack {
			gs.StretchStack = b.framesOf(a.stretchStack)
		}
		b.origin(gs, g)
		w.Goroutines[gs.ID] = gs
	}
	w.listByID(stats)
	if b.opts.Sites {
		wakers := make([][]wakerCount, len(sites))
		for i, acc := range b.sites {
			sites[i].WaitNS, sites[i].Wakeups = acc.waitNS, acc.wakeups
			wakers[i] = acc.wakers
		}
		w.Sites = b.finishSites(sites, wakers)
	}
	return w
}

// siteStats returns an empty SiteStats for each site, to fill for a
// window.
func (b *WindowBuilder) siteStats() []SiteStats {
	sites := make([]SiteStats, len(b.sites))
	for i, s := range b.sites {
		sites[i] = SiteStats{Reason: b.reasons[s.reason], Location: s.loc}
	}
	return sites
}

// endState sets what a goroutine alive at the end of a window is doing
// then, and counts it at its site if it waits.
func (b *WindowBuilder) endState(gs *GoStats, g *goState, sites []SiteStats) {
	gs.State = stateOfTrace(g.state)
	if g.state != trace.GoWaiting {
		return
	}
	gs.WaitReason = b.reasons[g.reason]
	gs.ReasonInferred = g.inferred
	if g.site >= 0 {
		s := &sites[g.site]
		s.Waiting++
		if len(s.Tasks) < maxSiteTasks {
			s.Tasks = append(s.Tasks, gs.ID)
		}
	}
}

// idleByReason appends the idle time by reason of s to buf,
// longest first, and returns buf and what it appended (nil for none): the
// IdleByReason of a window's goroutines share one backing array.
func (b *WindowBuilder) idleByReason(buf []ReasonTime, s *idleSet) ([]ReasonTime, []ReasonTime) {
	n := len(buf)
	for i := -1; i < len(s.more); i++ {
		r := s.first
		if i >= 0 {
			r = s.more[i]
		}
		if r.ns > 0 {
			buf = append(buf, ReasonTime{Reason: b.reasons[r.reason], NS: r.ns})
		}
	}
	if len(buf) == n {
		return buf, nil
	}
	mine := buf[n:len(buf):len(buf)]
	if len(mine) > 1 {
		slices.SortStableFunc(mine, func(x, y ReasonTime) int { return cmp.Compare(y.NS, x.NS) })
	}
	return buf, mine
}

// stackOf returns the frames of one of a goroutine's stacks: the
// trace.Stack while its generation lasts, else its frozen frames (live
// mode); nil for none.
func (b *WindowBuilder) stackOf(s trace.Stack, frozen int32) []Frame {
	if s != trace.NoStack {
		return b.framesOf(s)
	}
	return b.frozen(frozen)
}

// frozen returns the frames of a frozen stack reference; nil for none.
func (b *WindowBuilder) frozen(f int32) []Frame {
	if f == 0 {
		return nil
	}
	return b.frames[f-1]
}

// origin sets a goroutine's latest stack, the function it started in (of
// its creation's stack, else the root of the first stack seen of it, else
// of the latest), and who created it.
func (b *WindowBuilder) origin(gs *GoStats, g *goState) {
	start, first, creator := trace.NoStack, trace.NoStack, trace.NoStack
	if a := g.act; a != nil {
		start, first, creator = a.start, a.first, a.creator
	}
	setOrigin(gs, b.stackOf(g.stack, g.stackF), b.stackOf(start, g.startF), b.stackOf(first, g.firstF), b.stackOf(creator, g.creatorF), g.parent)
}

// setOrigin sets what origin tells from the frames of a goroutine's
// latest, start, first and creator's stacks.
func setOrigin(gs *GoStats, stack, start, first, creator []Frame, parent trace.GoID) {
	gs.Stack = stack
	if len(start) > 0 {
		gs.StartFunc = start[0].Func
	}
	if gs.StartFunc == "" {
		fs := first
		if fs == nil {
			fs = stack
		}
		if len(fs) > 0 {
			gs.StartFunc = fs[len(fs)-1].Func
		}
	}
	if len(creator) > 0 {
		gs.CreatedBy = creator[0]
	}
	if parent != trace.NoGoroutine {
		gs.ParentID = int64(parent)
	}
}

// finishSites lists the sites of a window, most wait first, leaving out
// those it did not see (only seen before it), and names their wakers:
// wakers[i] counts the stacks that woke goroutines from sites[i].
func (b *WindowBuilder) finishSites(sites []SiteStats, wakers [][]wakerCount) []*SiteStats {
	out := make([]*SiteStats, 0, len(sites))
	for i := range sites {
		s := &sites[i]
		if s.WaitNS == 0 && s.Wakeups == 0 && s.Waiting == 0 {
			continue
		}
		if ws := wakers[i]; len(ws) > 0 {
			best := slices.MaxFunc(ws, func(x, y wakerCount) int { return cmp.Compare(x.n, y.n) })
			s.Waker = b.frames[best.frames]
			for _, wc := range ws {
				loc := (&Goroutine{Frames: b.frames[wc.frames]}).Location()
				if i := slices.IndexFunc(s.Wakers, func(w WakerSite) bool { return w.Location == loc }); i >= 0 {
					s.Wakers[i].Count += wc.n
				} else {
					s.Wakers = append(s.Wakers, WakerSite{Location: loc, Count: wc.n})
				}
			}
			slices.SortFunc(s.Wakers, func(x, y WakerSite) int { return cmp.Compare(y.Count, x.Count) })
		}
		slices.Sort(s.Tasks)
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(x, y *SiteStats) int {
		if c := cmp.Compare(y.WaitNS, x.WaitNS); c != 0 {
			return c
		}
		return cmp.Compare(y.Waiting, x.Waiting)
	})
	return out
}

// stateOfTrace maps a trace goroutine state to a State.
func stateOfTrace(s trace.GoState) State {
	switch s {
	case trace.GoRunning:
		return Running
	case trace.GoRunnable:
		return Runnable
	case trace.GoWaiting:
		return Waiting
	case trace.GoSyscall:
		return Syscall
	}
	return 0
}

// Leaving out the generations before the window.
//
// A trace is a header and then generations, each a self-contained run of
// batches (its own string and stack tables, a sync batch with a clock
// snapshot taken as it began, and a status event for every goroutine) that
// ends, since Go 1.26, with an end-of-generation byte. A flight recorder
// snapshot holds every generation of the last MinAge (10s by default) while
// a window usually wants the last few seconds, and the parser spends most of
// its time on the status events every generation repeats. genSkipper hands
// the parser the header and the generations from the one before the last
// that began at or before WindowOptions.Since. The status events give every
// goroutine's state at the window's start, as the earlier generations would
// have; the generation before tells why the goroutines waiting then wait: a
// goroutine woken before it ran in a generation has a status event without
// a stack, but it blocked in the generation before, or has a status event
// with its stack there. What is lost is the creation (CreatedBy, ParentID)
// of goroutines created before those two generations. It reads the batch
// framing only (a few bytes per batch of up to 64 KB). Anything it does not
// understand (older formats, a cut or corrupt trace) it passes through
// unchanged for the parser to judge.

// Event types of the trace format (golang.org/x/exp/trace/internal/tracev2).
const (
	evEventBatch        = 1
	evFrequency         = 8
	evExperimentalBatch = 49
	evSync              = 50
	evClockSnapshot     = 51
	evEndOfGeneration   = 52
	maxBatchSize        = 64 << 10
)

type genSkipper struct {
	src     *bufio.Reader
	since   time.Time
	started bool
	out     [][]byte // ready to hand out, in order
	pass    bool     // once out is drained, the rest comes from src unchanged
	err     error    // src's error, returned once out is drained
	hdr     []byte
	pending []byte // the last whole generation that began at or before since
	prev    []byte // and the one before it
	cur     []byte // the generation being read
	curWall time.Time
}

// newGenSkipper returns a reader of r's trace without the generations that
// ended before since; with a zero since, r itself. A *bytes.Buffer is cut
// in place, without copying.
func newGenSkipper(r io.Reader, since time.Time) io.Reader {
	if since.IsZero() {
		return r
	}
	if bb, ok := r.(*bytes.Buffer); ok {
		data := bb.Bytes()
		bb.Next(len(data)) // read, as far as the buffer's owner is concerned
		if off := skipInPlace(data, since); off > 16 {
			return io.MultiReader(bytes.NewReader(data[:16]), bytes.NewReader(data[off:]))
		}
		return bytes.NewReader(data)
	}
	return &genSkipper{src: bufio.NewReaderSize(r, 64<<10), since: since}
}

// skipInPlace is genSkipper on a whole trace in memory: it returns the
// offset of the first generation to keep, or 0 to keep everything.
func skipInPlace(data []byte, since time.Time) int {
	const hdrLen = 16
	if len(data) < hdrLen || !bytes.HasPrefix(data, []byte("go 1.")) || !bytes.HasSuffix(data[:hdrLen], []byte(traceHeaderSuffix)) {
		return 0
	}
	if v, err := strconv.Atoi(string(data[len("go 1.") : hdrLen-len(traceHeaderSuffix)])); err != nil || v < 26 {
		return 0
	}
	// prev and kept are the offsets of the two generations kept so far,
	// cur that of the one being read.
	prev, kept, cur := hdrLen, hdrLen, hdrLen
	var wall time.Time
	for p := hdrLen; p < len(data); {
		typ := data[p]
		p++
		switch typ {
		case evEndOfGeneration:
			if wall.IsZero() || wall.After(since) {
				return prev
			}
			prev, kept, cur = kept, cur, p
			wall = time.Time{}
			continue
		case evEventBatch:
		case evExperimentalBatch:
			p++
		default:
			return prev
		}
		var size uint64
		for range 4 { // gen, M, timestamp, size
			if p >= len(data) {
				return prev
			}
			v, n := binary.Uvarint(data[p:])
			if n <= 0 {
				return prev
			}
			size, p = v, p+n
		}
		if size > maxBatchSize || uint64(len(data)-p) < size {
			return prev
		}
		if typ == evEventBatch && size > 0 && data[p] == evSync {
			if w, ok := syncWall(data[p+1 : p+int(size)]); ok {
				wall = w
			}
		}
		p += int(size)
	}
	return prev
}

func (s *genSkipper) Read(p []byte) (int, error) {
	for len(s.out) > 0 && len(s.out[0]) == 0 {
		s.out = s.out[1:]
	}
	if len(s.out) > 0 {
		n := copy(p, s.out[0])
		s.out[0] = s.out[0][n:]
		return n, nil
	}
	if s.pass {
		if s.err != nil {
			return 0, s.err
		}
		return s.src.Read(p)
	}
	for !s.pass {
		s.step()
	}
	return s.Read(p)
}

const traceHeaderSuffix = " trace\x00\x00\x00"

// step reads the header or one batch, and decides what to hand out.
func (s *genSkipper) step() {
	if !s.started {
		// The header: "go 1.26 trace\x00\x00\x00". Older formats have no
		// end-of-generation mark: pass them through.
		s.started = true
		hdr := make([]byte, 16)
		n, err := io.ReadFull(s.src, hdr)
		s.hdr = hdr[:n]
		if err != nil || !bytes.HasPrefix(hdr, []byte("go 1.")) || !bytes.HasSuffix(hdr, []byte(traceHeaderSuffix)) {
			s.passThrough(err)
			return
		}
		if v, err := strconv.Atoi(string(hdr[len("go 1.") : len(hdr)-len(traceHeaderSuffix)])); err != nil || v < 26 {
			s.passThrough(nil)
		}
		return
	}
	typ, err := s.src.ReadByte()
	if err != nil {
		s.passThrough(err)
		return
	}
	s.cur = append(s.cur, typ)
	switch typ {
	case evEndOfGeneration:
		s.endOfGeneration()
		return
	case evEventBatch:
	case evExperimentalBatch:
		e, err := s.src.ReadByte()
		if err != nil {
			s.passThrough(err)
			return
		}
		s.cur = append(s.cur, e)
	default:
		s.passThrough(nil)
		return
	}
	// gen, M, timestamp, size.
	var size uint64
	for range 4 {
		if size, err = s.uvarint(); err != nil {
			s.passThrough(err)
			return
		}
	}
	if size > maxBatchSize {
		s.passThrough(nil)
		return
	}
	at := len(s.cur)
	s.cur = slices.Grow(s.cur, int(size))[:at+int(size)]
	if n, err := io.ReadFull(s.src, s.cur[at:]); err != nil {
		s.cur = s.cur[:at+n]
		s.passThrough(err)
		return
	}
	if typ == evEventBatch && size > 0 && s.cur[at] == evSync {
		if w, ok := syncWall(s.cur[at+1:]); ok {
			s.curWall = w
		}
	}
}

// uvarint reads a varint of a batch header, keeping its bytes.
func (s *genSkipper) uvarint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := s.src.ReadByte()
		if err != nil {
			return 0, err
		}
		s.cur = append(s.cur, c)
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint overflow")
}

// endOfGeneration decides on the generation just read: keep it for now if
// it began at or before since (it replaces the one kept before, which ended
// when this one began, before since), else hand out the one kept and this
// one, and pass the rest through.
func (s *genSkipper) endOfGeneration() {
	if s.curWall.IsZero() || s.curWall.After(s.since) {
		s.passThrough(nil)
		return
	}
	s.prev, s.pending, s.cur = s.pending, s.cur, s.prev[:0]
	s.curWall = time.Time{}
}

// passThrough hands out the header, the generation kept and what was read
// of the current one, then the rest of src; err, if any and not io.EOF,
// ends the stream after them.
func (s *genSkipper) passThrough(err error) {
	s.out = [][]byte{s.hdr, s.prev, s.pending, s.cur}
	s.pass = true
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		s.err = err
	}
}

// syncWall reads the wall clock of a sync batch's clock snapshot (the
// batch's events after its EvSync byte).
func syncWall(b []byte) (time.Time, bool) {
	for len(b) > 0 {
		typ := b[0]
		b = b[1:]
		var args int
		switch typ {
		case evFrequency:
			args = 1
		case evClockSnapshot:
			args = 4 // dt, mono, sec, nsec
		default:
			return time.Time{}, false
		}
		var v [4]uint64
		for i := range args {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return time.Time{}, false
			}
			v[i], b = x, b[n:]
		}
		if typ == evClockSnapshot {
			return time.Unix(int64(v[2]), int64(v[3])), true
		}
	}
	return time.Time{}, false
}
