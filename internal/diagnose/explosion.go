package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var explosionRule = &rule{
	id:         "goroutine-explosion",
	lesson:     "async recursion",
	help:       "the goroutine count climbs fast, with one creation site behind most of it",
	thresholds: &explosionThresholds,
	check:      checkExplosion,
}

// The thresholds of goroutine-explosion, in the order of its docs.
var (
	explosionThresholds    thresholdSet
	explosionMinGoroutines = explosionThresholds.count("min_goroutines", 1000, "live goroutines from one creation site before it can be an explosion (the most alive at once in the windows of the last 20 s, so that a storm that recurs stays one finding between its bursts)")
	explosionMinRate       = explosionThresholds.perSec("min_rate", 500, "growth of that site's goroutines, per second")
	explosionMaxGoroutines = explosionThresholds.count("max_goroutines", 20000, "live goroutines from one site that are an explosion whatever the rate")
)

// recurWithin is how long a burst of goroutines counts after its window:
// longer than the pause between two bursts of a recurring storm.
const recurWithin = 20 * time.Second

func checkExplosion(c *check) []found {
	const id = "goroutine-explosion"
	now := c.e.hist.latest()
	before, ok := c.e.hist.ago(3 * time.Second)
	minN, maxN, minRate := c.num(explosionMinGoroutines), c.num(explosionMaxGoroutines), c.num(explosionMinRate)
	// Goroutines created within the window, per site: the rate is seen in
	// one snapshot, before there is a history to compare with.
	fresh := map[string]int{}
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.CreatedBy.Function != "" && t.Stats.TotalNS < c.window*95/100 && !c.isClaimed(t.ID) {
			fresh[creatorKey(t.CreatedBy)]++
		}
	}
	// A burst that came and went within the window (a recursion that
	// spawned a hundred thousand goroutines in two seconds and finished)
	// has no tasks left: the window's spawn sites tell it. Bursts that
	// recur some seconds apart are one explosion: the highest of the
	// windows of the last recurWithin counts.
	spawns := map[string]api.SpawnSite{}
	for _, p := range c.e.hist.since(recurWithin) {
		for k, sp := range p.spawns {
			if sp.Peak > spawns[k].Peak {
				spawns[k] = sp
			}
		}
	}
	keys := map[string]bool{}
	for k := range now.creators {
		keys[k] = true
	}
	for k := range spawns {
		keys[k] = true
	}
	out := c.explosionByStart(maxN)
	for key := range keys {
		n, sp := now.creators[key], spawns[key]
		peak := max(n, sp.Peak)
		if float64(peak) < minN {
			continue
		}
		// Growth: goroutines created and gone again at the same pace (a
		// server's requests) keep a site level, however many it creates.
		windowSecs := float64(c.window) / 1e9
		rate := max(float64(fresh[key]), float64(sp.Peak-sp.Start)) / windowSecs
		if ok {
			if dt := now.at.Sub(before.at).Seconds(); dt > 0 {
				rate = max(rate, float64(n-before.creators[key])/dt)
			}
		}
		if rate < minRate && float64(peak) < maxN {
			continue
		}
		site := sp.Site
		var ids, unproven []int64
		leaked := 0
		for i := range c.snap.Tasks {
			t := &c.snap.Tasks[i]
			if t.CreatedBy.Function != "" && creatorKey(t.CreatedBy) == key && !c.isClaimed(t.ID) {
				site = t.CreatedBy
				ids = append(ids, t.ID)
				if t.Leaked {
					leaked++
				} else {
					unproven = append(unproven, t.ID)
				}
			}
		}
		// A fast leak is a leak first: goroutines the leak detection proved
		// stay for goroutine-leak to report, this finding adds the pace.
		c.claim(id, unproven...)
		c.exploding = append(c.exploding, site.Function)
		sev := Warning
		if float64(peak) >= maxN {
			sev = Critical
		}
		var msg, title string
		if peak > n {
			title = fmt.Sprintf("goroutine explosion: up to %d goroutines from %s", peak, format.Frame(site))
			msg = fmt.Sprintf("Up to %d goroutines created at %s were alive at once within the last %s (%d now)",
				peak, format.Frame(site), format.Duration(min(recurWithin, c.e.cfg.History)), n)
		} else {
			title = fmt.Sprintf("goroutine explosion: %d goroutines from %s", n, format.Frame(site))
			msg = fmt.Sprintf("%d goroutines alive were created at %s, %s of all goroutines", n, format.Frame(site),
				format.Percent(share(int64(n), int64(len(c.snap.Tasks)))))
		}
		if rate > 0 {
			msg += fmt.Sprintf(", growing by %.0f per second", rate)
		}
		if leaked > 0 {
			msg += fmt.Sprintf("; the runtime's leak detection proved %d of them leaked (see goroutine-leak)", leaked)
		}
		out = append(out, found{key: key, finding: api.Finding{
			Severity: sev,
			Title:    title,
			Message:  msg + ".",
			Evidence: api.Evidence{Tasks: capIDs(ids, 100), Sites: []api.Frame{site},
				Figures: map[string]float64{"goroutines": float64(n), "peak_goroutines": float64(peak), "per_second": rate,
					"total_goroutines": float64(len(c.snap.Tasks))}},
			Advice: "Spawn only where the work is big enough (do small cases inline, below a cut-off), or bound the " +
				"goroutines with a worker pool or a semaphore (errgroup.Group.SetLimit).",
		}})
	}
	return out
}

