package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var waitGroupRule = &rule{
	id:         "waitgroup-stuck",
	lesson:     "tokio_join",
	help:       "a goroutine waits in WaitGroup.Wait for goroutines it started that have all returned: an Add whose Done never comes",
	thresholds: &waitGroupThresholds,
	check:      checkWaitGroup,
}

// The thresholds of waitgroup-stuck, in the order of its docs.
var (
	waitGroupThresholds thresholdSet
	waitGroupStuckFor   = waitGroupThresholds.duration("stuck_for", 2*time.Second, "how long the goroutine must have waited in WaitGroup.Wait")
)

// waitReasonWaitGroup is the wait reason of a goroutine in WaitGroup.Wait.
const waitReasonWaitGroup = "sync.WaitGroup.Wait"

// A joiner, a goroutine that starts goroutines and waits for them with a
// WaitGroup, waits for good when one of them returns without its Done: the
// count never reaches zero. What shows is a goroutine in WaitGroup.Wait
// that the engine has seen start goroutines, none of which is alive any
// more: nothing it started can bring the count down. Others stuck at the
// same Wait, whose goroutines no snapshot saw, are the same bug.
func checkWaitGroup(c *check) []found {
	const id = "waitgroup-stuck"
	stuckFor := c.dur(waitGroupStuckFor)
	h := &c.e.hist
	// Goroutines with a child alive now: their Wait may still return.
	hasChild := map[int64]bool{}
	for i := range c.snap.Tasks {
		if p := c.snap.Tasks[i].ParentID; p != 0 {
			hasChild[p] = true
		}
	}
	type group struct {
		loc      api.Frame
		ids      []int64
		proven   int
		children map[string]api.Frame // where the goroutines it waited for were created
		longest  time.Duration
		leaked   int
	}
	// A snapshot that lacks some of the process's goroutines (a heavy
	// target's, built without a full dump) cannot show that none of a
	// joiner's goroutines is alive: only the leak detection's word counts then.
	// (Goroutines come and go between the count and the list: a few
	// missing are churn, not a list cut short.)
	missing := c.snap.Process.Goroutines - int64(len(c.snap.Tasks))
	incomplete := missing > 50 && missing*10 > c.snap.Process.Goroutines
	groups := map[string]*group{}
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.State != "waiting" || t.WaitReason != waitReasonWaitGroup || c.isClaimed(t.ID) || !userTask(t) || hasChild[t.ID] {
			continue
		}
		if incomplete && !t.Leaked {
			continue
		}
		d := h.stuckFor(t.ID, c.now)
		if d < stuckFor && !t.Leaked {
			continue
		}
		key := siteKey(t.WaitReason, t.Location)
		g := groups[key]
		if g == nil {
			g = &group{loc: t.Location, children: map[string]api.Frame{}}
			groups[key] = g
		}
		g.ids = append(g.ids, t.ID)
		g.longest = max(g.longest, d)
		if t.Leaked {
			g.leaked++
		}
		if pm, ok := h.parents[t.ID]; ok {
			g.proven++
			if pm.child.Function != "" {
				g.children[creatorKey(pm.child)] = pm.child
			}
		}
	}
	var out []found
	for _, key := range slicesSortedKeys(groups) {
		g := groups[key]
		if g.proven == 0 {
			// None was seen starting goroutines: it may wait for
			// goroutines others started, which may still come.
			continue
		}
		f := api.Finding{
			Title: fmt.Sprintf("WaitGroup never done: %s %s in WaitGroup.Wait at %s for goroutines that have all returned",
				goroutines(len(g.ids)), verb(len(g.ids), "waits", "wait"), format.Frame(g.loc)),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: []api.Frame{g.loc},
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "stuck_seconds": g.longest.Seconds()}},
			Advice: "Make every path out of a goroutine call Done: `defer wg.Done()` as its first statement, so an " +
				"early return or a panic counts too; call Add before the go statement, never inside the goroutine " +
				"(go vet's waitgroup check finds that one).",
		}
		started := ""
		for _, cb := range g.children {
			f.Evidence.Sites = append(f.Evidence.Sites, cb)
			if started == "" {
				started = " (created at " + format.Frame(cb) + ")"
			}
			if len(f.Evidence.Sites) >= 4 {
				break
			}
		}
		f.Message = fmt.Sprintf("%s %s waited in WaitGroup.Wait at %s for %s or more, and none of the goroutines %s "+
			"started%s is alive: the WaitGroup's count can no longer reach zero, so one of them returned without "+
			"its Done (or an Add counted a goroutine that never started).",
			goroutines(len(g.ids)), verb(len(g.ids), "has", "have"), format.Frame(g.loc), format.Duration(g.longest),
			verb(len(g.ids), "it", "they"), started)
		if g.leaked > 0 {
			// This finding is the leak's, with its cause: goroutine-leak
			// leaves these goroutines to it.
			f.Severity = Critical
			f.Evidence.Figures["leaked"] = float64(g.leaked)
			f.Message += fmt.Sprintf(" The runtime's leak detection (the goroutineleak profile) proved %d of them leaked: they will never run again.", g.leaked)
		}
		if n := len(g.ids) - g.proven; n > 0 {
			f.Message += fmt.Sprintf(" %d of them started goroutines no snapshot saw, and wait at the same place.", n)
		}
		c.claim(id, g.ids...)
		c.claimedSites[key] = id
		out = append(out, found{key: key, finding: f})
	}
	return out
}
