package workload

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "cpu-pool",
		Lesson: "tokio_spawn_blocking",
		Kind:   Healthy,
		Description: "A fixed pool of worker goroutines counts primes by trial division, one bounded " +
			"range at a time, while a ticker goroutine measures how late its ticks arrive. Tokio must " +
			"move CPU-heavy or blocking work off its async worker threads with spawn_blocking, or every " +
			"task on those threads stalls; Go's scheduler preempts long-running goroutines, so CPU work " +
			"may run in goroutines, but keeping the busy goroutines fewer than GOMAXPROCS (and resting " +
			"between chunks) is what keeps latency-sensitive goroutines, like the ticker, on time.",
		Params: []ParamSpec{
			IntParam("workers", "worker goroutines; 0 means max(1, GOMAXPROCS/2)", 0, 0, 64),
			IntParam("chunk", "numbers each job tests for primality", 5000, 100, 100_000),
			FloatParam("duty", "share of its time each worker computes; it rests for the remainder", 0.5, 0.05, 1),
			DurationParam("tick", "interval of the latency-sensitive ticker", 10*time.Millisecond, time.Millisecond, time.Second),
		},
		Run: runCPUPool,
	})
}

// cpuPoolCeiling bounds the numbers tested, so a job costs the same after an
// hour as after a second: the range wraps around to 2.
const cpuPoolCeiling = 2_000_000

func runCPUPool(ctx context.Context, env *Env) error {
	p := env.Params
	workers := p.Int("workers")
	if workers == 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	chunk, duty := p.Int("chunk"), p.Float("duty")

	// Workers take the next range from a shared counter rather than from a
	// channel fed by a dispatcher: the pool stays bounded by its goroutine
	// count, and no sender sits blocked waiting for a free worker.
	var next, primes atomic.Int64
	take := func() (lo, hi int) {
		end := int(next.Add(int64(chunk)))
		lo = 2 + (end-chunk)%cpuPoolCeiling
		return lo, min(lo+chunk, cpuPoolCeiling+2)
	}
	for range workers {
		go env.Spawn(ctx, "worker")(func(ctx context.Context) {
			for ctx.Err() == nil {
				began := time.Now()
				primes.Add(int64(cpuPoolCountPrimes(take())))
				env.Op()
				busy := time.Since(began)
				if !pauseFor(ctx, time.Duration(float64(busy)*(1-duty)/duty)) {
					return
				}
			}
		})
	}

	tick := p.Duration("tick")
	go env.Spawn(ctx, "ticker")(func(ctx context.Context) {
		t := time.NewTicker(tick)
		defer t.Stop()
		var worst time.Duration
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case due := <-t.C:
				worst = max(worst, time.Since(due))
			}
			if n%int(max(1, time.Second/tick)) == 0 {
				env.Log.Debug("ticker lateness", "worst", worst, "workers", workers, "primes", primes.Load())
				worst = 0
			}
		}
	})

	<-ctx.Done()
	return nil
}

// cpuPoolCountPrimes counts the primes in [lo, hi) by trial division: plain
// CPU work with no allocation and no blocking.
func cpuPoolCountPrimes(lo, hi int) int {
	n := 0
	for v := max(lo, 2); v < hi; v++ {
		if cpuPoolIsPrime(v) {
			n++
		}
	}
	return n
}

func cpuPoolIsPrime(v int) bool {
	if v < 4 {
		return v >= 2
	}
	if v%2 == 0 {
		return false
	}
	for d := 3; d*d <= v; d += 2 {
		if v%d == 0 {
			return false
		}
	}
	return true
}
