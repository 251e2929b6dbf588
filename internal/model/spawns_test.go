package model

import (
	"testing"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// The most alive at once: those alive from the window's start, and the
// creations and exits in time order, an exit before a creation at the
// same time.
func TestSpawnCounterPeak(t *testing.T) {
	site := api.Frame{Function: "example.com/app.spawn", File: "/src/app/spawn.go", Line: 7}
	const window = 1000
	c := newSpawnCounter(window)
	add := func(n int, g tracewin.GoStats) {
		for range n {
			c.add(site, &g)
		}
	}
	add(40, tracewin.GoStats{Total: window})                                              // alive all along
	add(60, tracewin.GoStats{Exited: true, Ended: 300, Total: 200})                       // 100 to 300
	add(30, tracewin.GoStats{Exited: true, Ended: 500, Total: 200})                       // 300 to 500: after the 60 left
	add(20, tracewin.GoStats{Total: 100})                                                 // 900 on, alive at the end
	add(5, tracewin.GoStats{Exited: true, Ended: 200, Total: 200})                        // from before the window to 200
	c.add(api.Frame{Function: "example.com/app.other"}, &tracewin.GoStats{Total: window}) // too few to list
	got := c.list()
	want := api.SpawnSite{Site: site, Created: 110, Start: 45, Peak: 105, Alive: 60}
	if len(got) != 1 || got[0] != want {
		t.Errorf("spawns %+v, want [%+v]", got, want)
	}
}

// BenchmarkSpawnCounter is what a snapshot's spawn sites add to its model,
// per goroutine: 100,000 alive from one site (a parked pool), and a burst
// of 100,000 that came and went from another, as spawn-storm leaves.
func BenchmarkSpawnCounter(b *testing.B) {
	pool := api.Frame{Function: "example.com/app.startPool", File: "/src/app/pool.go", Line: 10}
	storm := api.Frame{Function: "example.com/app.(*storm).fib", File: "/src/app/storm.go", Line: 70}
	const n = 100_000
	window := int64(5e9)
	parked := make([]tracewin.GoStats, n)
	burst := make([]tracewin.GoStats, n)
	for i := range n {
		parked[i] = tracewin.GoStats{ID: int64(i), Total: window}
		start := int64(1e9) + int64(i)*10_000
		burst[i] = tracewin.GoStats{ID: int64(n + i), Exited: true, Ended: start + 1e9, Total: 1e9}
	}
	for _, bc := range []struct {
		name string
		gs   []tracewin.GoStats
		site api.Frame
	}{{"parked", parked, pool}, {"burst", burst, storm}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c := newSpawnCounter(window)
				for i := range bc.gs {
					c.add(bc.site, &bc.gs[i])
				}
				if l := c.list(); len(l) != 1 {
					b.Fatalf("%d sites", len(l))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/goroutine")
		})
	}
}
