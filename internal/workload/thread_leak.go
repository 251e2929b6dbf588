package workload

import (
	"context"
	"runtime"
	"time"
)

func init() {
	Register(Spec{
		Name:   "thread-leak",
		Lesson: "thread_to_tokio",
		Kind:   Broken,
		Description: "Every interval a new session goroutine calls runtime.LockOSThread (as code that " +
			"talks to a thread-bound C library must) and then goes back to waiting for work without " +
			"ever calling UnlockOSThread. A locked goroutine keeps its OS thread even while it waits, " +
			"so the runtime starts another thread for everybody else: /sched/threads/total climbs by " +
			"one per session, and the dump shows goroutines \"locked to thread\". Threads are heavy, as " +
			"the talk says. The fix: pair every LockOSThread with a deferred UnlockOSThread, and keep " +
			"thread-bound work in one long-lived goroutine that others send requests to.",
		Params: []ParamSpec{
			DurationParam("every", "time between two new locked sessions", 200*time.Millisecond, time.Millisecond, time.Hour),
			IntParam("max_threads", "locked sessions, hence extra OS threads, per start", 200, 1, 200),
			DurationParam("heartbeat", "how often each session wakes up to do a little work", time.Second, time.Millisecond, time.Hour),
			FixParam(),
		},
		Caps: "At most max_threads (default 200) locked goroutines, each pinning one OS thread. They " +
			"exit when the workload stops, still locked, and the runtime then ends their threads.",
		Rule: "thread-growth",
		Fix: "Each session locks its thread only around the thread-bound call and unlocks it (deferred) before " +
			"it waits: the sessions share the runtime's threads, and the locked threads of the broken form end " +
			"with it.",
		Run: runThreadLeak,
	})
}

func runThreadLeak(ctx context.Context, env *Env) error {
	p := env.Params
	maxThreads, heartbeat := p.Int("max_threads"), p.Duration("heartbeat")
	t := time.NewTicker(p.Duration("every"))
	defer t.Stop()
	session := lockedSession
	if p.Bool("fix") {
		session = unlockedSession
	}
	for sessions := 0; ; {
		if sessions < maxThreads {
			go env.Spawn(ctx, "session")(func(ctx context.Context) { session(ctx, env, heartbeat) })
			sessions++
			if sessions == maxThreads {
				env.Log.Warn("thread-leak cap reached; no more locked sessions until restart", "sessions", sessions)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func lockedSession(ctx context.Context, env *Env, heartbeat time.Duration) {
	// The bug: the thread is locked and never unlocked, so this goroutine keeps
	// it while it waits below. Returning while locked makes the runtime end the
	// thread, which is how the workload gives its threads back when stopped.
	runtime.LockOSThread()
	env.Op()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			env.Op()
		}
	}
}

// unlockedSession is lockedSession with the fix: the thread is locked only
// for the call that needs it, and the session waits without it.
func unlockedSession(ctx context.Context, env *Env, heartbeat time.Duration) {
	threadBound := func() {
		// The fix: every LockOSThread has its deferred UnlockOSThread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		env.Op()
	}
	threadBound()
	everyTick(ctx, heartbeat, threadBound)
}
