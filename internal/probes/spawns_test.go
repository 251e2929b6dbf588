package probes

import (
	"testing"

	"github.com/inspectd/inspectd/internal/api"
)

// The most alive at once: those alive from the window's start, and the
// creations and exits in time order, an exit before a creation at the
// same time.
func TestSpawnCounterPeak(t *testing.T) {
	site := api.Frame{Function: "example.com/app.spawn", File: "/src/app/spawn.go", Line: 7}
	const window = 1000
	c := newSpawnCounter(window)
	add := func(n int, g GoStats) {
		for range n {
			c.add(site, &g)
		}
	}
	add(40, GoStats{Total: window})                                              // alive all along
	add(60, GoStats{Exited: true, Ended: 300, Total: 200})                       // 100 to 300
	add(30, GoStats{Exited: true, Ended: 500, Total: 200})                       // 300 to 500: after the 60 left
	add(20, GoStats{Total: 100})                                                 // 900 on, alive at the end
	add(5, GoStats{Exited: true, Ended: 200, Total: 200})                        // from before the window to 200
	c.add(api.Frame{Function: "example.com/app.other"}, &GoStats{Total: window}) // too few to list
	got := c.list()
	want := api.SpawnSite{Site: site, Created: 110, Start: 45, Peak: 105, Alive: 60}
	if len(got) != 1 || got[0] != want {
		t.Errorf("spawns %+v, want [%+v]", got, want)
	}
}
