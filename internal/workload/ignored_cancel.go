package workload

import (
	"context"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "ignored-cancel",
		Lesson: "tokio_select",
		Kind:   Broken,
		Description: "Every interval a poller goroutine starts a long job made of short steps, and it " +
			"is handed the workload's context but never looks at ctx.Done. When the workload is " +
			"stopped, the pollers carry on as if nothing happened and finish their jobs up to outlive " +
			"later: goroutines labelled with a stopped workload, still running and still counting " +
			"operations. The fix: check ctx.Err between steps, or wait in a select on ctx.Done and the " +
			"step's timer, and return when the context is cancelled.",
		Params: []ParamSpec{
			DurationParam("every", "time between two new pollers", time.Second, time.Millisecond, time.Hour),
			DurationParam("outlive", "length of each poller's job, hence how long it may outlive a stop", 15*time.Second, time.Millisecond, 10*time.Minute),
			DurationParam("step", "length of one step of a job", 100*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("max_goroutines", "pollers alive at once, per start", 50, 1, 10000),
			FixParam(),
		},
		Caps: "At most max_goroutines pollers (default 50) per start; each ends on its own at most " +
			"outlive (default 15s) after it started, so they outlive a stop by no more than that.",
		MaxLeft: func(p Params) int {
			if p.Bool("fix") {
				return 0
			}
			return p.Int("max_goroutines")
		},
		Rule: "outlived-context",
		Fix: "Each poller waits for its next step in a select on ctx.Done and the step's timer, and returns " +
			"when the context is cancelled: a stop ends them within a step. Pollers started before the fix " +
			"still run out their jobs.",
		ShowsAfterStop: true,
		Run:            runIgnoredCancel,
	})
}

func runIgnoredCancel(ctx context.Context, env *Env) error {
	p := env.Params
	outlive, step, maxLive := p.Duration("outlive"), p.Duration("step"), int64(p.Int("max_goroutines"))
	poll := pollIgnoringCancel
	if p.Bool("fix") {
		poll = pollHonouringCancel
	}
	var live atomic.Int64
	t := time.NewTicker(p.Duration("every"))
	defer t.Stop()
	for {
		if live.Load() < maxLive {
			live.Add(1)
			go env.SpawnDetached(ctx, "poller")(func(ctx context.Context) {
				defer live.Add(-1)
				poll(ctx, env, outlive, step)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pollIgnoringCancel runs a job of the given length in steps.
func pollIgnoringCancel(ctx context.Context, env *Env, length, step time.Duration) {
	end := time.Now().Add(length)
	// The bug: ctx is right here, and the loop never consults it.
	for time.Now().Before(end) {
		time.Sleep(step)
		env.Op()
	}
}

// pollHonouringCancel is pollIgnoringCancel with the fix.
func pollHonouringCancel(ctx context.Context, env *Env, length, step time.Duration) {
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		// The fix: wait for the step or the cancellation, whichever comes first.
		if !pauseFor(ctx, step) {
			return
		}
		env.Op()
	}
}
