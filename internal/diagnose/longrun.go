package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var longRunRule = &rule{
	id:         "long-run",
	lesson:     "tokio_yield",
	help:       "a goroutine that others wait on computes for a long stretch without blocking, so they wait that long: tokio-console's never-yielded",
	thresholds: &longRunThresholds,
	persist:    2,
	check:      checkLongRun,
}

// The thresholds of long-run, in the order of its docs.
var (
	longRunThresholds thresholdSet
	longRunMinStretch = longRunThresholds.duration("min_stretch", 100*time.Millisecond, "time on CPU between two waits")
)

func checkLongRun(c *check) []found {
	const id = "long-run"
	minStretch := int64(c.dur(longRunMinStretch))
	var out []found
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if c.isClaimed(t.ID) || !userTask(t) || t.Stats.LongestStretchNS < minStretch {
			continue
		}
		var stretch []api.Frame
		if c.in.StretchStack != nil {
			stretch = c.in.StretchStack(t.ID)
		}
		if inspectorStack(stretch) || inspectorStack(c.stack(t.ID)) {
			continue // the inspector's own work, building a snapshot
		}
		if _, _, ok := chanOpCall(stretch); ok {
			// Preempted inside a channel operation in its longest stretch: a
			// loop that polls channels (select-spin's and busy-poll's to
			// name, even in a window where their thresholds fall short), or
			// a goroutine the OS stopped mid-select on a loaded machine; a
			// computation is preempted where it computes.
			continue
		}
		// A goroutine meant to compute (a worker of a pool) may run long;
		// the bug is one that others wait on: a site whose waiters it wakes.
		victim, waited, servedNow := c.waitsOn(t, stretch)
		if victim == nil {
			continue
		}
		if servedNow && share(t.Stats.IdleNS, t.Stats.TotalNS) < c.ratio(spinMaxIdle) {
			// It never blocked in the window, yet woke its waiters in it: it
			// served them all along (a consumer kept busy, or a spinning
			// select whose producers wait while the OS runs something
			// else), not a computation that keeps them waiting.
			continue
		}
		sites := topUserFrames(stretch, 2)
		if len(sites) == 0 && c.in.StretchStack != nil {
			// The source records where stretches compute, but this one's
			// preemptions left no stack: its latest stack is where it ran
			// after, not the computation. Wait for a window that shows it.
			continue
		}
		if len(sites) == 0 {
			sites = c.callSites(t, 1)
		}
		if len(sites) == 0 {
			continue
		}
		c.claim(id, t.ID)
		out = append(out, found{key: fmt.Sprint(t.ID), finding: api.Finding{
			Title: fmt.Sprintf("long run without blocking: %s on CPU in %s", format.Nanos(t.Stats.LongestStretchNS), t.Name),
			Message: fmt.Sprintf("Goroutine %d (%s, at %s) ran for %s without blocking once (the scheduler preempted it, "+
				"so no run was longer than %s, but it never waited), while goroutines %s, which it serves, waited "+
				"%s in the window.", t.ID, t.Name, format.Frame(sites[0]), format.Nanos(t.Stats.LongestStretchNS), format.Nanos(t.Stats.LongestRunNS),
				victimPlace(victim), format.Nanos(waited)),
			Evidence: api.Evidence{Tasks: append([]int64{t.ID}, victim.Tasks...), Sites: append(sites, knownSites(victim.Location)...),
				Figures: map[string]float64{"longest_stretch_ms": float64(t.Stats.LongestStretchNS) / 1e6, "busy_share": share(t.Stats.BusyNS, t.Stats.TotalNS)}},
			Advice: "Move the long computation off the goroutine that must stay responsive (a worker goroutine or pool that " +
				"sends the result back), or split it into chunks between which the loop serves its channels.",
		}})
	}
	return out
}

// waitsOn returns a site whose waiters t wakes (its code is among the
// site's wakers) and that waited at least the rule's stretch in the window,
// and whether t woke them within the window (not only before, within the
// history).
func (c *check) waitsOn(t *api.Task, stretch []api.Frame) (*api.Site, int64, bool) {
	// Only the innermost user code counts: wrappers further down the stack
	// (a supervisor's run loop, say) are shared by every goroutine.
	funcs := map[string]bool{}
	for _, f := range append(topUserFrames(c.stack(t.ID), 2), topUserFrames(stretch, 2)...) {
		funcs[f.Function] = true
	}
	minStretch := int64(c.dur(longRunMinStretch))
	var best *api.Site
	var now bool
	for i := range c.snap.Sites {
		s := &c.snap.Sites[i]
		if s.WaitNS < minStretch || (best != nil && s.WaitNS <= best.WaitNS) {
			continue
		}
		if !servable(s) {
			continue
		}
		for _, w := range s.Wakers {
			if funcs[w.Location.Function] && !isLibraryFunc(w.Location.Function) {
				best, now = s, true
				break
			}
		}
		if best != s {
			// Computing the whole window, it woke nobody in it: the sites
			// it woke before, within the history, are still its.
			for fn := range c.e.hist.wokeBy[siteKey(s.Reason, s.Location)] {
				if funcs[fn] {
					best, now = s, false
					break
				}
			}
		}
	}
	if best == nil {
		return nil, 0, false
	}
	return best, best.WaitNS, now
}

// servable reports whether the goroutines waiting at s can be kept waiting
// by a goroutine of the program. The runtime's own (the scavenger, the
// GC's workers) and the inspector's cannot, nor a sleep, which only its
// timer ends: a timer that fires is counted as woken by whatever goroutine
// ran at the time.
func servable(s *api.Site) bool {
	fn := s.Location.Function
	return s.Reason != "sleep" && (fn == "" || !isRuntimeFunc(fn) && !isInspectorFunc(fn))
}

// inspectorStack reports whether a stack runs the inspector's own code.
func inspectorStack(stack []api.Frame) bool {
	for _, f := range stack {
		if isInspectorFunc(f.Function) {
			return true
		}
	}
	return false
}

// victimPlace is where a long run's victims wait, for its message. Waits
// that began before the trace window have no stack in it: their reason is
// all the window knows.
func victimPlace(s *api.Site) string {
	if s.Location.Function == "" && s.Location.File == "" {
		return fmt.Sprintf("waiting in %s (since before the window: the trace did not record where)", s.Reason)
	}
	return "at " + format.Frame(s.Location)
}

// knownSites is f as evidence, or nothing when f is unknown.
func knownSites(f api.Frame) []api.Frame {
	if f.Function == "" && f.File == "" {
		return nil
	}
	return []api.Frame{f}
}
