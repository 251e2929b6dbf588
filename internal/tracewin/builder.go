package tracewin

import (
	"cmp"
	"slices"
	"time"

	"golang.org/x/exp/trace"

	"github.com/inspectd/inspectd/internal/stack"
)

// WindowBuilder analyses a trace window event by event, in the shape of
// cmd/trace's accumulators: feed it every event of a trace.Reader in order
// with Event, then call Finalize. The window spans from the first event fed
// (or WindowOptions.Since) to the last; a cut input gives the window of the
// events fed, as if the trace ended there.
//
//	r, _ := trace.NewReader(f)
//	b := tracewin.NewWindowBuilder(tracewin.WindowOptions{Sites: true})
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

	gs      goTable
	all     []*goState   // in order of first appearance
	slab    []goState    // goroutines to hand out
	actSlab []goActivity // goActivity to hand out
	// freeHists are the histograms of goroutines that exited, for others
	// to take: a server that starts a goroutine a request (net/http's
	// background reads) would otherwise allocate two for each and keep
	// them in every slice, where nothing reads an exited goroutine's.
	freeHists []*Hist

	reasons   []string         // normalized wait reasons, by index
	reasonIdx map[string]int32 // and their indexes
	raw       []rawReason      // the trace's reason strings seen, with their normal form

	stacks  map[trace.Stack]int32 // a generation's stack -> index in infos
	infos   []stackInfo
	content map[string]int32 // a stack's PCs -> index in frames: the same stack across generations
	frames  [][]stack.Frame
	strs    map[string]string // interned function and file names
	pcKey   []byte            // scratch

	lastStk trace.Stack // frameIndex's last look-up
	lastIdx int32

	sites   []*siteAcc
	siteIdx map[siteKey]int32
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
// transition touches come first; its numbers are apart (goActivity).
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
}

// goActivity is a goroutine's numbers in the window.
type goActivity struct {
	busy, sched, idle, syscall int64
	polls, longest             int64
	longestStretch             int64       // the longest stretch (goState.stretch)
	stretchStack               trace.Stack // where the longest stretch was last preempted (see preempted)
	stretchOwn                 bool        // stretchStack is the current stretch's
	runs, delays               *Hist
	idles                      idleSet     // idle time by reason
	blocks                     *blockCache // the last places it blocked at

	first   trace.Stack // first own stack seen (its root frame names the start function)
	start   trace.Stack // start stack from its creation
	creator trace.Stack // creator's stack at creation
}

// act returns g's goActivity, made on first use.
func (b *WindowBuilder) act(g *goState) *goActivity {
	if g.act != nil {
		return g.act
	}
	if len(b.actSlab) == 0 {
		b.actSlab = make([]goActivity, 256)
	}
	g.act = &b.actSlab[0]
	b.actSlab = b.actSlab[1:]
	return g.act
}

// newHist returns an empty histogram, one an exited goroutine left if any.
func (b *WindowBuilder) newHist() *Hist {
	if n := len(b.freeHists); n > 0 {
		h := b.freeHists[n-1]
		b.freeHists = b.freeHists[:n-1]
		*h = Hist{}
		return h
	}
	return new(Hist)
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
	loc    stack.Frame
}

// siteAcc accumulates one blocking site.
type siteAcc struct {
	reason    int32
	loc       stack.Frame
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
	if g == nil || g.exited || from == trace.GoUndetermined || from == trace.GoNotExist {
		var ok bool
		if g, since, ok = b.appear(ev, st, g, id, from, t); !ok {
			return
		}
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
		// A status event's stack is where the goroutine is: its root tells
		// the start function all the same (see origin), and a goroutine
		// that does nothing else in the window gets no goActivity.
		if from != trace.GoUndetermined || g.act != nil {
			if a := b.act(g); a.first == trace.NoStack {
				a.first = stk
			}
		}
	}
	switch to {
	case trace.GoRunning:
		if from == trace.GoRunnable && t >= b.winStart {
			b.act(g).polls++
		}
	case trace.GoWaiting:
		if stk == trace.NoStack && from == trace.GoUndetermined && b.opts.WaitingAt != nil && b.waitingBefore(g, id) {
			break
		}
		b.block(g, st.Reason, stk)
	case trace.GoNotExist:
		g.exited = true
		g.ended = t
		if a := g.act; a != nil {
			for _, h := range []**Hist{&a.runs, &a.delays} {
				if *h != nil {
					b.freeHists = append(b.freeHists, *h)
					*h = nil
				}
			}
		}
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
		if !stack.IsStd(f.Func) {
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
	// Its numbers (goActivity) come with its first interval: a goroutine
	// seen only in a status event (most of a large program's, waiting)
	// never needs them.
	if len(b.slab) == 0 {
		b.slab = make([]goState, 256)
	}
	g := &b.slab[0]
	b.slab = b.slab[1:]
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
			a.runs = b.newHist()
		}
		a.runs.Add(d)
	case trace.GoRunnable:
		a.sched += d
		if to == trace.GoRunning || to == trace.GoUndetermined {
			if a.delays == nil {
				a.delays = b.newHist()
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

// waitingBefore sets the wait reason and site of g, found waiting with
// neither in a status event, to where WindowOptions.WaitingAt last saw it
// wait, and says whether it knew.
func (b *WindowBuilder) waitingBefore(g *goState, id trace.GoID) bool {
	reason, frames, ok := b.opts.WaitingAt(int64(id))
	if !ok || reason == "" || len(frames) == 0 {
		return false
	}
	g.inferred = true
	g.reason, g.site = b.intern(reason), -1
	if b.opts.Sites {
		g.site = b.site(g.reason, frames)
	}
	return true
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
