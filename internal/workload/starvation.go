package workload

import (
	"context"
	"runtime"
	"time"
)

// maxHogs is the cap on CPU-bound goroutines (shared/workloads.md, Caps).
func maxHogs() int { return runtime.GOMAXPROCS(0) + 2 }

func init() {
	Register(Spec{
		Name:   "starvation",
		Lesson: "tokio_spawn_blocking",
		Kind:   Broken,
		Description: "More CPU-bound goroutines than there are Ps (GOMAXPROCS) compute without ever " +
			"blocking, in bursts, next to a ticker that should run every few milliseconds and measures " +
			"how late it is. During a burst every P is busy, so the ticker waits in the run queue until " +
			"the scheduler preempts a hog (about every 10ms): long runnable times, a heavy tail in " +
			"/sched/latencies, and a ticker that logs its lateness. The talk moves such work to " +
			"spawn_blocking; in Go, bound the CPU work to fewer goroutines than GOMAXPROCS (a worker " +
			"pool) so latency-sensitive goroutines always find a free P.",
		Params: []ParamSpec{
			IntParam("hogs", "CPU-bound goroutines; more than GOMAXPROCS starves the rest", runtime.GOMAXPROCS(0)+1, 1, maxHogs()),
			DurationParam("burst", "how long the hogs compute without blocking", 2*time.Second, 10*time.Millisecond, time.Minute),
			DurationParam("rest", "how long the hogs rest between bursts (0: never)", 2*time.Second, 0, time.Minute),
			DurationParam("period", "the ticker's period", 5*time.Millisecond, 100*time.Microsecond, time.Second),
			DurationParam("report", "how often the ticker logs its lateness", 10*time.Second, 10*time.Millisecond, time.Hour),
			FixParam(),
		},
		Caps: "At most GOMAXPROCS+2 hogs (the bound of hogs, enforced again at run time), which " +
			"compute only during bursts and stop with the workload.",
		Rule: "sched-starvation",
		Fix: "The CPU work runs on a pool of GOMAXPROCS-1 goroutines (at least one) instead of hogs, so one " +
			"P is always free and the ticker runs on time.",
		Run: runStarvation,
	})
}

func runStarvation(ctx context.Context, env *Env) error {
	p := env.Params
	burst, rest := p.Duration("burst"), p.Duration("rest")
	hogs := min(p.Int("hogs"), maxHogs())
	if p.Bool("fix") {
		// The fix: fewer CPU-bound goroutines than Ps, whatever hogs asks.
		hogs = max(1, runtime.GOMAXPROCS(0)-1)
	}
	for range hogs {
		go env.Spawn(ctx, "hog")(func(ctx context.Context) {
			for ctx.Err() == nil {
				// The bug: more goroutines computing without a pause than there are Ps.
				burnCPU(ctx, burst)
				pauseFor(ctx, rest)
			}
		})
	}
	go env.Spawn(ctx, "ticker")(func(ctx context.Context) {
		tickAndMeasure(ctx, env, p.Duration("period"), p.Duration("report"))
	})
	<-ctx.Done()
	return nil
}

// tickAndMeasure ticks every period and logs, every report, how late its ticks
// were: the symptom a latency-sensitive goroutine sees when it is starved.
func tickAndMeasure(ctx context.Context, env *Env, period, report time.Duration) {
	var (
		ticks       int
		total, peak time.Duration
		since       = time.Now()
		next        = time.Now()
	)
	for {
		next = next.Add(period)
		if !pauseFor(ctx, time.Until(next)) {
			return
		}
		late := time.Since(next)
		env.Op()
		ticks++
		total += late
		peak = max(peak, late)
		if late > period {
			next = time.Now() // skip the missed ticks rather than firing them in a rush
		}
		if time.Since(since) >= report {
			env.Log.Info("ticker lateness", "ticks", ticks, "period", period,
				"mean_late", total/time.Duration(ticks), "max_late", peak)
			ticks, total, peak, since = 0, 0, 0, time.Now()
		}
	}
}
