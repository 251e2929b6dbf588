package tracewin

// Windows composed of slices.
//
// A program that is traced only part of the time (the in-process source
// traces a part of each interval, within an overhead budget) is seen in
// slices: separate traces with gaps between them. NewSlice keeps what
// each one's analysis says in a compact form (a goroutine that waited all
// the slice without an event, as most of a large program's do, takes 24
// bytes), and Compose makes a window of the last slices: every goroutine's
// numbers summed over the slices that saw it and scaled by the share of
// the window they observed, so that its times add up to the window's and
// its rates and shares are those of the observed time.
//
// Composed windows are lazy: their goroutines are made as they are read
// (All, Get), so that a window of a million goroutines costs no more than
// its slices.

import (
	"cmp"
	"iter"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/inspectd/inspectd/internal/stack"
	"golang.org/x/exp/trace"
)

// A Slice is the analysis of one traced stretch of a program's time, kept
// compact to compose windows from.
type Slice struct {
	WallStart, WallEnd time.Time // the stretch on the wall clock
	Events             int64     // events analysed
	Truncated          bool      // the trace was cut short or corrupt

	active []GoStats   // goroutines that did something in the slice, by ID
	quiet  []quietRec  // goroutines that waited all the slice without an event, by ID
	kinds  []quietKind // what quiet goroutines wait on, shared
	sites  []*SiteStats
}

// quietRec is a goroutine that waited all the slice without an event.
type quietRec struct {
	id, parent int64
	kind       int32 // in Slice.kinds
}

// quietKind is what quiet goroutines share: how and where they wait, and
// where they come from.
type quietKind struct {
	reason    string
	inferred  bool
	stack     []stack.Frame
	createdBy stack.Frame
	startFunc string
}

// Interner shares stacks and strings between the slices of one program:
// identical stacks are one []Frame, so that slices compare them by
// pointer and keep one copy. It is not safe for concurrent use.
type Interner struct {
	stacks map[string][]stack.Frame
	strs   map[string]string
	key    []byte
}

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	return &Interner{stacks: map[string][]stack.Frame{}, strs: map[string]string{}}
}

// Len is the number of distinct stacks held.
func (in *Interner) Len() int { return len(in.stacks) }

func (in *Interner) str(s string) string {
	if s == "" {
		return ""
	}
	if t, ok := in.strs[s]; ok {
		return t
	}
	in.strs[s] = s
	return s
}

func (in *Interner) frame(f stack.Frame) stack.Frame {
	return stack.Frame{Func: in.str(f.Func), File: in.str(f.File), Line: f.Line}
}

// stack returns the one copy of frames.
func (in *Interner) stack(frames []stack.Frame) []stack.Frame {
	if len(frames) == 0 {
		return nil
	}
	k := in.key[:0]
	for _, f := range frames {
		k = append(k, f.Func...)
		k = append(k, 0)
		k = append(k, f.File...)
		k = append(k, 0)
		k = appendUint64(k, uint64(f.Line))
		k = append(k, 0)
	}
	in.key = k
	if s, ok := in.stacks[string(k)]; ok {
		return s
	}
	s := make([]stack.Frame, len(frames))
	for i, f := range frames {
		s[i] = in.frame(f)
	}
	in.stacks[string(k)] = s
	return s
}

// WaitingAt says where goroutine id waited at the end of s: its wait
// reason and stack, top first; false when it was not waiting then or s
// does not know where. It is what WindowOptions.WaitingAt asks of the
// slice before.
func (s *Slice) WaitingAt(id int64) (reason string, frames []stack.Frame, ok bool) {
	if i, found := slices.BinarySearchFunc(s.quiet, id, func(q quietRec, id int64) int { return cmp.Compare(q.id, id) }); found {
		k := &s.kinds[s.quiet[i].kind]
		return k.reason, k.stack, k.reason != "" && len(k.stack) > 0
	}
	if i, found := slices.BinarySearchFunc(s.active, id, func(g GoStats, id int64) int { return cmp.Compare(g.ID, id) }); found {
		g := &s.active[i]
		return g.WaitReason, g.Stack, g.State == stack.Waiting && !g.Exited && g.WaitReason != "" && len(g.Stack) > 0
	}
	return "", nil, false
}

