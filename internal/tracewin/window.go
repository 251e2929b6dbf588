package tracewin

import (
	"cmp"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/stack"
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
	// Pace, if not nil, is called every paceEvents events. The in-process
	// recorder competes for the CPU with the program it inspects: there it
	// sleeps a moment, and Go's scheduler runs a goroutine that a timer
	// woke before the others, so that the analysis ends in good time even
	// when the program keeps every core busy (its CPU time is the same).
	Pace func()
	// WaitingAt, if not nil, says where goroutine id waited when the
	// program was last traced before this trace began: its wait reason
	// and its stack, top first. A goroutine already waiting when a trace
	// begins and woken before the runtime sweeps the statuses of the
	// goroutines it has not seen has a status event without a stack or a
	// reason (the runtime cannot read a parked goroutine's stack there).
	// Without this, such waits all land at one site of unknown place per
	// reason; with it, at the site where the goroutine was seen waiting.
	// For traces taken in slices a moment apart, as the in-process
	// collector takes them: the goroutine may have moved between them,
	// but a wait that spans the gap is most of what such events are.
	WaitingAt func(id int64) (reason string, frames []stack.Frame, ok bool)
}

// paceEvents is how often WindowOptions.Pace is called: about a
// millisecond of analysis.
const paceEvents = 2048

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
	// Observed is how much of the window was traced (ns): its Duration,
	// but for a composed window (Compose), whose numbers are scaled up
	// from what its slices observed.
	Observed int64
	// composed makes the goroutines of a composed window (Compose), which
	// has no Goroutines of its own.
	composed *composition
}

// Count is the number of goroutines in the window.
func (w *Window) Count() int {
	if w.composed != nil {
		return w.composed.count()
	}
	return len(w.Goroutines)
}

// Get returns goroutine id's numbers, or nil when it was not in the window.
func (w *Window) Get(id int64) *GoStats {
	if w.composed != nil {
		return w.composed.get(id)
	}
	return w.Goroutines[id]
}

// All yields the window's goroutines in ID order. A composed window's
// GoStats are made for the yield and are not valid after it.
func (w *Window) All() iter.Seq[*GoStats] {
	if w.composed != nil {
		return w.composedAll()
	}
	return func(yield func(*GoStats) bool) {
		for _, g := range w.sortedGoroutines() {
			if !yield(g) {
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

// listByID sets byID from stats, which hold every goroutine of the window
// in order of appearance: nearly ID order, which the sort sees through.
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

// ObservedShare is the share of the window that was traced: 1 but for a
// composed window.
func (w *Window) ObservedShare() float64 {
	if w.composed == nil || w.Duration() <= 0 {
		return 1
	}
	return float64(w.Observed) / float64(w.Duration())
}

// GoStats are one goroutine's numbers over a window. All durations are in ns
// and clipped to the window; Busy+Sched+Idle+Syscall == Total.
type GoStats struct {
	ID int64
	// State is the goroutine's state at the end of the window; the zero
	// State for a goroutine that exited (Exited).
	State  stack.State
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
	Stack []stack.Frame
	// CreatedBy is the go statement that created the goroutine and ParentID
	// the goroutine that ran it, when the creation is in the window.
	CreatedBy stack.Frame
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
	StretchStack []stack.Frame
	// RunTimes are the durations of its runs and SchedDelays those of its
	// runnable stretches (the time from ready to running); an interval cut
	// by the window's start or end counts clipped. Nil when there were none,
	// and for a goroutine that exited: nothing shows its, and a server that
	// starts a goroutine a request would keep two for each.
	RunTimes, SchedDelays *Hist
}

// ReasonTime is the time spent waiting for one reason.
type ReasonTime struct {
	Reason string
	NS     int64
}

// Location is the top frame in user code of the goroutine's stack (see
// stack.Location).
func (g *GoStats) Location() stack.Frame {
	return stack.Location(g.Stack, g.CreatedBy)
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
	ts := g.TaskStatsNoIdle()
	if len(g.IdleByReason) > 0 {
		ts.IdleByReason = make(map[string]int64, len(g.IdleByReason))
		for _, r := range g.IdleByReason {
			ts.IdleByReason[r.Reason] += r.NS
		}
	}
	return ts
}

// TaskStatsNoIdle is TaskStats without IdleByReason.
func (g *GoStats) TaskStatsNoIdle() api.TaskStats {
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
	Location stack.Frame
	Waiting  int   // goroutines waiting there at the end of the window
	WaitNS   int64 // total wait there within the window
	Wakeups  int64 // goroutines woken from there
	// Waker is the stack that most often woke goroutines from this site (the
	// stack of the goroutine that made them runnable); nil when they were
	// woken by the runtime only (timers, the network poller).
	Waker []stack.Frame
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
	Location stack.Frame
	Count    int64
}

// maxSiteTasks caps SiteStats.Tasks.
const maxSiteTasks = 100

// Site converts s to the wire form.
func (s *SiteStats) Site() api.Site {
	return api.Site{
		Reason:   s.Reason,
		Location: s.Location.API(),
		Waiting:  s.Waiting,
		WaitNS:   s.WaitNS,
		Wakeups:  s.Wakeups,
		Tasks:    s.Tasks,
		Waker:    stack.APIFrames(s.Waker),
		Wakers:   wakerSites(s.Wakers),
	}
}

func wakerSites(ws []WakerSite) []api.WakerSite {
	if len(ws) == 0 {
		return nil
	}
	out := make([]api.WakerSite, len(ws))
	for i, w := range ws {
		out[i] = api.WakerSite{Location: w.Location.API(), Count: w.Count}
	}
	return out
}

// StackOf returns goroutine id's latest stack in the window, or the stack
// of its longest stretch on CPU (GoStats.StretchStack); nil when it was not
// in the window (or w is nil).
func (w *Window) StackOf(id int64, stretch bool) []api.Frame {
	if w == nil {
		return nil
	}
	return stack.APIFrames(w.Stack(id, stretch))
}

// Stack returns what Get(id) says of goroutine id's Stack, or of its
// StretchStack, without making the rest of its numbers: a composed window
// makes a goroutine's numbers anew at each Get, and the diagnosis asks
// for the stack of every goroutine. Shared: read-only.
func (w *Window) Stack(id int64, stretch bool) []stack.Frame {
	if w.composed == nil {
		g := w.Goroutines[id]
		switch {
		case g == nil:
			return nil
		case stretch:
			return g.StretchStack
		}
		return g.Stack
	}
	return w.composed.stack(id, stretch)
}
