package diagnose

import (
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var deadlockRule = &rule{
	id:         "deadlock",
	lesson:     "beyond the talk: shared state behind a Mutex",
	help:       "goroutines wait on each other's locks forever: stuck in Lock with no wake-up, or marked by the goroutineleak profile",
	thresholds: &deadlockThresholds,
	check:      checkDeadlock,
}

// The thresholds of deadlock, in the order of its docs.
var (
	deadlockThresholds    thresholdSet
	deadlockStuckFor      = deadlockThresholds.duration("stuck_for", 3*time.Second, "how long goroutines must wait in Lock with no wake-up")
	deadlockMinGoroutines = deadlockThresholds.count("min_goroutines", 2, "goroutines stuck in Lock before it is a deadlock")
)

func checkDeadlock(c *check) []found {
	const id = "deadlock"
	var out []found
	// Goroutines the leak detection proved stuck in Lock for good, two or
	// more of one bug: they hold what the others want. One alone, or with
	// others of its bug blocked on channels, is goroutine-leak's.
	for _, g := range c.provenGroups() {
		if !g.lockOnly() || len(g.ids) < int(c.num(deadlockMinGoroutines)) {
			continue
		}
		var sites []api.Frame
		for _, s := range g.sites {
			sites = append(sites, s.loc)
		}
		first := g.sites[0]
		f := api.Finding{
			Severity: Critical,
			Title:    fmt.Sprintf("deadlock: %d goroutines wait forever in %s at %s", len(g.ids), first.reason, format.Frame(first.loc)),
			Message: fmt.Sprintf("The runtime's leak detection (the goroutineleak profile, or the (leaked) marks of a dump) found %d goroutines "+
				"waiting on locks that no running goroutine can release: they wait on each other (%s).",
				len(g.ids), siteList(g.sites, 10)),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: append(sites, g.creators...),
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "stuck_seconds": g.longest.Seconds(), "leaked": float64(len(g.ids)),
					"sites": float64(len(g.sites))}},
			Advice: deadlockAdvice(first.loc),
		}
		if len(g.sites) > 1 {
			f.Title = fmt.Sprintf("deadlock: %d goroutines wait forever at %d sites, in %s at %s and more", len(g.ids), len(g.sites), first.reason, format.Frame(first.loc))
		}
		c.claim(id, g.ids...)
		for _, s := range g.sites {
			c.claimedSites[siteKey(s.reason, s.loc)] = id
		}
		out = append(out, found{key: g.key, finding: f})
	}
	groups := c.stuckGroups(c.dur(deadlockStuckFor), func(t *api.Task) bool { return isLockWait(t.WaitReason) && !t.Leaked })
	total := 0
	for _, g := range groups {
		total += len(g.ids)
	}
	if total < int(c.num(deadlockMinGoroutines)) {
		return out
	}
	for _, key := range slicesSortedKeys(groups) {
		g := groups[key]
		if c.claimedSites[key] != "" {
			continue // proven above, with these listed among its stuck
		}
		f := api.Finding{
			Severity: Critical,
			Title:    fmt.Sprintf("deadlock: %d goroutines wait forever in %s at %s", len(g.ids), g.reason, format.Frame(g.loc)),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: []api.Frame{g.loc},
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "stuck_seconds": g.longest.Seconds(), "leaked": float64(g.leaked)}},
			Advice: deadlockAdvice(g.loc),
		}
		f.Message = fmt.Sprintf("%d goroutines have waited in %s at %s for %s or more, and nothing released that "+
			"lock in the last %s: whoever holds it never lets go (goroutines that hold each other's locks, "+
			"or one that keeps its lock while it waits for good).",
			len(g.ids), g.reason, format.Frame(g.loc), format.Duration(g.longest), format.Nanos(c.window))
		if c.missingLeakProfile() {
			f.Evidence.Missing = append(f.Evidence.Missing, "goroutineleak profile (Go 1.27): the deadlock is inferred from goroutines stuck without wake-ups")
		}
		for _, cb := range g.createdAt {
			f.Evidence.Sites = append(f.Evidence.Sites, cb)
			if len(f.Evidence.Sites) >= 4 {
				break
			}
		}
		c.claim(id, g.ids...)
		c.claimedSites[key] = id
		out = append(out, found{key: key, finding: f})
	}
	return out
}

func deadlockAdvice(at api.Frame) string {
	return fmt.Sprintf("Take nested locks in one global order (by account id, say) whatever the direction of the operation, "+
		"or never hold one lock while taking another. A lock a goroutine holds leaves no frame once its Lock call "+
		"returned: the locks these goroutines hold are those taken before %s and not yet released, in that function "+
		"or in its callers (`inspect-cli stacks` shows them).", format.Frame(at))
}

func slicesSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