// NewSlice keeps what window w, the analysis of one whole trace, says of
// the program, sharing stacks and strings through in. The window needs
// its wall clock (traces of Go 1.25 and later carry it).
func NewSlice(w *Window, in *Interner) *Slice {
	s := &Slice{WallStart: w.WallStart, WallEnd: w.WallEnd, Events: w.Events, Truncated: w.Truncated}
	d := w.Duration()
	kinds := map[kindKey]int32{}
	for g := range w.All() {
		s.add(g, d, in, kinds)
	}
	for _, site := range w.Sites {
		c := *site
		c.Location = in.frame(c.Location)
		c.Waker = in.stack(c.Waker)
		s.sites = append(s.sites, &c)
	}
	return s
}

// add keeps goroutine g of a slice of d ns: a quiet record, or its
// numbers, sharing stacks and strings through in; kinds indexes s.kinds.
func (s *Slice) add(g *GoStats, d int64, in *Interner, kinds map[kindKey]int32) {
	if isQuiet(g, d) {
		s.addQuiet(g.ID, g.ParentID, quietKind{reason: in.str(g.WaitReason), inferred: g.ReasonInferred, stack: in.stack(g.Stack),
			createdBy: in.frame(g.CreatedBy), startFunc: in.str(g.StartFunc)}, kinds)
		return
	}
	c := *g
	c.WaitReason, c.StartFunc = in.str(c.WaitReason), in.str(c.StartFunc)
	c.Stack, c.StretchStack = in.stack(c.Stack), in.stack(c.StretchStack)
	c.CreatedBy = in.frame(c.CreatedBy)
	c.IdleByReason = slices.Clone(c.IdleByReason)
	for i := range c.IdleByReason {
		c.IdleByReason[i].Reason = in.str(c.IdleByReason[i].Reason)
	}
	s.active = append(s.active, c)
}

// slice finalizes b's window as a Slice: as NewSlice(b.Finalize(), in),
// without the numbers of the quiet goroutines ever made beside it.
func (b *WindowBuilder) slice(in *Interner) *Slice {
	start := b.start
	s := &Slice{Events: b.events, Truncated: b.truncated}
	if b.clockSet {
		s.WallStart = b.clockWall.Add(time.Duration(start - b.clockTrace))
		s.WallEnd = b.clockWall.Add(time.Duration(b.end - b.clockTrace))
	}
	d := int64(b.end - start)
	sites := b.siteStats()
	kinds := map[kindKey]int32{}
	var gs GoStats
	var idle []ReasonTime
	quiet := func(g *goState) bool {
		return g.act == nil && !g.exited && g.state == trace.GoWaiting && g.created <= start && g.since <= start
	}
	// Sized once: most of a large program's goroutines are quiet, and a
	// record list grown by append allocates some five times its size.
	n := 0
	for _, g := range b.all {
		if quiet(g) {
			n++
		}
	}
	s.quiet = make([]quietRec, 0, n)
	for _, g := range b.all {
		if quiet(g) {
			// Seen in a status event only, waiting all along: its record
			// without its numbers.
			b.quiet(s, g, sites, d, in, kinds)
			continue
		}
		var ok bool
		if idle, ok = b.goStats(g, start, sites, &gs, idle[:0]); !ok {
			continue
		}
		s.add(&gs, d, in, kinds)
	}
	slices.SortFunc(s.active, func(a, b GoStats) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.quiet, func(a, b quietRec) int { return cmp.Compare(a.id, b.id) })
	wakers := make([][]wakerCount, len(sites))
	for i, acc := range b.sites {
		sites[i].WaitNS, sites[i].Wakeups = acc.waitNS, acc.wakeups
		wakers[i] = acc.wakers
	}
	for _, site := range b.finishSites(sites, wakers) {
		c := *site
		c.Location = in.frame(c.Location)
		c.Waker = in.stack(c.Waker)
		s.sites = append(s.sites, &c)
	}
	return s
}

