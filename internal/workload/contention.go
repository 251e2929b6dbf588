package workload

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "contention",
		Lesson: BeyondTheTalk + "shared state behind a Mutex",
		Kind:   Broken,
		Description: "Many worker goroutines update one shared table, and every update goes through the " +
			"same sync.Mutex. Each critical section is short and does real CPU work, but there are " +
			"enough workers that the lock is almost always taken: they spend much of their time in " +
			"sync.Mutex.Lock, the mutex profile shows one hot site, and adding workers adds waiting, " +
			"not throughput. The fix: shard the state (one lock per shard), do the work outside the " +
			"lock and publish the result in a brief critical section, or give each worker its own copy " +
			"and merge.",
		Params: []ParamSpec{
			IntParam("workers", "goroutines sharing the lock", 8, 2, 256),
			DurationParam("critical", "CPU work done while holding the lock", 200*time.Microsecond, time.Microsecond, 100*time.Millisecond),
			DurationParam("think", "pause of each worker between two critical sections", 200*time.Microsecond, 0, time.Second),
		},
		Caps: "No cap needed: workers goroutines (at most 256), all of which stop with the workload; " +
			"since the lock serialises the CPU work, it keeps at most about one core busy.",
		Run: runContention,
	})
}

func runContention(ctx context.Context, env *Env) error {
	p := env.Params
	critical, think := p.Duration("critical"), p.Duration("think")
	var (
		mu    sync.Mutex
		table = make(map[uint64]uint64)
	)
	for range p.Int("workers") {
		go env.Spawn(ctx, "worker")(func(ctx context.Context) {
			for ctx.Err() == nil {
				// The bug: every worker funnels through this one lock.
				mu.Lock()
				table[burnCPU(ctx, critical)%1024]++
				mu.Unlock()
				env.Op()
				pauseFor(ctx, think)
			}
		})
	}
	<-ctx.Done()
	return nil
}
