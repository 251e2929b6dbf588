package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var starvationRule = &rule{
	id:         "sched-starvation",
	lesson:     "tokio_spawn_blocking",
	help:       "more CPU-bound goroutines than GOMAXPROCS keep every P busy, and goroutines that are ready to run queue for one",
	thresholds: &starvationThresholds,
	persist:    2,
	check:      checkStarvation,
}

// The thresholds of sched-starvation, in the order of its docs.
var (
	starvationThresholds thresholdSet
	starvationHogShare   = starvationThresholds.ratio("hog_share", 0.3, "share of the window a goroutine is running or runnable to count as CPU-bound")
	starvationMinQueue   = starvationThresholds.count("min_queue", 0.25, "goroutines ready to run but waiting for a P, on average over the window")
	starvationMinSched   = starvationThresholds.ratio("min_sched", 0.02, "share of the window a starved goroutine (not CPU-bound) spends waiting for a P")
	starvationMinDelay   = starvationThresholds.duration("min_delay", 200*time.Microsecond, "mean scheduling delay per run of a starved goroutine")
	starvationMinPolls   = starvationThresholds.count("min_polls", 20, "runs in the window of a goroutine for its delay to count")
	starvationMinHold    = starvationThresholds.duration("min_hold", time.Millisecond, "mean run of a CPU-bound goroutine: what runs shorter gives its P back, and is starved rather than starving")
)

