package diagnose

import (
	"fmt"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var lockHeldRule = &rule{
	id:         "lock-held-blocking",
	lesson:     "tokio_blocking",
	help:       "a lock is held across a slow or blocking call: waiters queue for long stretches while the holder sleeps, waits or does I/O",
	thresholds: &lockHeldThresholds,
	check:      checkLockHeld,
}

// The thresholds of lock-held-blocking, in the order of its docs.
var (
	lockHeldThresholds thresholdSet
	lockHeldMinWait    = lockHeldThresholds.duration("min_wait", 20*time.Millisecond, "mean wait per wake-up at the lock")
	lockHeldMinWaiting = lockHeldThresholds.count("min_waiting", 1, "goroutines waiting for the lock on average over the window")
)

func checkLockHeld(c *check) []found {
	const id = "lock-held-blocking"
	minWait, minWaiting := float64(c.dur(lockHeldMinWait)), c.num(lockHeldMinWaiting)
	var out []found
	for _, s := range c.snap.Sites {
		key := siteKey(s.Reason, s.Location)
		if !isLockWait(s.Reason) || c.claimedSites[key] != "" || s.Wakeups == 0 {
			continue
		}
		meanWait := float64(s.WaitNS) / float64(s.Wakeups)
		waiting := float64(s.WaitNS) / float64(c.window)
		if meanWait < minWait || waiting < minWaiting {
			continue
		}
		f := api.Finding{
			Evidence: api.Evidence{Tasks: s.Tasks, Sites: []api.Frame{s.Location},
				Figures: map[string]float64{"mean_wait_ms": meanWait / 1e6, "waiting": waiting, "wakeups": float64(s.Wakeups)}},
			Advice: "Do the slow call outside the critical section: read what you need under the lock, unlock, make the " +
				"call, then lock again briefly to publish the result. Never sleep, do I/O or wait on a channel while holding a mutex.",
		}
		// Long waits alone may be a lock that is merely contended (or a
		// loaded machine): the finding needs the holder, blocked elsewhere.
		holder, unlock, call, reason := c.lockHolder(s)
		if holder == nil {
			continue
		}
		f.Title = fmt.Sprintf("lock held across a blocking call at %s", format.Frame(call))
		f.Message = fmt.Sprintf("Goroutine %d (%s) holds the lock that %s waits for while it blocks in %s at %s; "+
			"waiters queue %s per wake-up on average, %.1f goroutines at a time.",
			holder.ID, holder.Name, format.Frame(s.Location), reason, format.Frame(call), format.Nanos(int64(meanWait)), waiting)
		f.Evidence.Tasks = append(slices.Clone(f.Evidence.Tasks), holder.ID)
		f.Evidence.Sites = []api.Frame{call, s.Location, unlock}
		c.claimedSites[key] = id
		c.claim(id, s.Tasks...)
		out = append(out, found{key: key, finding: f})
	}
	return out
}

// lockHolder finds who holds the lock that site s waits for across
// something slow. Each place that woke the waiters (an unlock) is a
// candidate; the goroutine running that code that spends most of its time
// blocked on something other than a lock, and is blocked now within the
// critical section, is the holder, and its frame in that code, seen while
// it was blocked there, is the slow call.
func (c *check) lockHolder(s api.Site) (holder *api.Task, unlock, call api.Frame, reason string) {
	bestShare := 0.5 // the holder blocks elsewhere at least half the time
	for _, w := range s.Wakers {
		if w.Location.Function == "" {
			continue
		}
		for i := range c.snap.Tasks {
			t := &c.snap.Tasks[i]
			if t.Stats.TotalNS == 0 || isLockWait(t.WaitReason) || !userTask(t) {
				continue
			}
			elsewhere := t.Stats.IdleNS + t.Stats.SyscallNS
			for _, r := range lockReasons {
				elsewhere -= t.Stats.IdleByReason[r]
			}
			sh := share(elsewhere, t.Stats.TotalNS)
			if sh <= bestShare {
				continue
			}
			if f, ok := frameIn(c.stack(t.ID), w.Location.Function); ok && blockedHolding(t, f, s.Location, w.Location) {
				holder, unlock, bestShare = t, w.Location, sh
			}
		}
	}
	if holder == nil {
		return nil, api.Frame{}, api.Frame{}, ""
	}
	// Where it blocks with the lock: its frame in the unlocking function,
	// taken when it waits for its usual reason (not in a pause between two
	// critical sections).
	reason = dominantWait(holder)
	if f, ok := frameIn(c.stack(holder.ID), unlock.Function); ok && (holder.WaitReason == reason || holder.State == "syscall" && reason == "syscall") {
		c.e.hist.holderCall[holder.ID] = f
	}
	call, ok := c.e.hist.holderCall[holder.ID]
	if !ok {
		// Not yet seen at its usual wait (say, a handler caught in the
		// select of the client call it makes, where it mostly waits on the
		// network). Where Lock and Unlock are in one function, its frame
		// now lies between them, and that is the call made with the lock
		// held; elsewhere it may be a pause between two critical sections,
		// so the finding names the unlocking site until a later snapshot
		// catches the call.
		call = unlock
		if f, ok := frameIn(c.stack(holder.ID), unlock.Function); ok && s.Location.Function == unlock.Function &&
			f.File == unlock.File && f.Line > s.Location.Line && f.Line < unlock.Line {
			call = f
		}
	}
	if reason == "syscall" {
		reason = "a system call"
	}
	return holder, unlock, call, reason
}

// blockedHolding reports whether task t, whose frame in the unlocking
// function is f, may be blocked while holding the lock taken at lock and
// released at unlock. It must be blocked now (waiting or in a system call),
// and not past the unlock, nor, when that function also takes the lock,
// before the Lock. Goroutines that merely contend for a lock also block
// between two critical sections (a pause, a channel), and on a loaded
// machine that can be most of their time.
func blockedHolding(t *api.Task, f, lock, unlock api.Frame) bool {
	if t.State != "waiting" && t.State != "syscall" {
		return false
	}
	if f.File != unlock.File {
		return true
	}
	if f.Line > unlock.Line {
		return false
	}
	return lock.Function != unlock.Function || lock.File != f.File || f.Line >= lock.Line
}

// dominantWait is what a task waits for most: a wait reason, or "syscall".
func dominantWait(t *api.Task) string {
	best, most := "", int64(0)
	for r, ns := range t.Stats.IdleByReason {
		if ns > most && !isLockWait(r) {
			best, most = r, ns
		}
	}
	if t.Stats.SyscallNS > most {
		best = "syscall"
	}
	return best
}

func blocked(t *api.Task) int {
	if t.State == "waiting" || t.State == "syscall" {
		return 1
	}
	return 0
}