// quiet keeps g, which waited all of a slice of d ns without an event, as
// a quiet record of s, and counts it at its site.
func (b *WindowBuilder) quiet(s *Slice, g *goState, sites []SiteStats, d int64, in *Interner, kinds map[kindKey]int32) {
	var gs GoStats
	b.origin(&gs, g)
	s.addQuiet(int64(g.id), gs.ParentID, quietKind{reason: in.str(b.reasons[g.reason]), inferred: g.inferred, stack: in.stack(gs.Stack),
		createdBy: in.frame(gs.CreatedBy), startFunc: in.str(gs.StartFunc)}, kinds)
	if g.site >= 0 {
		b.sites[g.site].waitNS += d
		site := &sites[g.site]
		site.Waiting++
		if len(site.Tasks) < maxSiteTasks {
			site.Tasks = append(site.Tasks, int64(g.id))
		}
	}
}

// addQuiet keeps goroutine id as a quiet record of kind k (its strings and
// stack interned), the kind shared with the slice's other goroutines of it;
// kinds indexes s.kinds.
func (s *Slice) addQuiet(id, parent int64, k quietKind, kinds map[kindKey]int32) {
	kk := kindKey{k.reason, k.inferred, unsafe.SliceData(k.stack), len(k.stack), k.createdBy, k.startFunc}
	i, ok := kinds[kk]
	if !ok {
		i = int32(len(s.kinds))
		s.kinds = append(s.kinds, k)
		kinds[kk] = i
	}
	s.quiet = append(s.quiet, quietRec{id: id, parent: parent, kind: i})
}

// kindKey is a quietKind as a map key: its stack, interned, by identity.
type kindKey struct {
	reason    string
	inferred  bool
	stack     *stack.Frame
	n         int
	createdBy stack.Frame
	startFunc string
}

// isQuiet says g waited all of a window of d ns without an event.
func isQuiet(g *GoStats, d int64) bool {
	return !g.Exited && g.State == stack.Waiting && g.Total == d && g.Idle == d && g.InState == d &&
		g.Polls == 0 && g.RunTimes == nil && g.SchedDelays == nil && len(g.IdleByReason) <= 1
}

// Duration is how long the slice lasted.
func (s *Slice) Duration() time.Duration { return s.WallEnd.Sub(s.WallStart) }

// Goroutines is the number of goroutines the slice saw.
func (s *Slice) Goroutines() int { return len(s.active) + len(s.quiet) }

// Compose makes the window of span that ends with the last slice (the
// slices in time order): of the slices that end within it, the first cut
// where the window starts (its numbers taken in proportion), or of as much
// of it as the slices cover. Observed says how much of the window they
// traced.
func Compose(parts []*Slice, span time.Duration) *Window {
	if len(parts) == 0 {
		return &Window{Goroutines: map[int64]*GoStats{}}
	}
	last := parts[len(parts)-1]
	from := last.WallEnd.Add(-span)
	i := len(parts) - 1
	for i > 0 && parts[i-1].WallEnd.After(from) {
		i--
	}
	parts = parts[i:]
	c := &composition{parts: parts, start: parts[0].WallStart, end: last.WallEnd, weight: make([]float64, len(parts))}
	var observed time.Duration
	for j, p := range parts {
		c.weight[j] = 1
		if j == 0 && p.WallStart.Before(from) && p.Duration() > 0 {
			// Cut where the window starts: its numbers in proportion.
			c.start = from
			c.weight[j] = float64(p.WallEnd.Sub(from)) / float64(p.Duration())
		}
		observed += time.Duration(c.weight[j] * float64(p.Duration()))
	}
	w := &Window{Start: 0, End: int64(c.end.Sub(c.start)), WallStart: c.start, WallEnd: c.end, Goroutines: map[int64]*GoStats{}}
	w.Observed = int64(observed)
	c.scale = 1
	if observed > 0 && w.End > int64(observed) {
		c.scale = float64(w.End) / float64(observed)
	}
	for _, p := range parts {
		w.Events += p.Events
		w.Truncated = w.Truncated || p.Truncated
	}
	w.Sites = c.sites()
	w.composed = c
	return w
}

// composition is how a composed window makes its goroutines.
type composition struct {
	parts      []*Slice
	weight     []float64 // of each part's numbers: 1, but for a first part cut by the window's start
	start, end time.Time
	scale      float64
}

