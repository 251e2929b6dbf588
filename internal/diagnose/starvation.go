package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

var starvationRule = &rule{
	id:     "sched-starvation",
	lesson: "tokio_spawn_blocking",
	help:   "more CPU-bound goroutines than GOMAXPROCS keep every P busy, and goroutines that are ready to run wait for one",
	thresholds: []Threshold{
		{Name: "hog_share", Help: "share of the window a goroutine is running or runnable to count as CPU-bound", Unit: Ratio, Default: 0.3},
		{Name: "min_sched", Help: "share of the window a starved goroutine spends ready to run but waiting for a P", Unit: Ratio, Default: 0.02},
		{Name: "min_delay", Help: "mean scheduling delay per run of a starved goroutine", Unit: Duration, Default: float64(200 * time.Microsecond)},
		{Name: "min_polls", Help: "runs in the window of a goroutine for its delay to count", Unit: Count, Default: 20},
	},
	check: checkStarvation,
}

func checkStarvation(c *check) []found {
	const id = "sched-starvation"
	procs := c.snap.Process.GOMAXPROCS
	if procs <= 0 {
		return nil
	}
	hogShare, minDelay, minPolls := c.th(id, "hog_share"), c.th(id, "min_delay"), int64(c.th(id, "min_polls"))
	minSched := c.th(id, "min_sched")
	var hogs, victims []*api.Task
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if !userTask(t) || t.Stats.TotalNS == 0 || c.isClaimed(t.ID) {
			continue
		}
		if share(t.Stats.BusyNS+t.Stats.SchedNS, c.window) >= hogShare {
			hogs = append(hogs, t)
		} else if !isStdFunc(t.Location.Function) && t.Stats.Polls >= minPolls && float64(t.Stats.SchedNS)/float64(t.Stats.Polls) >= minDelay && share(t.Stats.SchedNS, c.window) >= minSched {
			victims = append(victims, t)
		}
	}
	if len(hogs) < procs {
		return nil
	}
	// More CPU-bound goroutines than Ps: that explains their long runs,
	// whether or not someone starved in this window.
	for _, h := range hogs {
		c.claim(id, h.ID)
	}
	if len(victims) == 0 {
		return nil
	}
	// The worst victim is the one that lost the most time waiting for a P.
	slices.SortFunc(victims, func(a, b *api.Task) int { return cmp.Compare(b.Stats.SchedNS, a.Stats.SchedNS) })
	v := victims[0]
	f := api.Finding{
		Title: fmt.Sprintf("scheduler starvation: %d CPU-bound goroutines on %d Ps; %s waits %s per run", len(hogs), procs, v.Name,
			ms(v.Stats.SchedNS/v.Stats.Polls)),
		Evidence: api.Evidence{Figures: map[string]float64{"hogs": float64(len(hogs)), "gomaxprocs": float64(procs),
			"victim_mean_delay_ms": float64(v.Stats.SchedNS) / float64(v.Stats.Polls) / 1e6}},
		Advice: "Bound CPU-heavy work to fewer goroutines than GOMAXPROCS (a worker pool), or give it breaks, so " +
			"latency-sensitive goroutines always find a free P; the talk moves such work to spawn_blocking.",
	}
	var hogSites []api.Frame
	for _, h := range hogs {
		f.Evidence.Tasks = append(f.Evidence.Tasks, h.ID)
		for _, fr := range c.callSites(h, 2) {
			if !slices.Contains(hogSites, fr) && len(hogSites) < 3 {
				hogSites = append(hogSites, fr)
			}
		}
	}
	f.Evidence.Sites = append(hogSites, v.Location)
	f.Message = fmt.Sprintf("%d goroutines were running or runnable for most of the window with only %d Ps (GOMAXPROCS), "+
		"at %s; %d goroutines that were ready to run waited for a P, %s (%d) the worst: %s per run on average over %d runs.",
		len(hogs), procs, frameList(hogSites), len(victims), v.Name, v.ID, ms(v.Stats.SchedNS/v.Stats.Polls), v.Stats.Polls)
	if p99 := c.latencyP99(); p99 > 0 {
		f.Evidence.Figures["sched_latency_p99_ms"] = float64(p99) / 1e6
		f.Message += fmt.Sprintf(" The process's scheduling latency p99 is %s.", ms(p99))
	}
	for _, t := range victims {
		f.Evidence.Tasks = append(f.Evidence.Tasks, t.ID)
	}
	c.claim(id, f.Evidence.Tasks...)
	return []found{{key: "starvation", finding: f}}
}

// callSites returns the top n user frames of a task's stack, else its
// location: where it runs, and who called that.
func (c *check) callSites(t *api.Task, n int) []api.Frame {
	out := topUserFrames(c.stack(t.ID), n)
	if len(out) == 0 && t.Location.Function != "" {
		out = append(out, t.Location)
	}
	return out
}

func frameList(fs []api.Frame) string {
	s := ""
	for i, f := range fs {
		if i > 0 {
			s += ", "
		}
		s += frameString(f)
	}
	return s
}

// latencyP99 is the 99th percentile of the scheduling latencies since the
// oldest remembered snapshot (the runtime's histogram is cumulative).
func (c *check) latencyP99() int64 {
	now := c.snap.Process.SchedLatency
	if now == nil {
		return 0
	}
	before, ok := c.e.hist.ago(c.e.cfg.History)
	if !ok || before.latency == nil || len(before.latency.Buckets) != len(now.Buckets) {
		return now.P99NS
	}
	d := make([]int64, len(now.Buckets))
	var n int64
	for i := range d {
		d[i] = now.Buckets[i] - before.latency.Buckets[i]
		n += d[i]
	}
	if n <= 0 {
		return 0
	}
	var acc int64
	for i, v := range d {
		acc += v
		if acc*100 >= n*99 {
			return int64(1) << (i + 1)
		}
	}
	return now.P99NS
}
