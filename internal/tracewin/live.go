package tracewin

// Live windows: the execution trace analysed as it is written.
//
// A flight recorder snapshot costs a forced generation switch (100-130 ms at
// 100k goroutines: the runtime walks every goroutine) and a parse of every
// generation of the window, each of which repeats a status event per
// goroutine: some 480 ms a snapshot at 100k goroutines. While clients
// watch, the Collector instead streams the trace (runtime/trace.Start,
// beside the flight recorder) into memory (Stream), and one parser, kept
// open on that stream for as long as it runs, analyses each generation once:
// as the runtime completes it while that fits the CPU budget, else when a
// snapshot asks. Its builder, in live mode, keeps every
// goroutine's state from one generation to the next, and of each generation
// only the numbers of the goroutines that changed in it. A window is
// composed from the last generations' numbers and the current states. It
// ends with the last complete generation (the runtime completes one a
// second) and starts where a generation starts, so it is up to half a
// generation longer or shorter than asked.

import (
	"cmp"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/stack"
	"golang.org/x/exp/trace"
)

// liveState is a live builder's record of the generations.
type liveState struct {
	genStart trace.Time // the current generation's start
	seq      uint32     // generations begun
	open     bool       // a generation is begun and not yet recorded
	events0  int64      // the builder's event count when it began
	wall     time.Time  // its start on the wall clock; zero without a clock snapshot
	dirty    []*goState // the goroutines that changed in it
	gens     []genRecord
	// keep is how far back from the last generation's end generations
	// are kept: the longest window asked for, and 2s more.
	keep trace.Time
	// analysed is the trace time of the generations recorded.
	analysed time.Duration
}

// genRecord is what one generation added.
type genRecord struct {
	seq        uint32 // liveState.seq of the generation
	start, end trace.Time
	wall       time.Time
	events     int64
	gs         []goRecord
	sites      []siteRecord
}

// goRecord is what one generation added to a goroutine's numbers: the
// intervals that began and ended in it, and the one it carried over from
// before, if that ended in it.
type goRecord struct {
	g                          *goState
	busy, sched, idle, syscall int64
	polls, longest, stretch    int64
	stretchF                   int32
	runs, delays               *Hist
	idles                      idleSet
	carry                      carried
}

// carried is an interval that began before a generation and ended in it.
// Its length within a window depends on where the window starts, so it is
// kept whole until a window is composed.
type carried struct {
	set          bool
	toRun        bool // it ended running: a runnable stretch then counts as a scheduling delay
	state        trace.GoState
	reason, site int32
	since, until trace.Time
}

type siteRecord struct {
	site            int32
	waitNS, wakeups int64
	wakers          []wakerCount
}

// newLiveBuilder returns a builder for an endless stream of generations,
// whose windows LiveWindow composes.
func newLiveBuilder() *WindowBuilder {
	b := NewWindowBuilder(WindowOptions{Sites: true})
	b.live = &liveState{keep: trace.Time(defaultLiveKeep)}
	return b
}

// defaultLiveKeep is how much of the stream a live builder keeps before it
// is asked for a longer window.
const defaultLiveKeep = 6 * time.Second

// liveSync begins a generation, recording the one before.
func (b *WindowBuilder) liveSync(ev *trace.Event, t trace.Time) {
	l := b.live
	if l.open {
		b.endGen(t)
	}
	l.open = true
	l.seq++
	l.genStart = t
	l.events0 = b.events - 1 // this Sync is the generation's
	l.wall = time.Time{}
	if cs := ev.Sync().ClockSnapshot; cs != nil {
		l.wall = cs.Wall.Add(time.Duration(t - cs.Trace))
	}
}

// touch notes that g changed in this generation.
func (b *WindowBuilder) touch(g *goState) {
	if l := b.live; g.gen != l.seq {
		g.gen = l.seq
		l.dirty = append(l.dirty, g)
	}
}