// cutAfter reports whether every part after part j was cut short: a
// goroutine that had no event before a cut is not in that part (a quiet
// one is told at the end of its generation, which the cut left out), and
// its absence says nothing of its exit.
func (c *composition) cutAfter(j int) bool {
	for _, p := range c.parts[j+1:] {
		if !p.Truncated {
			return false
		}
	}
	return true
}

// rec is one slice's record of a goroutine: its GoStats, or a quiet one.
type rec struct {
	part  int
	g     *GoStats  // an active goroutine
	q     *quietRec // a quiet one
	quiet GoStats   // q's numbers, made when needed
	idle  [1]ReasonTime
}

// cursor walks one slice's goroutines in ID order.
type cursor struct {
	s      *Slice
	ai, qi int
}

func (c *cursor) peek() (int64, bool) {
	a, q := int64(math.MaxInt64), int64(math.MaxInt64)
	if c.ai < len(c.s.active) {
		a = c.s.active[c.ai].ID
	}
	if c.qi < len(c.s.quiet) {
		q = c.s.quiet[c.qi].id
	}
	if a == math.MaxInt64 && q == math.MaxInt64 {
		return 0, false
	}
	return min(a, q), true
}

// take returns the record of id, which peek returned, and moves past it.
func (c *cursor) take(id int64, part int, r *rec) {
	*r = rec{part: part}
	if c.ai < len(c.s.active) && c.s.active[c.ai].ID == id {
		r.g = &c.s.active[c.ai]
		c.ai++
	}
	if c.qi < len(c.s.quiet) && c.s.quiet[c.qi].id == id {
		if r.g == nil {
			r.q = &c.s.quiet[c.qi]
		}
		c.qi++
	}
}

// all yields the composed goroutines in ID order, each made in scratch.
func (c *composition) all(yield func(*GoStats) bool) {
	curs := make([]cursor, len(c.parts))
	for i, p := range c.parts {
		curs[i] = cursor{s: p}
	}
	recs := make([]rec, 0, len(c.parts))
	var scratch GoStats
	var idle []ReasonTime
	for {
		id, any := int64(math.MaxInt64), false
		for i := range curs {
			if x, ok := curs[i].peek(); ok && x < id {
				id, any = x, true
			}
		}
		if !any {
			return
		}
		recs = recs[:0]
		for i := range curs {
			if x, ok := curs[i].peek(); ok && x == id {
				recs = append(recs, rec{})
				curs[i].take(id, i, &recs[len(recs)-1])
			}
		}
		idle = c.merge(id, recs, &scratch, idle[:0])
		if !yield(&scratch) {
			return
		}
	}
}

