package diagnose

import (
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var threadRule = &rule{
	id:         "thread-growth",
	lesson:     "thread_to_tokio",
	help:       "the OS thread count keeps climbing: goroutines locked to threads (LockOSThread without Unlock) or stuck in system calls",
	thresholds: &threadThresholds,
	check:      checkThreads,
}

// The thresholds of thread-growth, in the order of its docs.
var (
	threadThresholds thresholdSet
	threadMinGrowth  = threadThresholds.count("min_growth", 20, "new OS threads over the last 30s")
)

func checkThreads(c *check) []found {
	const id = "thread-growth"
	now := c.e.hist.latest()
	before, ok := c.e.hist.ago(30 * time.Second)
	if !ok || now.threads == 0 {
		return nil
	}
	low := now.threads
	for _, p := range c.e.hist.points {
		if now.at.Sub(p.at) <= 30*time.Second && p.threads > 0 {
			low = min(low, p.threads)
		}
	}
	grown := now.threads - low
	if float64(grown) < c.num(threadMinGrowth) || now.threads <= before.threads {
		return nil
	}
	dt := now.at.Sub(before.at)
	f := api.Finding{
		Title: fmt.Sprintf("OS thread growth: %d threads, %d more in %s", now.threads, grown, format.Duration(dt)),
		Evidence: api.Evidence{Figures: map[string]float64{"threads": float64(now.threads), "growth": float64(grown),
			"gomaxprocs": float64(now.gomaxprocs)}},
		Advice: "Pair every runtime.LockOSThread with UnlockOSThread (defer it), keep locked goroutines few and long-lived, " +
			"and avoid blocking system calls in many goroutines at once: every locked or blocked goroutine holds a thread.",
	}
	// The cause: goroutines locked to their threads, or in system calls,
	// grouped by where they were created.
	type cause struct {
		created, loc api.Frame
		ids          []int64
		locked       bool
	}
	var causes []*cause
	knowLocks := false
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.Locked {
			knowLocks = true
		}
		if !userTask(t) || !t.Locked && t.State != "syscall" {
			continue
		}
		i := slices.IndexFunc(causes, func(x *cause) bool { return x.created == t.CreatedBy && x.locked == t.Locked })
		if i < 0 {
			causes = append(causes, &cause{created: t.CreatedBy, loc: t.Location, locked: t.Locked})
			i = len(causes) - 1
		}
		causes[i].ids = append(causes[i].ids, t.ID)
	}
	slices.SortFunc(causes, func(a, b *cause) int { return len(b.ids) - len(a.ids) })
	if len(causes) > 0 {
		top := causes[0]
		what := "locked to their OS threads"
		if !top.locked {
			what = "in system calls"
		}
		f.Message = fmt.Sprintf("The process has %d OS threads, %d more than %s ago (GOMAXPROCS is %d). %d goroutines are %s, "+
			"created at %s and now at %s: each keeps a thread of its own.", now.threads, grown, format.Duration(dt),
			now.gomaxprocs, len(top.ids), what, format.Frame(top.created), format.Frame(top.loc))
		f.Evidence.Tasks = capIDs(top.ids, 100)
		f.Evidence.Sites = []api.Frame{top.loc, top.created}
		f.Evidence.Figures["locked_goroutines"] = float64(len(top.ids))
		c.claim(id, top.ids...)
	} else {
		f.Message = fmt.Sprintf("The process has %d OS threads, %d more than %s ago (GOMAXPROCS is %d).",
			now.threads, grown, format.Duration(dt), now.gomaxprocs)
	}
	if !knowLocks {
		f.Evidence.Missing = append(f.Evidence.Missing, "a recent goroutine dump: it tells which goroutines are locked to their threads")
	}
	return []found{{key: "threads", finding: f}}
}
