package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

var longRunRule = &rule{
	id:     "long-run",
	lesson: "tokio_yield",
	help:   "a goroutine computes for a long stretch without blocking, so whatever waits on it (a request, a channel) waits that long: tokio-console's never-yielded",
	thresholds: []Threshold{
		{Name: "min_stretch", Help: "time on CPU between two waits", Unit: Duration, Default: float64(100 * time.Millisecond)},
	},
	check: checkLongRun,
}

func checkLongRun(c *check) []found {
	const id = "long-run"
	minStretch := int64(c.th(id, "min_stretch"))
	var out []found
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if c.isClaimed(t.ID) || !userTask(t) || t.Stats.LongestStretchNS < minStretch {
			continue
		}
		var sites []api.Frame
		if c.in.StretchStack != nil {
			sites = topUserFrames(c.in.StretchStack(t.ID), 2)
		}
		if len(sites) == 0 {
			sites = c.callSites(t, 1)
		}
		if len(sites) == 0 {
			continue
		}
		c.claim(id, t.ID)
		out = append(out, found{key: fmt.Sprint(t.ID), finding: api.Finding{
			Title: fmt.Sprintf("long run without blocking: %s on CPU in %s", ms(t.Stats.LongestStretchNS), t.Name),
			Message: fmt.Sprintf("Goroutine %d (%s, at %s) ran for %s without blocking once (the scheduler preempted it, "+
				"so no run was longer than %s, but it never waited): anything that waits on it waited as long.",
				t.ID, t.Name, frameString(sites[0]), ms(t.Stats.LongestStretchNS), ms(t.Stats.LongestRunNS)),
			Evidence: api.Evidence{Tasks: []int64{t.ID}, Sites: sites,
				Figures: map[string]float64{"longest_stretch_ms": float64(t.Stats.LongestStretchNS) / 1e6, "busy_share": share(t.Stats.BusyNS, t.Stats.TotalNS)}},
			Advice: "Move the long computation off the goroutine that must stay responsive (a worker goroutine or pool that " +
				"sends the result back), or split it into chunks between which the loop serves its channels.",
		}})
	}
	return out
}