// get makes goroutine id's numbers, or returns nil when no slice saw it.
func (c *composition) get(id int64) *GoStats {
	var recs []rec
	for i, p := range c.parts {
		r := rec{part: i}
		if j, ok := slices.BinarySearchFunc(p.active, id, func(g GoStats, id int64) int { return cmp.Compare(g.ID, id) }); ok {
			r.g = &p.active[j]
		} else if j, ok := slices.BinarySearchFunc(p.quiet, id, func(q quietRec, id int64) int { return cmp.Compare(q.id, id) }); ok {
			r.q = &p.quiet[j]
		} else {
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}
	g := new(GoStats)
	c.merge(id, recs, g, nil)
	return g
}

// stack is get(id)'s Stack, or its StretchStack, as merge sets them: the
// last stack a slice recorded; the stack of the first slice's longest
// stretch, the longest of all.
func (c *composition) stack(id int64, stretch bool) []stack.Frame {
	var stk []stack.Frame
	var longest int64
	for _, p := range c.parts {
		if j, ok := slices.BinarySearchFunc(p.active, id, func(g GoStats, id int64) int { return cmp.Compare(g.ID, id) }); ok {
			g := &p.active[j]
			switch {
			case stretch && g.LongestStretch > longest:
				longest, stk = g.LongestStretch, g.StretchStack
			case !stretch && len(g.Stack) > 0:
				stk = g.Stack
			}
		} else if j, ok := slices.BinarySearchFunc(p.quiet, id, func(q quietRec, id int64) int { return cmp.Compare(q.id, id) }); ok && !stretch {
			if k := p.kinds[p.quiet[j].kind].stack; len(k) > 0 {
				stk = k
			}
		}
	}
	return stk
}

// count is how many goroutines the last slice saw: about the window's.
func (c *composition) count() int {
	return c.parts[len(c.parts)-1].Goroutines()
}

// stats returns r's numbers.
func (c *composition) stats(r *rec) *GoStats {
	if r.g != nil {
		return r.g
	}
	p := c.parts[r.part]
	k := &p.kinds[r.q.kind]
	d := int64(p.Duration())
	r.quiet = GoStats{ID: r.q.id, State: stack.Waiting, WaitReason: k.reason, ReasonInferred: k.inferred,
		InState: d, Stack: k.stack, CreatedBy: k.createdBy, ParentID: r.q.parent, StartFunc: k.startFunc,
		Total: d, Idle: d}
	if d > 0 {
		r.idle[0] = ReasonTime{Reason: k.reason, NS: d}
		r.quiet.IdleByReason = r.idle[:]
	}
	return &r.quiet
}

// merge sets g to goroutine id's numbers over the window, from its records
// in the slices that saw it, in time order. g's IdleByReason is appended
// to idle, which merge returns.
func (c *composition) merge(id int64, recs []rec, g *GoStats, idle []ReasonTime) []ReasonTime {
	*g = GoStats{ID: id}
	lastPart := len(c.parts) - 1
	var runs, delays *Hist
	ownRuns, ownDelays := false, false
	for i := range recs {
		s := c.stats(&recs[i])
		wt := c.weight[recs[i].part]
		g.Total += scaled(s.Total, wt)
		g.Busy += scaled(s.Busy, wt)
		g.Sched += scaled(s.Sched, wt)
		g.Idle += scaled(s.Idle, wt)
		g.Syscall += scaled(s.Syscall, wt)
		g.Polls += scaled(s.Polls, wt)
		g.LongestRun = max(g.LongestRun, s.LongestRun)
		if s.LongestStretch > g.LongestStretch {
			g.LongestStretch, g.StretchStack = s.LongestStretch, s.StretchStack
		}
		runs, ownRuns = mergeHist(runs, ownRuns, s.RunTimes)
		delays, ownDelays = mergeHist(delays, ownDelays, s.SchedDelays)
		for _, r := range s.IdleByReason {
			r.NS = scaled(r.NS, wt)
			if j := slices.IndexFunc(idle, func(x ReasonTime) bool { return x.Reason == r.Reason }); j >= 0 {
				idle[j].NS += r.NS
			} else {
				idle = append(idle, r)
			}
		}
		if len(s.Stack) > 0 {
			g.Stack = s.Stack
		}
		if g.CreatedBy.IsZero() {
			g.CreatedBy, g.ParentID = s.CreatedBy, s.ParentID
		}
		if g.StartFunc == "" {
			g.StartFunc = s.StartFunc
		}
	}
	g.RunTimes, g.SchedDelays = runs, delays
	lastRec := &recs[len(recs)-1]
	last := c.stats(lastRec)
	if (lastRec.part != lastPart && !c.cutAfter(lastRec.part)) || last.Exited {
		// It exited: in its last slice, or in the gap after it.
		end := c.parts[lastRec.part].WallEnd
		if last.Exited {
			end = c.parts[lastRec.part].WallStart.Add(time.Duration(last.Ended))
		}
		g.Exited, g.Ended = true, max(int64(end.Sub(c.start)), 0)
	} else {
		g.State, g.WaitReason, g.ReasonInferred = last.State, last.WaitReason, last.ReasonInferred
		g.InState = last.InState
		if last.InState == int64(c.parts[lastRec.part].Duration()) {
			// In that state all its last slice: and before, as long as the
			// slices before saw it there, the gaps between them included.
			from := c.parts[lastRec.part].WallStart
			for j := len(recs) - 2; j >= 0; j-- {
				r := &recs[j]
				s := c.stats(r)
				p := c.parts[r.part]
				if r.part != recs[j+1].part-1 || s.State != last.State || s.WaitReason != last.WaitReason ||
					!sameWait(s.Stack, last.Stack) {
					break
				}
				from = p.WallStart.Add(time.Duration(int64(p.Duration()) - s.InState))
				if s.InState < int64(p.Duration()) {
					break
				}
			}
			g.InState = min(int64(c.end.Sub(from)), int64(c.end.Sub(c.start)))
		}
	}
	// Scaled to the window: the times add up to its length, and rates and
	// shares are those of the observed time.
	k := c.scale
	g.Total = min(scaled(g.Total, k), int64(c.end.Sub(c.start)))
	g.Busy, g.Sched, g.Idle, g.Syscall = scaled(g.Busy, k), scaled(g.Sched, k), scaled(g.Idle, k), scaled(g.Syscall, k)
	g.Polls = scaled(g.Polls, k)
	for j := range idle {
		idle[j].NS = scaled(idle[j].NS, k)
	}
	slices.SortFunc(idle, func(a, b ReasonTime) int { return cmp.Compare(b.NS, a.NS) })
	g.IdleByReason = idle
	// Rounding must not break Busy+Sched+Idle+Syscall == Total <= the
	// window: the largest part takes up the difference.
	g.Total = g.Busy + g.Sched + g.Idle + g.Syscall
	if over := g.Total - int64(c.end.Sub(c.start)); over > 0 {
		parts := []*int64{&g.Busy, &g.Sched, &g.Idle, &g.Syscall}
		largest := slices.MaxFunc(parts, func(a, b *int64) int { return cmp.Compare(*a, *b) })
		*largest -= min(over, *largest)
		if largest == &g.Idle && len(idle) > 0 {
			idle[0].NS -= min(over, idle[0].NS)
		}
		g.Total = g.Busy + g.Sched + g.Idle + g.Syscall
	}
	return idle
}

// sameWait says two stacks wait at one place: the same stack, interned,
// or the same top frame in user code (a status event's stack and a
// block's can differ in the runtime's frames).
func sameWait(a, b []stack.Frame) bool {
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return true
	}
	return stack.Location(a, stack.Frame{}) == stack.Location(b, stack.Frame{})
}

