package diagnose

import (
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var suspectRule = &rule{
	id:     "leak-suspect",
	lesson: "tokio_select",
	help: "where the runtime cannot prove leaks (no goroutineleak profile: Go 1.26 without the experiment, a gops agent), goroutines " +
		"blocked for long with no wake-up, whose starter has returned and that wait for no goroutine of theirs: suspects, " +
		"with how to get the proof; idle servers and workers waiting for work are left alone",
	thresholds: &suspectThresholds,
	check:      checkSuspect,
}

// The thresholds of leak-suspect, in the order of its docs.
var (
	suspectThresholds thresholdSet
	suspectStuckFor   = suspectThresholds.duration("stuck_for", 10*time.Second, "how long a goroutine must have been blocked at the same place with no wake-up there")
)

// suspectReasons are the waits a goroutine can stay in for good: channel
// operations, selects, locks, WaitGroups and Conds. Sleeps, timers, I/O
// and system calls end on their own or on the outside world.
func suspectReason(r string) bool { return isChanWait(r) || isLockWait(r) }

// proofKnown reports whether the source gives the leak detection's word:
// the goroutineleak profile was read, or a dump carries its marks.
func (c *check) proofKnown() bool {
	if c.snap.Process.Leaked >= 0 {
		return true
	}
	return slices.ContainsFunc(c.snap.Tasks, func(t api.Task) bool { return t.Leaked })
}

// Without the leak detection, a leak that happened once or does not grow
// looks like any goroutine at rest. What sets a suspect apart from an
// idle server or a worker waiting for work: it has waited at one place
// for long with nobody woken there, the goroutine that started it has
// returned (fire and forget: nobody is left to use what it waits for, while
// a pool's or a server's starter lives on), none of the goroutines it
// started is alive (a parent waiting for its children is not stuck), it
// is not a receive in a for-range loop (a consumer waiting for its next
// item), and it runs user code, not a server's internals.
func checkSuspect(c *check) []found {
	const id = "leak-suspect"
	if c.proofKnown() {
		return nil
	}
	stuckFor := c.dur(suspectStuckFor)
	woken := map[string]bool{}
	for _, s := range c.snap.Sites {
		if s.Wakeups > 0 {
			woken[siteKey(s.Reason, s.Location)] = true
		}
	}
	hasChild := map[int64]bool{}
	for i := range c.snap.Tasks {
		if p := c.snap.Tasks[i].ParentID; p != 0 {
			hasChild[p] = true
		}
	}
	var suspects []*api.Task
	longest := map[int64]time.Duration{}
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.State != "waiting" || !suspectReason(t.WaitReason) || c.isClaimed(t.ID) || !userTask(t) || hasChild[t.ID] {
			continue
		}
		if isStdFunc(t.Location.Function) && (t.CreatedBy.Function == "" || isStdFunc(t.CreatedBy.Function)) {
			continue // a server's or the standard library's own goroutine
		}
		if !c.starterReturned(t) {
			continue // its starter lives on (or the source cannot say)
		}
		d := c.e.hist.stuckFor(t.ID, c.now)
		if t.WaitMinutes > 0 {
			d = max(d, time.Duration(t.WaitMinutes)*time.Minute)
		}
		if d < stuckFor || woken[siteKey(t.WaitReason, t.Location)] {
			continue
		}
		if waitsForNextItem(t, c.stack(t.ID)) {
			continue
		}
		suspects = append(suspects, t)
		longest[t.ID] = d
	}
	var out []found
	for _, g := range c.bugGroups(suspects) {
		var sites []api.Frame
		for _, s := range g.sites {
			sites = append(sites, s.loc)
		}
		for _, id := range g.ids {
			g.longest = max(g.longest, longest[id])
		}
		first := g.sites[0]
		title := fmt.Sprintf("possible goroutine leak (unproven): %s blocked in %s at %s for %s or more",
			goroutines(len(g.ids)), first.reason, format.Frame(first.loc), format.Duration(g.longest))
		if len(g.sites) > 1 {
			title = fmt.Sprintf("possible goroutine leak (unproven): %s blocked at %d sites, %s at %s and more, for %s or more",
				goroutines(len(g.ids)), len(g.sites), first.reason, format.Frame(first.loc), format.Duration(g.longest))
		}
		f := api.Finding{
			Severity: Info,
			Title:    title,
			Message: fmt.Sprintf("%s (%s) %s waited for %s or more with nothing woken where %s, the goroutine that "+
				"started %s has returned, and none that %s started is alive: nothing in sight will wake %s. This is a "+
				"suspicion, not a proof: the target serves no goroutineleak profile, whose leak detection would prove "+
				"%s leaked (or clear %s). Build the program with Go 1.27, which has the profile on by default, or "+
				"with GOEXPERIMENT=goroutineleakprofile on Go 1.26, and serve net/http/pprof (a gops agent serves no such profile).",
				goroutines(len(g.ids)), siteList(g.sites, 5), verb(len(g.ids), "has", "have"), format.Duration(g.longest),
				verb(len(g.ids), "it waits", "they wait"), verb(len(g.ids), "it", "them"), verb(len(g.ids), "it", "they"),
				verb(len(g.ids), "it", "them"), verb(len(g.ids), "it", "them"), verb(len(g.ids), "it", "them")),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: append(sites, g.creators...),
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "stuck_seconds": g.longest.Seconds(), "sites": float64(len(g.sites))},
				Missing: []string{"goroutineleak profile (Go 1.27, or GOEXPERIMENT=goroutineleakprofile on Go 1.26): it proves which blocked goroutines can never run again"}},
			Advice: "If nothing should still be waiting there, make sure every blocked operation can complete: give a reply " +
				"channel a buffer of one, select on ctx.Done() beside the operation, and release locks on every path. " +
				"Then get the proof: run the target with the goroutineleak profile and look again.",
		}
		c.claim(id, g.ids...)
		out = append(out, found{key: g.key, finding: f})
	}
	return out
}

// waitsForNextItem reports whether a goroutine waits to receive its next
// item in a for-range loop over a channel (or a receive with ok): a
// consumer at rest, not a goroutine waiting for one reply.
func waitsForNextItem(t *api.Task, stack []api.Frame) bool {
	if t.WaitReason != "chan receive" {
		return false
	}
	for _, f := range stack {
		switch f.Function {
		case "runtime.chanrecv2":
			return true
		case "runtime.chanrecv1":
			return false
		}
	}
	// No stack to tell: a receive may be a consumer's.
	return true
}

// starterReturned reports whether the function that started t has
// returned: its parent goroutine is gone, or the parent no longer runs
// that function (a request's handler that returned while its connection's
// goroutine lives on).
func (c *check) starterReturned(t *api.Task) bool {
	if t.ParentID == 0 {
		return false
	}
	p := c.task(t.ParentID)
	if p == nil {
		return true
	}
	if t.CreatedBy.Function == "" {
		return false
	}
	// A receive or a select may be a worker's, waiting for what its
	// starter's caller still sends (a pool a constructor started): only
	// per-request work counts, started by a handler whose goroutine is
	// back in the server's code.
	if (t.WaitReason == "chan receive" || t.WaitReason == "select") && !isStdFunc(p.Location.Function) {
		return false
	}
	st := c.stack(p.ID)
	if len(st) == 0 {
		return false
	}
	_, in := frameIn(st, t.CreatedBy.Function)
	return !in
}