// explosionByStart finds an explosion among goroutines whose creation site
// the source does not know (a heavy target's goroutines older than the
// trace, seen in a goroutine profile rather than a dump): those started in
// the same function, at least maxN of them, however they got there. The
// function a goroutine was started in is the bottom of its stack.
func (c *check) explosionByStart(maxN float64) []found {
	const id = "goroutine-explosion"
	// Two passes over the tasks rather than a list of them: at 100,000
	// goroutines of unknown creation the lists (grown by appending) were
	// megabytes allocated at every observation.
	unknown := func(t *api.Task) bool { return t.CreatedBy.Function == "" && !c.isClaimed(t.ID) && userTask(t) }
	n := 0
	for i := range c.snap.Tasks {
		if unknown(&c.snap.Tasks[i]) {
			n++
		}
	}
	if float64(n) < maxN {
		return nil
	}
	type group struct {
		start  api.Frame
		n      int // goroutines, counted before ids are made
		ids    []int64
		leaked int
		// notLeaked are ids but the leaked ones, when some are (nil
		// when none is: ids then).
		notLeaked []int64
	}
	groups := map[string]*group{}
	for i := range c.snap.Tasks {
		if t := &c.snap.Tasks[i]; unknown(t) {
			if start, ok := startFrame(c.stack(t.ID)); ok {
				g := groups[start.Function]
				if g == nil {
					g = &group{start: start}
					groups[start.Function] = g
				}
				g.n++
				if t.Leaked {
					g.leaked++
				}
			}
		}
	}
	for _, g := range groups {
		g.ids = make([]int64, 0, g.n)
		if g.leaked > 0 {
			g.notLeaked = make([]int64, 0, g.n-g.leaked)
		}
	}
	for i := range c.snap.Tasks {
		if t := &c.snap.Tasks[i]; unknown(t) {
			if start, ok := startFrame(c.stack(t.ID)); ok {
				g := groups[start.Function]
				g.ids = append(g.ids, t.ID)
				if !t.Leaked && g.notLeaked != nil {
					g.notLeaked = append(g.notLeaked, t.ID)
				}
			}
		}
	}
	var out []found
	for _, fn := range slicesSortedKeys(groups) {
		g := groups[fn]
		n := len(g.ids)
		if float64(n) < maxN {
			continue
		}
		if g.notLeaked != nil {
			c.claim(id, g.notLeaked...)
		} else {
			c.claim(id, g.ids...)
		}
		c.exploding = append(c.exploding, fn)
		sites := []api.Frame{g.start}
		missing := []string{"where the goroutines were created: a goroutine dump (the \"created by\" lines) names the go statement"}
		if creator, ok := c.creatorOf(fn); ok {
			sites, missing = []api.Frame{creator, g.start}, nil
		}
		msg := fmt.Sprintf("%d goroutines alive were started in %s, %s of all goroutines. The source does not say where they "+
			"were created (no goroutine dump of them: the target is too large for one within the pause allowed), so they "+
			"are counted by the function they run; however they got there, that many from one go statement is an explosion.",
			n, format.Frame(g.start), format.Percent(share(int64(n), int64(len(c.snap.Tasks)))))
		if len(missing) == 0 {
			msg += fmt.Sprintf(" Goroutines started the same way whose creation the window saw were created at %s.", format.Frame(sites[0]))
		}
		if g.leaked > 0 {
			msg += fmt.Sprintf(" The runtime's leak detection proved %d of them leaked (see goroutine-leak).", g.leaked)
		}
		out = append(out, found{key: "start:" + fn, finding: api.Finding{
			Severity: Critical,
			Title:    fmt.Sprintf("goroutine explosion: %d goroutines started in %s", n, format.Frame(g.start)),
			Message:  msg,
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: sites,
				Figures: map[string]float64{"goroutines": float64(n), "peak_goroutines": float64(n), "total_goroutines": float64(len(c.snap.Tasks))},
				Missing: missing},
			Advice: "Spawn only where the work is big enough (do small cases inline, below a cut-off), or bound the " +
				"goroutines with a worker pool or a semaphore (errgroup.Group.SetLimit).",
		}})
	}
	return out
}

// startFrame is the function a goroutine was started in: the last frame of
// its stack outside the runtime and the wrappers that run a function handed
// to them (pprof.Do, errgroup, the lab's Spawn), which start goroutines of
// every kind.
func startFrame(stack []api.Frame) (api.Frame, bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		if fn := stack[i].Function; !isRuntimeFunc(fn) && !isStartWrapper(fn) {
			return stack[i], true
		}
	}
	return api.Frame{}, false
}

var startWrappers = []string{"runtime/pprof.", "github.com/grafana/pyroscope-go.", "golang.org/x/sync/errgroup.",
	"github.com/inspectd/inspectd/internal/workload.(*Env)."}

func isStartWrapper(fn string) bool {
	return slices.ContainsFunc(startWrappers, func(p string) bool { return strings.HasPrefix(fn, p) })
}

// creatorOf returns where goroutines started in fn were created, as the
// snapshot's goroutines whose creation it knows tell (those created within
// the window, say): the go statement behind the ones it does not know.
func (c *check) creatorOf(fn string) (api.Frame, bool) {
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.CreatedBy.Function == "" || c.isClaimed(t.ID) && c.claimedBy(t.ID) != "goroutine-explosion" {
			continue
		}
		if start, ok := startFrame(c.stack(t.ID)); ok && start.Function == fn {
			return t.CreatedBy, true
		}
	}
	return api.Frame{}, false
}