func scaled(v int64, k float64) int64 {
	if k == 1 {
		return v
	}
	return int64(math.Round(float64(v) * k))
}

// sites merges the slices' wait sites: times and wake-ups summed and
// scaled, the goroutines waiting there now from the last slice.
func (c *composition) sites() []*SiteStats {
	type key struct {
		reason string
		loc    stack.Frame
	}
	by := map[key]*SiteStats{}
	var order []key
	lastPart := len(c.parts) - 1
	for i, p := range c.parts {
		for _, s := range p.sites {
			k := key{s.Reason, s.Location}
			m := by[k]
			if m == nil {
				m = &SiteStats{Reason: s.Reason, Location: s.Location}
				by[k] = m
				order = append(order, k)
			}
			m.WaitNS += scaled(s.WaitNS, c.weight[i])
			m.Wakeups += scaled(s.Wakeups, c.weight[i])
			if i == lastPart {
				m.Waiting, m.Tasks = s.Waiting, s.Tasks
			}
			if len(s.Waker) > 0 {
				m.Waker = s.Waker
			}
			for _, w := range s.Wakers {
				if j := slices.IndexFunc(m.Wakers, func(x WakerSite) bool { return x.Location == w.Location }); j >= 0 {
					m.Wakers[j].Count += w.Count
				} else {
					m.Wakers = append(m.Wakers, w)
				}
			}
		}
	}
	out := make([]*SiteStats, 0, len(order))
	for _, k := range order {
		m := by[k]
		m.WaitNS, m.Wakeups = scaled(m.WaitNS, c.scale), scaled(m.Wakeups, c.scale)
		slices.SortFunc(m.Wakers, func(a, b WakerSite) int { return cmp.Compare(b.Count, a.Count) })
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b *SiteStats) int { return cmp.Compare(b.WaitNS, a.WaitNS) })
	return out
}

// composedAll is All for a composed window.
func (w *Window) composedAll() iter.Seq[*GoStats] { return w.composed.all }

// mergeHist adds o to h, sharing o while it is the only one: own says h is
// the caller's to add to.
func mergeHist(h *Hist, own bool, o *Hist) (*Hist, bool) {
	if o == nil || o.Count() == 0 {
		return h, own
	}
	if h == nil {
		return o, false
	}
	if !own {
		n := new(Hist)
		*n = *h
		h = n
	}
	h.Merge(o)
	return h, true
}