func checkStarvation(c *check) []found {
	const id = "sched-starvation"
	procs := c.snap.Process.GOMAXPROCS
	procsKnown := procs > 0
	if !procsKnown {
		// A remote pprof target does not say: two CPU-bound goroutines that
		// queue for Ps are the least that starves.
		procs = 2
	}
	hogShare, minDelay, minPolls := c.ratio(starvationHogShare), float64(c.dur(starvationMinDelay)), int64(c.num(starvationMinPolls))
	minSched := c.ratio(starvationMinSched)
	var hogs, victims []*api.Task
	var queued int64
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		// Goroutines in the standard library (an HTTP server writing a
		// profile or trace for the inspector, say) are not the program's hogs.
		if !userTask(t) || t.Stats.TotalNS == 0 || c.isClaimed(t.ID) || isStdFunc(t.Location.Function) {
			continue
		}
		queued += t.Stats.SchedNS
		var lockWait int64
		for _, r := range lockReasons {
			lockWait += t.Stats.IdleByReason[r]
		}
		// A goroutine that waits for a lock longer than it runs is bound by
		// the lock, not the CPU (lock-contention's business).
		// A hog holds its P for long once it has one; a goroutine that runs
		// for microseconds and queues for the rest of its time is starved,
		// not starving (a ticker, a goroutine that yields): in an
		// overloaded process every goroutine is runnable much of the time.
		holds := t.Stats.Polls == 0 || t.Stats.BusyNS/t.Stats.Polls >= int64(c.dur(starvationMinHold))
		if share(t.Stats.BusyNS+t.Stats.SchedNS, c.window) >= hogShare && lockWait < t.Stats.BusyNS && holds {
			hogs = append(hogs, t)
		} else if t.Stats.Polls >= minPolls &&
			float64(t.Stats.SchedNS)/float64(t.Stats.Polls) >= minDelay && share(t.Stats.SchedNS, c.window) >= minSched {
			victims = append(victims, t)
		}
	}
	if len(hogs) < procs {
		return nil
	}
	// A rule that reports nothing claims nothing: hogs that starve nobody
	// in this window stay for the rules after (a busy poller, a long run).
	queue := float64(queued) / float64(c.window)
	if queue < c.num(starvationMinQueue) {
		return nil
	}
	slices.SortFunc(victims, func(a, b *api.Task) int { return cmp.Compare(b.Stats.SchedNS, a.Stats.SchedNS) })
	// The hungriest first: the sites named are of the goroutines that hold
	// the CPU longest without a break (their longest stretch, within a
	// quarter of the longest), else that want it most, not of one that
	// rests every few milliseconds (a pool's worker between its chunks),
	// which is counted among the hogs but starves nobody by itself.
	want := func(t *api.Task) int64 { return t.Stats.BusyNS + t.Stats.SchedNS }
	slices.SortStableFunc(hogs, func(a, b *api.Task) int {
		return cmp.Or(cmp.Compare(b.Stats.LongestStretchNS, a.Stats.LongestStretchNS), cmp.Compare(want(b), want(a)))
	})
	hungriest := hogs[:1]
	for _, h := range hogs[1:] {
		if top := hogs[0].Stats.LongestStretchNS; top >= int64(20*time.Millisecond) && h.Stats.LongestStretchNS >= top/4 ||
			top < int64(20*time.Millisecond) && want(h) >= want(hogs[0])*9/10 {
			hungriest = append(hungriest, h)
		}
	}
	var ids []int64
	for _, h := range hogs {
		ids = append(ids, h.ID)
	}
	hogSites := c.hogSites(hungriest)
	procsText := fmt.Sprintf("%d Ps (GOMAXPROCS)", procs)
	if !procsKnown {
		procsText = "the Ps"
	}
	f := api.Finding{
		Title:    fmt.Sprintf("scheduler starvation: %s, %.1f goroutines queued for a P on average", countOf(len(hogs), "CPU-bound goroutine"), queue),
		Evidence: api.Evidence{Sites: hogSites, Figures: map[string]float64{"hogs": float64(len(hogs)), "queued": queue}},
		Advice: "Bound CPU-heavy work to fewer goroutines than GOMAXPROCS (a worker pool), or give it breaks, so " +
			"latency-sensitive goroutines always find a free P; the talk moves such work to spawn_blocking.",
	}
	if procsKnown {
		f.Evidence.Figures["gomaxprocs"] = float64(procs)
	}
	f.Message = fmt.Sprintf("%d goroutines were running or runnable for %s of the window or more, more than %s can run, at %s; "+
		"on average %.1f goroutines were ready to run but waited for a P.", len(hogs), format.Percent(hogShare), procsText, frameList(hogSites), queue)
	if len(victims) > 0 {
		v := victims[0]
		worst := "the worst:"
		if len(victims) == 1 {
			worst = "waited"
		}
		f.Message += fmt.Sprintf(" %s starved, %s (%d) %s %s per run on average over %d runs.",
			countOf(len(victims), "other goroutine"), v.Name, v.ID, worst, format.Nanos(v.Stats.SchedNS/v.Stats.Polls), v.Stats.Polls)
		// The starved are named in the message, not among the evidence's
		// sites and tasks: they suffer the bug, they are not its cause.
		f.Evidence.Figures["victim_mean_delay_ms"] = float64(v.Stats.SchedNS) / float64(v.Stats.Polls) / 1e6
		f.Evidence.Figures["victims"] = float64(len(victims))
	}
	if !procsKnown {
		f.Evidence.Missing = append(f.Evidence.Missing, "GOMAXPROCS (runtime/metrics): the target does not serve it; the queue for Ps tells instead")
	}
	if p99 := c.latencyP99(); p99 > 0 {
		f.Evidence.Figures["sched_latency_p99_ms"] = float64(p99) / 1e6
		f.Message += fmt.Sprintf(" The process's scheduling latency p99 is %s.", format.Nanos(p99))
	}
	f.Evidence.Tasks = ids
	c.claim(id, ids...)
	return []found{{key: "starvation", finding: f}}
}

// hogSites are where the hogs compute: the top two user functions of their
// longest stretches on CPU (a function once, at the line seen first: a loop
// is caught at any of its lines), else of the stacks the snapshot found
// them at, which for a hog that rests between bursts is often its rest.
func (c *check) hogSites(hogs []*api.Task) []api.Frame {
	var sites []api.Frame
	add := func(frames []api.Frame) {
		for _, fr := range frames {
			if len(sites) < 3 && !slices.ContainsFunc(sites, func(s api.Frame) bool { return s.Function == fr.Function }) {
				sites = append(sites, fr)
			}
		}
	}
	if c.in.StretchStack != nil {
		for _, h := range hogs {
			add(topUserFrames(c.in.StretchStack(h.ID), 2))
		}
	}
	if len(sites) == 0 {
		for _, h := range hogs {
			add(c.callSites(h, 2))
		}
	}
	return sites
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
		s += format.Frame(f)
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
	if !ok || before.latency == nil || len(now.Buckets) == 0 || len(before.latency.Buckets) != len(now.Buckets) {
		return now.P99NS // since the process started
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
