package workload

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "recursion",
		Lesson: "async recursion",
		Kind:   Healthy,
		Description: "Computes Fibonacci numbers with the naive recursion, splitting each call near the " +
			"top of the tree into two halves computed in parallel: one in a new goroutine, one in the " +
			"caller. Below the cut-off depth the recursion is a plain function call, so one computation " +
			"starts at most 2^cutoff - 1 goroutines. An async fn in Rust cannot call itself without " +
			"Box::pin, because a future's size must be known; a goroutine's stack grows as needed, so " +
			"Go recursion is just recursion. Spawning on every call instead would start a goroutine per " +
			"call: the spawn-storm workload.",
		Params: []ParamSpec{
			IntParam("n", "which Fibonacci number to compute", 24, 1, 32),
			IntParam("cutoff", "depth down to which calls spawn a goroutine; 0 computes serially", 3, 0, 8),
			DurationParam("pause", "time between computations", 20*time.Millisecond, 0, time.Minute),
		},
		Run: runRecursion,
	})
}

func runRecursion(ctx context.Context, env *Env) error {
	p := env.Params
	n, cutoff, pause := p.Int("n"), p.Int("cutoff"), p.Duration("pause")
	for {
		var spawned atomic.Int64
		began := time.Now()
		v, err := recursionFib(ctx, env, n, 0, cutoff, &spawned)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		env.Op()
		env.Log.Debug("fib computed", "n", n, "fib", v, "goroutines", spawned.Load(), "took", time.Since(began))
		if !pauseFor(ctx, pause) {
			return nil
		}
	}
}

type recursionResult struct {
	v   uint64
	err error
}

// recursionFib computes fib(n). Calls above depth cutoff compute fib(n-1) in
// a new goroutine and fib(n-2) themselves; deeper calls recurse serially,
// which keeps the goroutine count at most 2^cutoff - 1 however large n is.
// ctx is checked only where goroutines start: below the cut-off a subtree is
// small, bounded CPU work.
func recursionFib(ctx context.Context, env *Env, n, depth, cutoff int, spawned *atomic.Int64) (uint64, error) {
	if n < 2 {
		return uint64(n), nil
	}
	if depth >= cutoff {
		return recursionFibSerial(n), nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Buffered so the child can always deliver and end, even if the parent
	// were to stop listening.
	left := make(chan recursionResult, 1)
	spawned.Add(1)
	go env.Spawn(ctx, "fib")(func(ctx context.Context) {
		v, err := recursionFib(ctx, env, n-1, depth+1, cutoff, spawned)
		left <- recursionResult{v, err}
	})
	right, errR := recursionFib(ctx, env, n-2, depth+1, cutoff, spawned)
	l := <-left
	return l.v + right, errors.Join(l.err, errR)
}

func recursionFibSerial(n int) uint64 {
	if n < 2 {
		return uint64(n)
	}
	return recursionFibSerial(n-1) + recursionFibSerial(n-2)
}
