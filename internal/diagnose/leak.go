package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var leakRule = &rule{
	id:         "goroutine-leak",
	lesson:     "tokio_select",
	help:       "goroutines blocked for good on a channel nobody will use again: marked by the goroutineleak profile, or stuck at one site in growing numbers",
	thresholds: &leakThresholds,
	check:      checkLeak,
}

// The thresholds of goroutine-leak, in the order of its docs.
var (
	leakThresholds    thresholdSet
	leakStuckFor      = leakThresholds.duration("stuck_for", 3*time.Second, "how long goroutines must stay blocked at the same channel operation")
	leakMinGoroutines = leakThresholds.count("min_goroutines", 5, "goroutines stuck at one site before it is a leak (without the leak profile)")
	leakMinGrowth     = leakThresholds.count("min_growth", 3, "growth of the goroutines waiting at that site over the last 10s (without the leak profile)")
)

func checkLeak(c *check) []found {
	const id = "goroutine-leak"
	groups := c.stuckGroups(c.dur(leakStuckFor), func(t *api.Task) bool {
		return !c.isClaimed(t.ID) && !isLockWait(t.WaitReason) && userTask(t) && (t.Leaked || isChanWait(t.WaitReason))
	})
	now := c.e.hist.latest()
	before, hasBefore := c.e.hist.ago(10 * time.Second)
	var out []found
	for _, key := range slicesSortedKeys(groups) {
		g := groups[key]
		f := api.Finding{
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: []api.Frame{g.loc},
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "leaked": float64(g.leaked), "stuck_seconds": g.longest.Seconds()}},
			Advice: "Make sure every blocked send or receive can complete: give a reply channel a buffer of one so the " +
				"sender never waits for a receiver that has gone, or select on ctx.Done() beside the channel operation.",
		}
		growthNote := ""
		if hasBefore {
			dt := now.at.Sub(before.at)
			grown := now.sites[key] - before.sites[key]
			f.Evidence.Figures["growth"] = float64(grown)
			if dt > 0 {
				f.Evidence.Figures["per_second"] = float64(grown) / dt.Seconds()
			}
			if grown > 0 {
				growthNote = fmt.Sprintf(" (%d more wait there than %s ago)", grown, format.Duration(dt))
			}
		}
		switch {
		case g.leaked > 0:
			f.Severity = Critical
			f.Title = fmt.Sprintf("goroutine leak: %s blocked for good in %s at %s", goroutines(g.leaked), g.reason, format.Frame(g.loc))
			f.Message = fmt.Sprintf("The runtime's leak detection (the goroutineleak profile, or the (leaked) marks of a dump) found %s blocked in %s at %s %s: %s will never "+
				"run again%s.", goroutines(g.leaked), g.reason, format.Frame(g.loc), leakedOn(g.reason), verb(g.leaked, "it", "they"), growthNote)
			if n := len(g.ids); n > g.leaked {
				// The leak detection runs at most every 30s and shows in the
				// dumps taken after it: the goroutines stuck there since are
				// listed, not yet proven.
				f.Title = fmt.Sprintf("goroutine leak: %s blocked in %s at %s, %d of them proven leaked", goroutines(n), g.reason, format.Frame(g.loc), g.leaked)
				f.Message += fmt.Sprintf(" %d more are stuck there since it last looked, listed with them.", n-g.leaked)
			}
		default:
			if len(g.ids) < int(c.num(leakMinGoroutines)) || !hasBefore {
				continue
			}
			if float64(now.sites[key]-before.sites[key]) < c.num(leakMinGrowth) {
				continue
			}
			f.Severity = Warning
			f.Title = fmt.Sprintf("goroutine leak: %d goroutines stuck in %s at %s, and more each time", len(g.ids), g.reason, format.Frame(g.loc))
			f.Message = fmt.Sprintf("%d goroutines have been blocked in %s at %s for %s or more with no wake-up%s: "+
				"whoever should complete the operation has gone.", len(g.ids), g.reason, format.Frame(g.loc),
				format.Duration(g.longest), growthNote)
			if c.missingLeakProfile() {
				f.Evidence.Missing = append(f.Evidence.Missing, "goroutineleak profile (Go 1.27): the leak is inferred from goroutines stuck at one site in growing numbers")
			}
		}
		c.claim(id, g.ids...)
		c.claimedSites[key] = id
		out = append(out, found{key: key, finding: f})
	}
	return out
}

// leakedOn says what leaked goroutines blocked in reason wait on.
func leakedOn(reason string) string {
	switch {
	case reason == "select (no cases)":
		return "in a select with no cases, which never returns"
	case strings.HasPrefix(reason, "chan ") || strings.HasPrefix(reason, "select"):
		return "on channels that no running goroutine can reach"
	}
	return "on something that no running goroutine can reach"
}
