package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var busyPollRule = &rule{
	id:         "busy-poll",
	lesson:     "tokio_yield",
	help:       "a goroutine polls in a loop (select with default, runtime.Gosched): very many tiny runs and no blocking, tokio-console's self-wake",
	thresholds: &busyPollThresholds,
	persist:    2,
	check:      checkBusyPoll,
}

// The thresholds of busy-poll, in the order of its docs.
var (
	busyPollThresholds thresholdSet
	busyPollMinPolls   = busyPollThresholds.perSec("min_polls", 5000, "runs per second")
	busyPollMaxIdle    = busyPollThresholds.ratio("max_idle", 0.1, "share of the window it may spend blocked")
	busyPollMaxRun     = busyPollThresholds.duration("max_run", 200*time.Microsecond, "mean length of its runs")
)

func checkBusyPoll(c *check) []found {
	const id = "busy-poll"
	secs := float64(c.window) / 1e9
	var out []found
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if c.isClaimed(t.ID) || !userTask(t) || t.Stats.Polls == 0 {
			continue
		}
		rate := float64(t.Stats.Polls) / secs
		meanRun := float64(t.Stats.BusyNS) / float64(t.Stats.Polls)
		idle := share(t.Stats.IdleNS, t.Stats.TotalNS)
		if rate < c.num(busyPollMinPolls) || idle > c.ratio(busyPollMaxIdle) || meanRun > float64(c.dur(busyPollMaxRun)) {
			continue
		}
		sites := c.callSites(t, 2)
		if len(sites) == 0 {
			continue
		}
		c.claim(id, t.ID)
		out = append(out, found{key: sites[0].Function, finding: api.Finding{
			Title: fmt.Sprintf("busy polling at %s: %.0f runs a second, never blocking", format.Frame(sites[0]), rate),
			Message: fmt.Sprintf("Goroutine %d (%s) was scheduled %d times in %s, %s on CPU each time, and blocked for only "+
				"%s of the time: it spins, polling for work instead of waiting for it, and burns %s of a core.",
				t.ID, t.Name, t.Stats.Polls, format.Nanos(c.window), format.Nanos(int64(meanRun)),
				format.Percent(idle), format.Percent(share(t.Stats.BusyNS, c.window))),
			Evidence: api.Evidence{Tasks: []int64{t.ID}, Sites: sites,
				Figures: map[string]float64{"polls_per_second": rate, "mean_run_us": meanRun / 1e3, "idle_share": idle}},
			Advice: "Block instead of polling: drop the default case of the select (or the Gosched loop) so the " +
				"goroutine sleeps until the channel is ready, and add a ticker case if it must also do periodic work.",
		}})
	}
	return out
}
