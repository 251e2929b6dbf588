package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

func init() {
	Register(Spec{
		Name:   "join",
		Lesson: "tokio_join",
		Kind:   Healthy,
		Description: "Each round starts a batch of tasks and waits for all of them, twice: first with a " +
			"sync.WaitGroup and one goroutine per task, then with an errgroup.Group whose SetLimit caps " +
			"how many run at once and whose first error cancels the others through its context. Tokio's " +
			"join! and join_all poll futures together and hand back their results in order, and a JoinSet " +
			"bounds and collects spawned tasks; in Go every task writes into its own slot of a slice, so " +
			"the results come back in task order however the tasks finish, and Wait is the join.",
		Params: []ParamSpec{
			IntParam("tasks", "tasks per batch", 8, 1, 256),
			IntParam("limit", "tasks the errgroup batch runs at once (errgroup SetLimit)", 3, 1, 256),
			DurationParam("work", "longest time a task takes; each takes a random share of it", 20*time.Millisecond, time.Millisecond, 10*time.Second),
			FloatParam("fail_rate", "chance that a task of the errgroup batch fails, which cancels the rest of its batch", 0.05, 0, 1),
			DurationParam("pause", "time between rounds", 100*time.Millisecond, 0, time.Minute),
		},
		Run: runJoin,
	})
}

// joinTask is one unit of work: it returns a value computed from its index
// so that a caller can check where each result landed.
type joinTask func(ctx context.Context, i int) (int, error)

func runJoin(ctx context.Context, env *Env) error {
	p := env.Params
	n, limit := p.Int("tasks"), p.Int("limit")
	work, failRate, pause := p.Duration("work"), p.Float("fail_rate"), p.Duration("pause")

	task := func(ctx context.Context, i int) (int, error) {
		if !pauseFor(ctx, rand.N(work)) {
			return 0, ctx.Err()
		}
		env.Op()
		return i * i, nil
	}
	failing := func(ctx context.Context, i int) (int, error) {
		v, err := task(ctx, i)
		if err == nil && rand.Float64() < failRate {
			return 0, fmt.Errorf("task %d failed on purpose", i)
		}
		return v, err
	}

	for {
		res, err := joinAll(ctx, env, n, task)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("join: WaitGroup batch: %w", err)
		}
		env.Log.Debug("WaitGroup batch joined", "results", res)

		res, err = joinLimited(ctx, n, limit, failing)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			env.Log.Debug("errgroup batch cancelled by its first error", "err", err)
		} else {
			env.Log.Debug("errgroup batch joined", "results", res)
		}
		if !pauseFor(ctx, pause) {
			return nil
		}
	}
}

// joinAll is join_all: every task runs in its own goroutine and the caller
// waits for all of them. Each goroutine writes only its own slots, so the
// slices need no lock and the results keep the order of the tasks.
func joinAll(ctx context.Context, env *Env, n int, task joinTask) ([]int, error) {
	results := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go env.Spawn(ctx, "task")(func(ctx context.Context) {
			defer wg.Done()
			results[i], errs[i] = task(ctx, i)
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// joinLimited is a bounded JoinSet: at most limit tasks run at once, and the
// first error cancels the context the others watch, so a failed batch ends
// early instead of finishing work nobody will use.
func joinLimited(ctx context.Context, n, limit int, task joinTask) ([]int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	results := make([]int, n)
	for i := range n {
		g.Go(func() error {
			var err error
			// errgroup starts the goroutine itself, so it cannot go through
			// Env.Go; it inherits this goroutine's labels, and the role is
			// relabelled so profiles tell the tasks from the goroutine that
			// waits for them. Wait below keeps the stop clean.
			pprof.Do(gctx, pprof.Labels("role", "task"), func(ctx context.Context) {
				results[i], err = task(ctx, i)
			})
			return err
		})
	}
	err := g.Wait()
	return results, err
}
