package model

import (
	"cmp"
	"slices"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// minSpawnPeak is the fewest goroutines alive at once from one site for a
// snapshot to list it in Spawns: far below any explosion, and few sites.
const minSpawnPeak = 100

// spawnCounter sums up, per creation site, the goroutines of a window:
// how many it created, and the most alive at once, exited ones included,
// which the tasks (those alive at the window's end) cannot show.
type spawnCounter struct {
	window int64
	sites  map[api.Frame]*spawnAcc
	// The last site added, and its sums: goroutines come in creation
	// order, most often many from one site in a row.
	lastSite api.Frame
	last     *spawnAcc
}

type spawnAcc struct {
	created, alive int
	// base: alive from the window's start; starts and ends: when the
	// others were created, and when those that exited did.
	base         int
	starts, ends []int64
}

func newSpawnCounter(window int64) *spawnCounter {
	return &spawnCounter{window: window, sites: map[api.Frame]*spawnAcc{}}
}

// add counts g, created at site.
func (c *spawnCounter) add(site api.Frame, g *tracewin.GoStats) {
	if site.Function == "" {
		return
	}
	a := c.last
	if a == nil || site != c.lastSite {
		if a = c.sites[site]; a == nil {
			a = &spawnAcc{}
			c.sites[site] = a
		}
		c.lastSite, c.last = site, a
	}
	end := c.window
	if g.Exited {
		end = g.Ended
		a.ends = append(a.ends, end)
	} else {
		a.alive++
	}
	if start := end - g.Total; start > 0 {
		a.created++
		a.starts = append(a.starts, start)
	} else {
		a.base++
	}
}

// list returns the sites with minSpawnPeak or more goroutines alive at
// once, the most first.
func (c *spawnCounter) list() []api.SpawnSite {
	var out []api.SpawnSite
	for site, a := range c.sites {
		if a.base+a.created < minSpawnPeak {
			continue
		}
		slices.Sort(a.starts)
		slices.Sort(a.ends)
		n, peak, j := a.base, a.base, 0
		for _, at := range a.starts {
			// Exits before creations at the same time: a peak counts
			// goroutines alive together.
			for j < len(a.ends) && a.ends[j] <= at {
				n--
				j++
			}
			n++
			peak = max(peak, n)
		}
		if peak >= minSpawnPeak {
			out = append(out, api.SpawnSite{Site: site, Created: a.created, Start: a.base, Peak: peak, Alive: a.alive})
		}
	}
	slices.SortFunc(out, func(x, y api.SpawnSite) int {
		return cmp.Or(cmp.Compare(y.Peak, x.Peak), cmp.Compare(x.Site.Function, y.Site.Function), cmp.Compare(x.Site.Line, y.Site.Line))
	})
	return out
}
