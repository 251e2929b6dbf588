package diagnose

import (
	"fmt"
	"slices"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var contentionRule = &rule{
	id:         "lock-contention",
	lesson:     "beyond the talk: shared state behind a Mutex",
	help:       "one lock wanted by many goroutines at once: short waits, but so many that much of their time goes to waiting",
	thresholds: &contentionThresholds,
	persist:    2,
	check:      checkContention,
}

// The thresholds of lock-contention, in the order of its docs.
var (
	contentionThresholds thresholdSet
	contentionMinWaiting = contentionThresholds.count("min_waiting", 0.5, "goroutines waiting for the lock on average over the window")
	contentionMinWakeups = contentionThresholds.perSec("min_wakeups", 50, "hand-overs of the lock per second")
	contentionMinLost    = contentionThresholds.ratio("min_lost", 0.3, "share of the time its users want to run (running, runnable or waiting for the lock) lost waiting for it")
)

func checkContention(c *check) []found {
	const id = "lock-contention"
	var out []found
	for _, s := range c.snap.Sites {
		key := siteKey(s.Reason, s.Location)
		if !isLockWait(s.Reason) || c.claimedSites[key] != "" || s.Wakeups == 0 {
			continue
		}
		waiting := float64(s.WaitNS) / float64(c.window)
		perSec := float64(s.Wakeups) / (float64(c.window) / 1e9)
		if waiting < c.num(contentionMinWaiting) || perSec < c.num(contentionMinWakeups) {
			continue
		}
		// Its users are the goroutines that waited for a lock in the window;
		// of the time they wanted to run, how much went to waiting for it.
		var ids []int64
		var lost, wanted int64
		for i := range c.snap.Tasks {
			t := &c.snap.Tasks[i]
			w := t.Stats.IdleByReason[s.Reason]
			if w == 0 || c.isClaimed(t.ID) {
				continue
			}
			// Waiting for some lock is not enough: it must be this one's code.
			if _, ok := frameIn(c.stack(t.ID), s.Location.Function); !ok && !slices.Contains(s.Tasks, t.ID) {
				continue
			}
			ids = append(ids, t.ID)
			lost += w
			wanted += t.Stats.BusyNS + t.Stats.SchedNS + w
		}
		lostShare := share(lost, wanted)
		if lostShare < c.ratio(contentionMinLost) {
			continue
		}
		c.claimedSites[key] = id
		c.claim(id, ids...)
		out = append(out, found{key: key, finding: api.Finding{
			Title: fmt.Sprintf("lock contention at %s: %s of its users' working time lost waiting", format.Frame(s.Location), format.Percent(lostShare)),
			Message: fmt.Sprintf("%d goroutines take the lock at %s; %.1f wait for it at any moment, it changes hands %.0f times "+
				"a second, and of the time they want to run, %s goes to waiting in %s: adding goroutines adds waiting, not throughput.",
				len(ids), format.Frame(s.Location), waiting, perSec, format.Percent(lostShare), s.Reason),
			Evidence: api.Evidence{Tasks: capIDs(ids, 100), Sites: []api.Frame{s.Location},
				Figures: map[string]float64{"waiting": waiting, "handovers_per_second": perSec, "lost_share": lostShare,
					"mutex_wait_seconds_total": float64(c.snap.Process.MutexWaitNS) / 1e9}},
			Advice: "Shard the state (one lock per shard), do the work outside the lock and publish the result in a brief " +
				"critical section, or give each goroutine its own copy and merge: more goroutines on one lock add waiting, not throughput.",
		}})
	}
	return out
}