// carryOver closes, at t, an interval that began before this generation.
func (b *WindowBuilder) carryOver(g *goState, t trace.Time, to trace.GoState) {
	b.touch(g)
	a := b.act(g)
	a.carry = carried{set: true, toRun: to == trace.GoRunning, state: g.state, reason: g.reason, site: g.site, since: g.since, until: t}
	if g.state == trace.GoRunning {
		g.stretch += int64(t - g.since)
		a.longestStretch = max(a.longestStretch, g.stretch)
	}
}

// endGen records the generation that ends at end: the numbers of the
// goroutines that changed in it, and of the sites.
func (b *WindowBuilder) endGen(end trace.Time) {
	l := b.live
	l.open = false
	rec := genRecord{seq: l.seq, start: l.genStart, end: end, wall: l.wall, events: b.events - l.events0, gs: make([]goRecord, 0, len(l.dirty))}
	for _, g := range l.dirty {
		a := g.act
		if a == nil {
			// Touched with nothing to count: a goroutine that appeared
			// running, say.
			rec.gs = append(rec.gs, goRecord{g: g})
			continue
		}
		r := goRecord{g: g, busy: a.busy, sched: a.sched, idle: a.idle, syscall: a.syscall,
			polls: a.polls, longest: a.longest, stretch: a.longestStretch, runs: a.runs, delays: a.delays,
			idles: a.idles, carry: a.carry}
		if a.stretchStack != trace.NoStack {
			r.stretchF = b.frameRef(a.stretchStack)
		}
		rec.gs = append(rec.gs, r)
		// The record has its numbers (and its histograms); the stacks
		// are frozen before their tables go.
		b.freezeStack(&a.first, &g.firstF)
		b.freezeStack(&a.start, &g.startF)
		b.freezeStack(&a.creator, &g.creatorF)
		blocks := a.blocks
		if blocks != nil {
			*blocks = blockCache{}
		}
		*a = goActivity{blocks: blocks}
		g.act = nil
		b.spareActs = append(b.spareActs, a)
	}
	// Spares for as many as changed in this generation; a burst's go.
	if keep := len(l.dirty) + 1024; len(b.spareActs) > keep {
		clear(b.spareActs[keep:])
		b.spareActs = b.spareActs[:keep]
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
	for i, s := range b.sites {
		if s.waitNS != 0 || s.wakeups != 0 {
			rec.sites = append(rec.sites, siteRecord{site: int32(i), waitNS: s.waitNS, wakeups: s.wakeups, wakers: s.wakers})
			s.waitNS, s.wakeups, s.wakers = 0, 0, nil
		}
		s.lastWaker = trace.NoStack
	}
	l.gens = append(l.gens, rec)
	l.analysed += time.Duration(end - rec.start)
	drop := 0
	for drop+1 < len(l.gens) && l.gens[drop+1].start <= end-l.keep {
		drop++
	}
	if drop > 0 {
		clear(l.gens[:drop])
		l.gens = l.gens[drop:]
	}
	b.freeze(l.gens[0].start)
}

// freeze turns the goroutines' stacks into frames, so that the
// generation's tables can go, and forgets the goroutines that exited before
// oldest, the start of the oldest generation kept.
func (b *WindowBuilder) freeze(oldest trace.Time) {
	kept := b.all[:0]
	for _, g := range b.all {
		if g.exited && g.ended < oldest {
			b.gs.del(g.id, g)
			continue
		}
		kept = append(kept, g)
		b.freezeStack(&g.stack, &g.stackF)
	}
	clear(b.all[len(kept):])
	b.all = kept
	clear(b.stacks)
	b.infos = b.infos[:0]
	b.lastStk = trace.NoStack
}

func (b *WindowBuilder) freezeStack(s *trace.Stack, f *int32) {
	if *s != trace.NoStack {
		*f = b.frameRef(*s)
		*s = trace.NoStack
	}
}

// frameRef is a stack's frames as a frozen reference: index+1 in b.frames.
func (b *WindowBuilder) frameRef(s trace.Stack) int32 {
	return b.frameIndex(s) + 1
}

// compAcc gathers a goroutine's numbers while a window is composed.
type compAcc struct {
	k            int32 // its index in the window's goroutines
	idles        idleSet
	runs, delays *Hist
	ownRuns      bool // runs is ours, not a record's
	ownDelays    bool
	stretchF     int32
}

// LiveWindow composes the window of about the last want of the stream: from
// the start of the generation that starts closest to want before the end of
// the last complete one, to that end. It returns false when the stream does
// not reach back far enough (by more than a tenth of want).
func (b *WindowBuilder) LiveWindow(want time.Duration) (*Window, bool) {
	l := b.live
	if l.open {
		b.endGen(b.end)
	}
	if len(l.gens) == 0 {
		return nil, false
	}
	end := b.end
	target := end - trace.Time(want)
	i := -1
	for j := range l.gens {
		if l.gens[j].start <= target {
			i = j
		}
	}
	switch {
	case i < 0:
		if l.gens[0].start-target > trace.Time(want/10) {
			return nil, false
		}
		i = 0
	case i+1 < len(l.gens) && l.gens[i+1].start-target < target-l.gens[i].start:
		i++
	}
	gens := l.gens[i:]
	start := gens[0].start
	w := &Window{Start: int64(start), End: int64(end)}
	for _, g := range gens {
		w.Events += g.events
	}
	if last := gens[len(gens)-1]; !gens[0].wall.IsZero() && !last.wall.IsZero() {
		w.WallStart, w.WallEnd = gens[0].wall, last.wall.Add(time.Duration(end-last.start))
	}

	// Every goroutine alive in the window, by ID; those that changed in
	// it (most of a large program's do not) get an accumulator, and those
	// that waited all of it go to the quiet set.
	order := b.gs.inOrder(make([]*goState, 0, len(b.all)))
	seq0 := gens[0].seq
	nq := 0
	for _, g := range order {
		if quietIn(g, seq0) {
			nq++
		}
	}
	stats := make([]GoStats, 0, len(order)-nq)
	q := &quietSet{start: start, end: end, gs: make([]quietGo, 0, nq)}
	var accs []compAcc
	for _, g := range order {
		g.acc = -1
		if g.exited && g.ended < start {
			continue
		}
		if quietIn(g, seq0) {
			g.acc = accQuiet
			q.gs = append(q.gs, quietGo{id: g.id, parent: g.parent, since: g.since, created: g.created, reason: g.reason,
				stackF: g.stackF, startF: g.startF, firstF: g.firstF, creatorF: g.creatorF, inferred: g.inferred})
			continue
		}
		if g.gen >= seq0 {
			g.acc = int32(len(accs))
			accs = append(accs, compAcc{k: int32(len(stats))})
		}
		stats = append(stats, GoStats{ID: int64(g.id)})
	}
	w.Goroutines = make(map[int64]*GoStats, len(stats))
	sites := b.siteStats()
	wakers := make([][]wakerCount, len(b.sites))

	// What the generations recorded.
	for gi := range gens {
		for ri := range gens[gi].gs {
			r := &gens[gi].gs[ri]
			if r.g.acc < 0 {
				continue
			}
			c := &accs[r.g.acc]
			gs := &stats[c.k]
			gs.Busy += r.busy
			gs.Sched += r.sched
			gs.Idle += r.idle
			gs.Syscall += r.syscall
			gs.Polls += r.polls
			gs.LongestRun = max(gs.LongestRun, r.longest)
			if r.stretch > gs.LongestStretch {
				gs.LongestStretch, c.stretchF = r.stretch, r.stretchF
			}
			c.runs, c.ownRuns = mergeHist(c.runs, c.ownRuns, r.runs)
			c.delays, c.ownDelays = mergeHist(c.delays, c.ownDelays, r.delays)
			if r.idles.first.ns != 0 {
				c.idles.add(r.idles.first.reason, r.idles.first.ns)
			}
			for _, x := range r.idles.more {
				c.idles.add(x.reason, x.ns)
			}
			if r.carry.set {
				cr := &r.carry
				b.span(gs, c, sites, cr.state, cr.reason, cr.site, max(cr.since, start), cr.until, cr.toRun)
			}
		}
		for _, sr := range gens[gi].sites {
			s := &sites[sr.site]
			s.WaitNS += sr.waitNS
			s.Wakeups += sr.wakeups
			wakers[sr.site] = mergeWakers(wakers[sr.site], sr.wakers)
		}
	}

	// The goroutines' current states, and the intervals still open.
	idleBy := make([]ReasonTime, 0, len(stats)+len(stats)/4) // one backing array for most IdleByReason
	// The accumulator of the goroutines that did not change in the window.
	var none compAcc
	k := 0
	for _, g := range order {
		if g.exited && g.ended < start {
			continue
		}
		if g.acc == accQuiet {
			// Its numbers wait for a reader (quietSet.stats); its site's
			// cannot.
			if g.site >= 0 {
				s := &sites[g.site]
				s.WaitNS += max(int64(end-max(g.since, start)), 0)
				s.Waiting++
				if len(s.Tasks) < maxSiteTasks {
					s.Tasks = append(s.Tasks, int64(g.id))
				}
			}
			continue
		}
		gs := &stats[k]
		k++
		c := &none
		if g.acc >= 0 {
			c = &accs[g.acc]
		} else {
			none = compAcc{}
		}
		gend := end
		if g.exited {
			gend = g.ended
			gs.Exited, gs.Ended = true, int64(g.ended-start)
		} else {
			from := max(g.since, start)
			gs.InState = int64(end - from)
			b.span(gs, c, sites, g.state, g.reason, g.site, from, end, true)
			if g.state == trace.GoRunning {
				gs.LongestStretch = max(gs.LongestStretch, min(g.stretch+int64(end-g.since), int64(end-start)))
			}
			b.endState(gs, g, sites)
		}
		gs.Total = int64(gend - max(g.created, start))
		gs.RunTimes, gs.SchedDelays = c.runs, c.delays
		idleBy, gs.IdleByReason = b.idleByReason(idleBy, &c.idles)
		gs.StretchStack = b.frozen(c.stretchF)
		b.origin(gs, g)
		w.Goroutines[gs.ID] = gs
	}
	w.listByID(stats)
	w.Sites = b.finishSites(sites, wakers)
	if len(q.gs) > 0 {
		// Both only grow: what the quiet goroutines refer to stays.
		q.frames, q.reasons = b.frames, b.reasons
		w.quiet = q
	}
	return w, true
}

// quietWindows has live windows keep quiet goroutines apart (tests compare
// windows composed both ways).
var quietWindows = true

// accQuiet is goState.acc of a quiet goroutine while a window is composed.
const accQuiet = -2

// quietIn says goroutine g waited all the window that begins with
// generation seq0, without an event, and is frozen: a quiet goroutine
// (with quietWindows).
func quietIn(g *goState, seq0 uint32) bool {
	return quietWindows && g.gen < seq0 && !g.exited && g.state == trace.GoWaiting &&
		g.stack == trace.NoStack && g.act == nil
}

// quietSet holds the quiet goroutines of a live window: those that waited
// all of it without an event. Each takes 56 bytes rather than some 300
// (its GoStats and its place in Goroutines), which it gets when read.
type quietSet struct {
	gs         []quietGo // by ID
	start, end trace.Time
	// The builder's frozen stacks and wait reasons, which quietGo
	// indexes.
	frames  [][]stack.Frame
	reasons []string
}

// quietGo is what a quiet goroutine's GoStats are made of: a goState's
// fields.
type quietGo struct {
	id, parent                       trace.GoID
	since, created                   trace.Time
	reason                           int32
	stackF, startF, firstF, creatorF int32
	inferred                         bool
}

func (q *quietSet) len() int {
	if q == nil {
		return 0
	}
	return len(q.gs)
}

// get returns quiet goroutine id's numbers, or nil.
func (q *quietSet) get(id int64) *GoStats {
	if q == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(q.gs, id, func(x quietGo, id int64) int { return cmp.Compare(int64(x.id), id) })
	if !ok {
		return nil
	}
	gs := new(GoStats)
	q.stats(&q.gs[i], gs, new([1]ReasonTime))
	return gs
}

// stats sets gs to x's numbers, as LiveWindow would have (span, endState,
// origin): idle all the window long. idle holds its IdleByReason.
func (q *quietSet) stats(x *quietGo, gs *GoStats, idle *[1]ReasonTime) {
	from := max(x.since, q.start)
	d := max(int64(q.end-from), 0)
	*gs = GoStats{ID: int64(x.id), State: stateOfTrace(trace.GoWaiting), WaitReason: q.reasons[x.reason], ReasonInferred: x.inferred,
		InState: int64(q.end - from), Idle: d, Total: int64(q.end - max(x.created, q.start))}
	if d > 0 {
		idle[0] = ReasonTime{Reason: gs.WaitReason, NS: d}
		gs.IdleByReason = idle[:]
	}
	setOrigin(gs, q.frozen(x.stackF), q.frozen(x.startF), q.frozen(x.firstF), q.frozen(x.creatorF), x.parent)
}

func (q *quietSet) frozen(f int32) []stack.Frame {
	if f == 0 {
		return nil
	}
	return q.frames[f-1]
}

// span adds the time from from to until in a state to a goroutine's
// numbers; toRun says a runnable stretch ended running (or at the window's
// end) and so counts as a scheduling delay.
func (b *WindowBuilder) span(gs *GoStats, c *compAcc, sites []SiteStats, state trace.GoState, reason, site int32, from, until trace.Time, toRun bool) {
	d := max(int64(until-from), 0)
	switch state {
	case trace.GoRunning:
		gs.Busy += d
		gs.LongestRun = max(gs.LongestRun, d)
		c.runs, c.ownRuns = ownHist(c.runs, c.ownRuns)
		c.runs.Add(d)
	case trace.GoRunnable:
		gs.Sched += d
		if toRun {
			c.delays, c.ownDelays = ownHist(c.delays, c.ownDelays)
			c.delays.Add(d)
		}
	case trace.GoWaiting:
		gs.Idle += d
		c.idles.add(reason, d)
		if site >= 0 {
			sites[site].WaitNS += d
		}
	case trace.GoSyscall:
		gs.Syscall += d
	}
}

// ownHist returns a histogram the caller may add to: h itself if it owns
// it, else a copy (a record's histogram is shared by every window).
func ownHist(h *Hist, own bool) (*Hist, bool) {
	if own {
		return h, true
	}
	n := new(Hist)
	if h != nil {
		*n = *h
	}
	return n, true
}

// mergeHist adds o to h, sharing o while it is the only one.
func mergeHist(h *Hist, own bool, o *Hist) (*Hist, bool) {
	if o == nil || o.Count() == 0 {
		return h, own
	}
	if h == nil {
		return o, false
	}
	h, own = ownHist(h, own)
	h.Merge(o)
	return h, own
}

// mergeWakers adds a generation's waker counts to a window's.
func mergeWakers(into, from []wakerCount) []wakerCount {
	for _, w := range from {
		if i := slices.IndexFunc(into, func(x wakerCount) bool { return x.frames == w.frames }); i >= 0 {
			into[i].n += w.n
		} else {
			into = append(into, w)
		}
	}
	return into
}
