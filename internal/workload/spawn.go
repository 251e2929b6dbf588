package workload

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "spawn",
		Lesson: "tokio_spawn",
		Kind:   Healthy,
		Description: "On every tick starts a goroutine that lives for a random while, counts one " +
			"operation and ends on its own; nobody waits for its result. tokio::spawn returns a " +
			"JoinHandle that may be dropped while the task runs on; `go f()` returns no handle at all, " +
			"so a detached goroutine must carry its own way to end: here a lifetime and the workload's " +
			"context. A cap on live goroutines keeps a slow machine from piling them up.",
		Params: []ParamSpec{
			DurationParam("interval", "time between spawns", 20*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("life", "longest life of a spawned goroutine; each lives a random share of it", 200*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("max_live", "spawned goroutines alive at once; a tick that finds this many skips its spawn", 64, 1, 1000),
		},
		Run: runSpawn,
	})
}

func runSpawn(ctx context.Context, env *Env) error {
	p := env.Params
	life, maxLive := p.Duration("life"), int64(p.Int("max_live"))
	t := time.NewTicker(p.Duration("interval"))
	defer t.Stop()
	var live atomic.Int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if live.Load() >= maxLive {
			env.Log.Debug("spawn skipped: live goroutines at cap", "cap", maxLive)
			continue
		}
		live.Add(1)
		d := rand.N(life)
		go env.Spawn(ctx, "task")(func(ctx context.Context) {
			defer live.Add(-1)
			if pauseFor(ctx, d) {
				env.Op()
			}
		})
	}
}
