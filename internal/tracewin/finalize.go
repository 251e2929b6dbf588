package tracewin

import (
	"cmp"
	"slices"
	"time"

	"golang.org/x/exp/trace"

	"github.com/inspectd/inspectd/internal/stack"
)

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
		stats = append(stats, GoStats{})
		var ok bool
		if idleBy, ok = b.goStats(g, start, sites, &stats[len(stats)-1], idleBy); !ok {
			stats = stats[:len(stats)-1]
			continue
		}
		gs := &stats[len(stats)-1]
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

// goStats sets gs to goroutine g's numbers over the window that starts at
// start, closing its open interval, and counts it at its site in sites. Its
// IdleByReason is appended to idleBy, which goStats returns. It returns
// false for a goroutine gone before the window.
func (b *WindowBuilder) goStats(g *goState, start trace.Time, sites []SiteStats, gs *GoStats, idleBy []ReasonTime) ([]ReasonTime, bool) {
	if g.exited && g.ended < start {
		return idleBy, false
	}
	*gs = GoStats{ID: int64(g.id)}
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
	return idleBy, true
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

// stackOf returns the frames of a stack; nil for none.
func (b *WindowBuilder) stackOf(s trace.Stack) []stack.Frame {
	if s == trace.NoStack {
		return nil
	}
	return b.framesOf(s)
}

// origin sets a goroutine's latest stack, the function it started in (of
// its creation's stack, else the root of the first stack seen of it, else
// of the latest), and who created it.
func (b *WindowBuilder) origin(gs *GoStats, g *goState) {
	start, first, creator := trace.NoStack, trace.NoStack, trace.NoStack
	if a := g.act; a != nil {
		start, first, creator = a.start, a.first, a.creator
	}
	setOrigin(gs, b.stackOf(g.stack), b.stackOf(start), b.stackOf(first), b.stackOf(creator), g.parent)
}

// setOrigin sets what origin tells from the frames of a goroutine's
// latest, start, first and creator's stacks.
func setOrigin(gs *GoStats, stack, start, first, creator []stack.Frame, parent trace.GoID) {
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
				loc := stack.Location(b.frames[wc.frames], stack.Frame{})
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
func stateOfTrace(s trace.GoState) stack.State {
	switch s {
	case trace.GoRunning:
		return stack.Running
	case trace.GoRunnable:
		return stack.Runnable
	case trace.GoWaiting:
		return stack.Waiting
	case trace.GoSyscall:
		return stack.Syscall
	}
	return 0
}
