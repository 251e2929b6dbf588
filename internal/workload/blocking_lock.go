package workload

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "blocking-lock",
		Lesson: "tokio_blocking",
		Kind:   Broken,
		Description: "A holder goroutine takes a sync.Mutex and then makes a slow, blocking call (here a " +
			"sleep standing in for disk or network I/O) before it unlocks, while waiter goroutines that " +
			"only need the lock for a moment queue up behind it. The talk warns against blocking where " +
			"others wait; in Go it shows as many goroutines in sync.Mutex.Lock, one goroutine asleep with " +
			"the lock, and a mutex profile dominated by the holder's unlock. The fix: do the slow call " +
			"outside the critical section and hold the lock only to read or publish the result.",
		Params: []ParamSpec{
			IntParam("waiters", "goroutines that need the lock briefly", 8, 1, 256),
			DurationParam("hold", "how long the slow call takes while the lock is held", 200*time.Millisecond, time.Millisecond, 10*time.Second),
			DurationParam("gap", "how long the holder goes without the lock between slow calls", 20*time.Millisecond, 0, 10*time.Second),
			DurationParam("think", "pause of each waiter between two uses of the lock", 5*time.Millisecond, 0, 10*time.Second),
			FixParam(),
		},
		Caps: "No cap needed: waiters+1 goroutines (at most 257), all of which stop with the workload.",
		Rule: "lock-held-blocking",
		Fix: "The holder takes the lock only to update the state, unlocks, and then makes the slow call: " +
			"the waiters get the lock within microseconds.",
		Run: runBlockingLock,
	})
}

func runBlockingLock(ctx context.Context, env *Env) error {
	p := env.Params
	hold, gap, think := p.Duration("hold"), p.Duration("gap"), p.Duration("think")
	var (
		mu    sync.Mutex
		state int // what the lock protects: a counter every role updates
	)
	holder := func(ctx context.Context) {
		for ctx.Err() == nil {
			mu.Lock()
			state++
			// The bug: the lock is held across the slow call.
			slowCall(ctx, hold)
			mu.Unlock()
			env.Op()
			pauseFor(ctx, gap)
		}
	}
	if p.Bool("fix") {
		holder = func(ctx context.Context) {
			for ctx.Err() == nil {
				mu.Lock()
				state++
				mu.Unlock()
				// The fix: the slow call runs with the lock released.
				slowCall(ctx, hold)
				env.Op()
				pauseFor(ctx, gap)
			}
		}
	}
	go env.Spawn(ctx, "holder")(holder)
	for range p.Int("waiters") {
		go env.Spawn(ctx, "waiter")(func(ctx context.Context) {
			for ctx.Err() == nil {
				mu.Lock()
				state++
				mu.Unlock()
				env.Op()
				pauseFor(ctx, think)
			}
		})
	}
	<-ctx.Done()
	return nil
}
