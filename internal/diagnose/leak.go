package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var leakRule = &rule{
	id:         "goroutine-leak",
	lesson:     "tokio_select",
	help:       "goroutines blocked for good, whatever they wait on (a channel, a select, a lock, a WaitGroup, a Cond): every one the goroutineleak profile marks, one finding per bug with all its sites; without the profile, goroutines stuck on a channel at one site in growing numbers",
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
	// Goroutines stuck where proven ones wait, that the leak detection has
	// not looked at yet (it runs at most every 30s), and the stuck ones the
	// fallback without proof weighs.
	stuck := c.stuckGroups(c.dur(leakStuckFor), func(t *api.Task) bool {
		return !t.Leaked && userTask(t) && (isChanWait(t.WaitReason) || isLockWait(t.WaitReason))
	})
	now := c.e.hist.latest()
	before, hasBefore := c.e.hist.ago(10 * time.Second)
	grownAt := func(key string) (int, time.Duration, bool) {
		if !hasBefore {
			return 0, 0, false
		}
		return now.sites[key] - before.sites[key], now.at.Sub(before.at), true
	}
	// A leak piles up over time; goroutines that came at once (servers
	// started together, each with its goroutine waiting for shutdown) and
	// then stayed are not a pile that grows. Growth must show in both
	// halves of the 10s, where the history has a point between them.
	mid, hasMid := c.e.hist.ago(5 * time.Second)
	hasMid = hasMid && hasBefore && mid.at.After(before.at) && now.at.After(mid.at)
	growing := func(key string) bool {
		return !hasMid || now.sites[key] > mid.sites[key] && mid.sites[key] > before.sites[key]
	}
	var out []found
	for _, g := range c.provenGroups() {
		proven := len(g.ids)
		ids := slices.Clone(g.ids)
		var sites []api.Frame
		grown, dt, known := 0, time.Duration(0), false
		hasLock := false
		for _, s := range g.sites {
			key := siteKey(s.reason, s.loc)
			if sg := stuck[key]; sg != nil {
				ids = append(ids, sg.ids...)
				g.longest = max(g.longest, sg.longest)
				delete(stuck, key)
			}
			if n, d, ok := grownAt(key); ok {
				grown, dt, known = grown+n, d, true
			}
			hasLock = hasLock || isLockWait(s.reason)
			if len(sites) < 10 {
				sites = append(sites, s.loc)
			}
		}
		sites = append(sites, g.creators...)
		f := api.Finding{
			Severity: Critical,
			Evidence: api.Evidence{Tasks: capIDs(ids, 100), Sites: sites,
				Figures: map[string]float64{"goroutines": float64(len(ids)), "leaked": float64(proven), "sites": float64(len(g.sites)),
					"stuck_seconds": g.longest.Seconds()}},
			Advice: "Make sure every blocked send or receive can complete: give a reply channel a buffer of one so the " +
				"sender never waits for a receiver that has gone, or select on ctx.Done() beside the channel operation.",
		}
		if hasLock {
			f.Advice += " Release every lock on every path out of a function (defer mu.Unlock() right after Lock), and never " +
				"wait on a channel or a WaitGroup while holding a lock another goroutine needs to get you out."
		}
		growthNote := ""
		if known {
			f.Evidence.Figures["growth"] = float64(grown)
			if dt > 0 {
				f.Evidence.Figures["per_second"] = float64(grown) / dt.Seconds()
			}
			if grown > 0 {
				growthNote = fmt.Sprintf(" (%d more wait there than %s ago)", grown, format.Duration(dt))
			}
		}
		proof := "The runtime's leak detection (the goroutineleak profile, or the (leaked) marks of a dump)"
		if len(g.sites) == 1 {
			s := g.sites[0]
			f.Title = fmt.Sprintf("goroutine leak: %s blocked for good in %s at %s", goroutines(proven), s.reason, format.Frame(s.loc))
			f.Message = fmt.Sprintf("%s found %s blocked in %s at %s %s: %s will never run again%s.",
				proof, goroutines(proven), s.reason, format.Frame(s.loc), leakedOn(s.reason), verb(proven, "it", "they"), growthNote)
			if n := len(ids); n > proven {
				f.Title = fmt.Sprintf("goroutine leak: %s blocked in %s at %s, %d of them proven leaked", goroutines(n), s.reason, format.Frame(s.loc), proven)
			}
		} else {
			first := g.sites[0]
			f.Title = fmt.Sprintf("goroutine leak: %s blocked for good at %d sites, %s at %s and more",
				goroutines(proven), len(g.sites), first.reason, format.Frame(first.loc))
			f.Message = fmt.Sprintf("%s found %s that one bug left blocked for good, at %d sites: %s. None of them will "+
				"run again: they wait on each other or on what no running goroutine can reach%s.",
				proof, goroutines(proven), len(g.sites), siteList(g.sites, 10), growthNote)
			if n := len(ids); n > proven {
				f.Title = fmt.Sprintf("goroutine leak: %s blocked at %d sites, %s at %s and more, %d of them proven leaked",
					goroutines(n), len(g.sites), first.reason, format.Frame(first.loc), proven)
			}
		}
		if len(g.creators) > 0 {
			f.Message += fmt.Sprintf(" They were created at %s.", frameList(g.creators))
		}
		if n := len(ids); n > proven {
			// The leak detection runs at most every 30s and shows in the
			// dumps taken after it: the goroutines stuck there since are
			// listed, not yet proven.
			f.Message += fmt.Sprintf(" %d more are stuck there since it last looked, listed with them.", n-proven)
		}
		c.claim(id, ids...)
		for _, s := range g.sites {
			c.claimedSites[siteKey(s.reason, s.loc)] = id
		}
		out = append(out, found{key: g.key, finding: f})
	}
	if f, ok := c.unplacedLeaks(); ok {
		out = append(out, f)
	}
	for _, key := range slicesSortedKeys(stuck) {
		g := stuck[key]
		if !isChanWait(g.reason) || c.claimedSites[key] != "" {
			continue
		}
		grown, dt, known := grownAt(key)
		// Reported before from its growth: goroutines that piled up there
		// and are still stuck stay a leak once the pile stops growing (the
		// bug fixed, or its traffic gone), until they are woken or proven.
		reported := c.e.active[id+"|"+key] != nil
		if len(g.ids) < int(c.num(leakMinGoroutines)) || !known ||
			(!reported && (float64(grown) < c.num(leakMinGrowth) || !growing(key))) {
			continue
		}
		more := "and more each time"
		if float64(grown) < c.num(leakMinGrowth) {
			more = "no longer growing"
		}
		f := api.Finding{
			Severity: Warning,
			Title:    fmt.Sprintf("goroutine leak: %d goroutines stuck in %s at %s, %s", len(g.ids), g.reason, format.Frame(g.loc), more),
			Message: fmt.Sprintf("%d goroutines have been blocked in %s at %s for %s or more with no wake-up (%d more wait there than %s ago): "+
				"whoever should complete the operation has gone.", len(g.ids), g.reason, format.Frame(g.loc),
				format.Duration(g.longest), grown, format.Duration(dt)),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: []api.Frame{g.loc},
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "leaked": 0, "stuck_seconds": g.longest.Seconds(),
					"growth": float64(grown)}},
			Advice: "Make sure every blocked send or receive can complete: give a reply channel a buffer of one so the " +
				"sender never waits for a receiver that has gone, or select on ctx.Done() beside the channel operation.",
		}
		if dt > 0 {
			f.Evidence.Figures["per_second"] = float64(grown) / dt.Seconds()
		}
		if c.missingLeakProfile() {
			f.Evidence.Missing = append(f.Evidence.Missing, "goroutineleak profile (Go 1.27): the leak is inferred from goroutines stuck at one site in growing numbers")
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

// unplacedLeaks reports leaked goroutines that the goroutineleak profile
// counts but the snapshot could not match to any of its goroutines (its
// goroutines came from a source that lost them: a dump cut short). Proof is proof: the count is a finding
// even where the goroutines cannot be named.
func (c *check) unplacedLeaks() (found, bool) {
	counted := c.snap.Process.Leaked
	if counted <= 0 {
		return found{}, false
	}
	marked := 0
	for i := range c.snap.Tasks {
		if c.snap.Tasks[i].Leaked {
			marked++
		}
	}
	// Only where the snapshot lacks goroutines: with all of them there and
	// none marked, the count is from a read the marks have not caught up
	// with, and the next dump carries them.
	if marked > 0 || c.snap.Process.Goroutines <= int64(len(c.snap.Tasks)) {
		return found{}, false
	}
	return found{key: "unplaced", finding: api.Finding{
		Severity: Critical,
		Title:    fmt.Sprintf("goroutine leak: the goroutineleak profile counts %s leaked, none of them placed", goroutines(counted)),
		Message: fmt.Sprintf("The runtime's leak detection found %s blocked for good, but none of the goroutines in this "+
			"snapshot carries its mark, so they cannot be named here: `inspect-cli profile goroutineleak` shows their stacks.",
			goroutines(counted)),
		Evidence: api.Evidence{Figures: map[string]float64{"leaked": float64(counted)},
			Missing: []string{"which goroutines leaked: the snapshot's goroutines could not be matched to the goroutineleak profile's stacks"}},
		Advice: "Make sure every blocked send or receive can complete: give a reply channel a buffer of one so the " +
			"sender never waits for a receiver that has gone, or select on ctx.Done() beside the channel operation.",
	}}, true
}
