package workload

import (
	"context"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "never-yield",
		Lesson: "tokio_yield",
		Kind:   Broken,
		Description: "A server goroutine answers small requests that arrive every few milliseconds, but " +
			"from time to time it runs a long CPU loop (hundreds of milliseconds) inline, without " +
			"blocking once. While it computes nobody answers: requests wait for the whole loop, and an " +
			"execution trace shows one very long run without blocking (split only by the runtime's " +
			"preemption), like tokio-console's never-yielded task. The fix: move the heavy work to its " +
			"own goroutine or a worker pool and keep the serving goroutine short, or split the work " +
			"into pieces and serve requests in between.",
		Params: []ParamSpec{
			DurationParam("run", "length of each CPU loop", 500*time.Millisecond, time.Millisecond, 5*time.Second),
			DurationParam("every", "time between the starts of two CPU loops", 2*time.Second, time.Millisecond, time.Hour),
			DurationParam("request_every", "time between two requests to the server", 20*time.Millisecond, time.Millisecond, time.Minute),
			FixParam(),
		},
		Caps: "No cap needed: two goroutines (three with fix); the CPU loop keeps at most one core busy for run out of every every, and stops with the workload.",
		Rule: "long-run",
		Fix: "The server hands each CPU loop to a goroutine of its own (one at a time) and goes on answering: " +
			"requests wait microseconds, not the whole loop.",
		Run: runNeverYield,
	})
}

func runNeverYield(ctx context.Context, env *Env) error {
	p := env.Params
	run, every, reqEvery := p.Duration("run"), p.Duration("every"), p.Duration("request_every")
	requests := make(chan time.Time)
	fix := p.Bool("fix")
	var computing atomic.Bool // with fix: a CPU loop runs

	go env.Spawn(ctx, "server")(func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-requests:
				env.Op()
			case <-t.C:
				if !fix {
					// The bug: a long CPU loop inline, in the goroutine that should answer.
					burnCPU(ctx, run)
					continue
				}
				// The fix: the loop runs in a goroutine of its own, and
				// the server goes back to its requests at once.
				if computing.CompareAndSwap(false, true) {
					go env.Spawn(ctx, "compute")(func(ctx context.Context) {
						defer computing.Store(false)
						burnCPU(ctx, run)
					})
				}
			}
		}
	})
	go env.Spawn(ctx, "requester")(func(ctx context.Context) {
		for {
			sent := time.Now()
			select {
			case <-ctx.Done():
				return
			case requests <- sent:
			}
			if waited := time.Since(sent); waited > 10*reqEvery {
				env.Log.Debug("request stalled behind a long run", "waited", waited)
			}
			if !pauseFor(ctx, reqEvery) {
				return
			}
		}
	})
	<-ctx.Done()
	return nil
}
