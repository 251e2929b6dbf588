package diagnose

import (
	"fmt"
	"slices"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var spinRule = &rule{
	id:         "select-spin",
	lesson:     "tokio_multi_channels",
	help:       "a goroutine loops over a select or receive that never blocks (a closed channel received from again and again) and keeps a core busy without waiting once",
	thresholds: &spinThresholds,
	persist:    2,
	check:      checkSpin,
}

// The thresholds of select-spin, in the order of its docs.
var (
	spinThresholds thresholdSet
	spinMinOnCPU   = spinThresholds.ratio("min_on_cpu", 0.8, "share of the window the goroutine is running or runnable")
	spinMaxIdle    = spinThresholds.ratio("max_idle", 0.02, "share of the window it may spend blocked")
)

// chanOps are the runtime's channel operations, as stacks name them.
var chanOps = []string{"runtime.selectgo", "runtime.chanrecv", "runtime.chanrecv1", "runtime.chanrecv2",
	"runtime.selectnbrecv", "runtime.chansend", "runtime.chansend1", "runtime.selectnbsend", "runtime.closechan"}

// A select whose case is always ready never blocks: a receive from a
// closed channel returns at once, with the zero value, every time. A loop
// around it spins: on CPU the whole window (split only by preemption), never
// waiting, and caught in the channel operation whenever it is preempted
// there. A goroutine that consumes a queue that is never empty looks alike,
// except that its producers wait for it (the queue is full): one whose
// receives keep others waiting for long is left alone.
func checkSpin(c *check) []found {
	const id = "select-spin"
	minOnCPU, maxIdle := c.ratio(spinMinOnCPU), c.ratio(spinMaxIdle)
	// The wait of the goroutines each function woke, in the window.
	wokeWait := map[string]int64{}
	for i := range c.snap.Sites {
		s := &c.snap.Sites[i]
		if !servable(s) {
			continue
		}
		for _, w := range s.Wakers {
			wokeWait[w.Location.Function] += s.WaitNS
		}
	}
	var out []found
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if c.isClaimed(t.ID) || !userTask(t) || t.Stats.TotalNS < c.window*9/10 {
			continue
		}
		if share(t.Stats.BusyNS+t.Stats.SchedNS, c.window) < minOnCPU || share(t.Stats.IdleNS, t.Stats.TotalNS) > maxIdle {
			continue
		}
		var stacks [][]api.Frame
		if c.in.StretchStack != nil {
			stacks = append(stacks, c.in.StretchStack(t.ID))
		}
		// Caught waiting, its stack is where it blocked, which a spinner
		// never does: a computation that came to rest in a select.
		if t.State != "waiting" {
			stacks = append(stacks, c.stack(t.ID))
		}
		var op, site api.Frame
		for _, st := range stacks {
			if o, s, ok := chanOpCall(st); ok {
				op, site = o, s
				break
			}
		}
		if site.Function == "" || wokeWait[site.Function] > c.window/4 {
			continue
		}
		onCPU := share(t.Stats.BusyNS+t.Stats.SchedNS, c.window)
		what := "a select"
		if op.Function != "runtime.selectgo" {
			what = "a channel operation"
		}
		c.claim(id, t.ID)
		out = append(out, found{key: siteKey("", site), finding: api.Finding{
			Title: fmt.Sprintf("spinning select at %s: on CPU %s of the time, never blocking", format.Frame(site), format.Percent(onCPU)),
			Message: fmt.Sprintf("Goroutine %d (%s) was running or runnable for %s of %s and blocked for %s of it, and the "+
				"scheduler preempted it in %s at %s (%s): %s that never waits, in a loop, while nobody waits for it "+
				"either. A receive from a closed channel is ready at once, every time; so is a default case.",
				t.ID, t.Name, format.Percent(onCPU), format.Nanos(c.window), format.Percent(share(t.Stats.IdleNS, t.Stats.TotalNS)),
				what, format.Frame(site), op.Function, what),
			Evidence: api.Evidence{Tasks: []int64{t.ID}, Sites: []api.Frame{site},
				Figures: map[string]float64{"on_cpu_share": onCPU, "polls": float64(t.Stats.Polls)}},
			Advice: "Receive with ok (`v, ok := <-ch`) and, once ok is false, set the channel variable to nil: a nil " +
				"channel's case is never ready, so the select blocks on the others. Leave the loop when every input " +
				"is closed, and never add a default case to a select in a loop that should wait.",
		}})
	}
	return out
}

// chanOpCall finds a channel operation in stack and the user frame that
// called it.
func chanOpCall(stack []api.Frame) (op, caller api.Frame, ok bool) {
	for i, f := range stack {
		if !slices.Contains(chanOps, f.Function) {
			continue
		}
		if u, found := userFrame(stack[i+1:]); found {
			return f, u, true
		}
	}
	return api.Frame{}, api.Frame{}, false
}
