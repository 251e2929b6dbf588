package diagnose

import (
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var busyPollRule = &rule{
	id:         "busy-poll",
	lesson:     "tokio_yield",
	help:       "a goroutine polls in a loop (select with default, runtime.Gosched): very many tiny runs and no blocking, tokio-console's self-wake; or, never yielding, on CPU all the time and caught in a select with a default case",
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
	busyPollMinOnCPU   = busyPollThresholds.ratio("min_on_cpu", 0.8, "share of the window a poller that never yields (caught in a select with a default case, preempted rather than yielding) is running or runnable")
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
		if idle > c.ratio(busyPollMaxIdle) {
			continue
		}
		if rate < c.num(busyPollMinPolls) || meanRun > float64(c.dur(busyPollMaxRun)) {
			// A poller that never yields is not rescheduled thousands of
			// times a second: it keeps its P until the runtime preempts it
			// (every 10ms, ~100 runs a second), so its runs are long. What
			// tells it from a computation is where it is caught: in a
			// non-blocking channel operation, a select with one case and a
			// default (a select of several cases with a default is
			// select-spin's, which cannot tell it from a closed channel).
			if f, ok := c.pollsWithoutYielding(t); ok {
				c.claim(id, t.ID)
				out = append(out, f)
			}
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

// nonBlockingOps are the runtime's calls for a select with one case and a
// default: they return at once whether or not the channel is ready.
var nonBlockingOps = []string{"runtime.selectnbrecv", "runtime.selectnbsend"}

// pollsWithoutYielding reports a goroutine on CPU the whole window, never
// blocking, that the scheduler caught in a non-blocking channel operation.
func (c *check) pollsWithoutYielding(t *api.Task) (found, bool) {
	onCPU := share(t.Stats.BusyNS+t.Stats.SchedNS, c.window)
	if t.Stats.TotalNS < c.window*9/10 || onCPU < c.ratio(busyPollMinOnCPU) || share(t.Stats.IdleNS, t.Stats.TotalNS) > c.ratio(spinMaxIdle) {
		return found{}, false
	}
	var stacks [][]api.Frame
	if c.in.StretchStack != nil {
		stacks = append(stacks, c.in.StretchStack(t.ID))
	}
	if t.State != "waiting" {
		stacks = append(stacks, c.stack(t.ID))
	}
	var site api.Frame
	for _, st := range stacks {
		for i, f := range st {
			if !slices.Contains(nonBlockingOps, f.Function) {
				continue
			}
			if u, ok := userFrame(st[i+1:]); ok {
				site = u
			}
			break
		}
		if site.Function != "" {
			break
		}
	}
	if site.Function == "" {
		return found{}, false
	}
	secs := float64(c.window) / 1e9
	rate := float64(t.Stats.Polls) / secs
	return found{key: site.Function, finding: api.Finding{
		Title: fmt.Sprintf("busy polling at %s: on CPU %s of the time, never blocking or yielding", format.Frame(site), format.Percent(onCPU)),
		Message: fmt.Sprintf("Goroutine %d (%s) was running or runnable for %s of %s and blocked for %s of it; the scheduler "+
			"preempted it %.0f times a second, each time in a select with a default case at %s: it polls in a loop "+
			"and keeps a core busy waiting for work instead of waiting for it.",
			t.ID, t.Name, format.Percent(onCPU), format.Nanos(c.window), format.Percent(share(t.Stats.IdleNS, t.Stats.TotalNS)),
			rate, format.Frame(site)),
		Evidence: api.Evidence{Tasks: []int64{t.ID}, Sites: []api.Frame{site},
			Figures: map[string]float64{"polls_per_second": rate, "on_cpu_share": onCPU,
				"mean_run_us": float64(t.Stats.BusyNS) / float64(max(t.Stats.Polls, 1)) / 1e3}},
		Advice: "Block instead of polling: drop the default case of the select so the goroutine sleeps until the " +
			"channel is ready, and add a ticker case if it must also do periodic work. A Gosched in the default " +
			"case only lets others run; it still burns the core.",
	}}, true
}
