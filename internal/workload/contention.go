package workload

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "contention",
		Lesson: BeyondTheTalk + "shared state behind a Mutex",
		Kind:   Broken,
		Description: "Many worker goroutines update one shared table, and every update goes through the " +
			"same sync.Mutex. Each critical section is short and does real CPU work, keeping the " +
			"table's running summary up to date (work that grows with the table the lock protects), " +
			"but there are enough workers that the lock is almost always taken: they spend much of " +
			"their time in sync.Mutex.Lock, the mutex profile shows one hot site, and adding workers " +
			"adds waiting, not throughput. The fix: shard the state (one lock per shard), do the work " +
			"outside the lock and publish the result in a brief critical section, or give each worker " +
			"its own copy and merge.",
		Params: []ParamSpec{
			IntParam("workers", "goroutines sharing the lock", 8, 2, 256),
			DurationParam("critical", "CPU work done while holding the lock: the summary of the whole table", 200*time.Microsecond, time.Microsecond, 100*time.Millisecond),
			DurationParam("think", "pause of each worker between two critical sections", 200*time.Microsecond, 0, time.Second),
			FixParam(),
		},
		Caps: "No cap needed: workers goroutines (at most 256), all of which stop with the workload; " +
			"since the lock serialises the CPU work, it keeps at most about one core busy, and with the fix " +
			"a 64th of that.",
		Rule: "lock-contention",
		Fix: "The table is split into 64 shards, each with its own lock and its own summary: an update " +
			"locks one shard and keeps only that shard's summary up to date, a 64th of the work, so the " +
			"workers no longer queue.",
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
	worker := func(ctx context.Context) {
		for ctx.Err() == nil {
			// The bug: every worker funnels through this one lock.
			mu.Lock()
			table[burnCPU(ctx, critical)%1024]++
			mu.Unlock()
			env.Op()
			pauseFor(ctx, think)
		}
	}
	if p.Bool("fix") {
		const nShards = 64
		var shards [nShards]struct {
			mu    sync.Mutex
			table map[uint64]uint64
		}
		for i := range shards {
			shards[i].table = make(map[uint64]uint64)
		}
		worker = func(ctx context.Context) {
			for ctx.Err() == nil {
				// The fix: one lock per shard, and under it the work of
				// that shard alone.
				sh := &shards[rand.N(nShards)]
				sh.mu.Lock()
				sh.table[burnCPU(ctx, critical/nShards)%1024]++
				sh.mu.Unlock()
				env.Op()
				pauseFor(ctx, think)
			}
		}
	}
	for range p.Int("workers") {
		go env.Spawn(ctx, "worker")(worker)
	}
	<-ctx.Done()
	return nil
}
