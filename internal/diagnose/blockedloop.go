package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var blockedLoopRule = &rule{
	id:         "blocked-loop",
	lesson:     "tokio_blocking",
	help:       "the goroutine that serves a queue makes slow calls, so senders pile up in chan send while it sleeps, waits or computes",
	thresholds: &blockedLoopThresholds,
	check:      checkBlockedLoop,
}

// The thresholds of blocked-loop, in the order of its docs.
var (
	blockedLoopThresholds   thresholdSet
	blockedLoopMinWait      = blockedLoopThresholds.duration("min_wait", 20*time.Millisecond, "mean wait of the senders per wake-up")
	blockedLoopMinWaiting   = blockedLoopThresholds.count("min_waiting", 1, "senders waiting on average over the window")
	blockedLoopMinElsewhere = blockedLoopThresholds.ratio("min_elsewhere", 0.5, "share of the server's time spent on something other than receiving")
)

func checkBlockedLoop(c *check) []found {
	const id = "blocked-loop"
	var out []found
	for _, s := range c.snap.Sites {
		key := siteKey(s.Reason, s.Location)
		if s.Reason != "chan send" || c.claimedSites[key] != "" || s.Wakeups == 0 || len(s.Waker) == 0 {
			continue
		}
		meanWait := float64(s.WaitNS) / float64(s.Wakeups)
		waiting := float64(s.WaitNS) / float64(c.window)
		if meanWait < float64(c.dur(blockedLoopMinWait)) || waiting < c.num(blockedLoopMinWaiting) {
			continue
		}
		recv, ok := userFrame(s.Waker)
		if !ok {
			continue
		}
		// The server: the goroutine running the receiving function. What it
		// does when it is not receiving is what holds the senders up.
		var server *api.Task
		var call api.Frame
		for i := range c.snap.Tasks {
			t := &c.snap.Tasks[i]
			if t.Location == s.Location {
				continue
			}
			if f, ok := frameIn(c.stack(t.ID), recv.Function); ok {
				server, call = t, f
				break
			}
		}
		if server == nil || server.Stats.TotalNS == 0 {
			continue
		}
		receiving := server.Stats.IdleByReason["chan receive"] + server.Stats.IdleByReason["select"] + server.Stats.SchedNS
		elsewhere := 1 - share(receiving, server.Stats.TotalNS)
		if elsewhere < c.ratio(blockedLoopMinElsewhere) {
			continue
		}
		doing := "computing"
		if server.State == "waiting" && !isChanWait(server.WaitReason) {
			doing = "blocked in " + server.WaitReason
		} else if server.State == "syscall" {
			doing = "in a system call"
		} else if server.State == "waiting" {
			call = recv
			doing = "busy with each item"
		}
		c.claimedSites[key] = id
		c.claim(id, s.Tasks...)
		c.claim(id, server.ID)
		out = append(out, found{key: key, finding: api.Finding{
			Title: fmt.Sprintf("serving loop blocked at %s: senders wait at %s", format.Frame(call), format.Frame(s.Location)),
			Message: fmt.Sprintf("Goroutine %d (%s) is the only reader of the queue that %s sends to, and spends %s of its "+
				"time elsewhere (now %s at %s): %.1f senders wait at a time, %s per item on average.",
				server.ID, server.Name, format.Frame(s.Location), format.Percent(elsewhere), doing, format.Frame(call), waiting, format.Nanos(int64(meanWait))),
			Evidence: api.Evidence{Tasks: append(capIDs(s.Tasks, 99), server.ID), Sites: []api.Frame{call, s.Location, recv},
				Figures: map[string]float64{"senders_waiting": waiting, "mean_wait_ms": meanWait / 1e6, "server_elsewhere_share": elsewhere}},
			Advice: "Keep the serving loop to dispatching: hand each slow call to a bounded pool of workers (or make it " +
				"asynchronous and collect the result on another channel), so the queue drains at the rate it fills.",
		}})
	}
	return out
}
