package workload

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "join-never-done",
		Lesson: "tokio_join",
		Kind:   Broken,
		Description: "Every interval a joiner goroutine starts a batch of tasks, one goroutine each, and " +
			"waits for all of them with a sync.WaitGroup: Add before each go statement, Done at the end " +
			"of each task, Wait in the joiner. But a task that fails returns early, on a path that " +
			"skips its Done: the count never reaches zero, and the joiner waits in " +
			"sync.WaitGroup.Wait for goroutines that have all returned. The talk's join! and join_all " +
			"cannot lose a task that way, since the futures themselves are awaited; a WaitGroup is only a " +
			"counter, and every path out of a task must bring it down. The other misuse, Add inside the " +
			"goroutine, lets Wait return before the tasks are counted (go vet's waitgroup check finds it).",
		Params: []ParamSpec{
			DurationParam("every", "time between two batches", 500*time.Millisecond, time.Millisecond, time.Hour),
			IntParam("tasks", "tasks per batch", 4, 1, 64),
			DurationParam("work", "longest time a task takes; each takes a random share of it", 1500*time.Millisecond, time.Millisecond, time.Minute),
			FloatParam("fail_rate", "chance that a task fails", 0.2, 0, 1),
			IntParam("max_stuck", "joiners stuck at once; past it batches use the fix", 20, 1, 1000),
			FixParam(),
		},
		Caps: "At most max_stuck (default 20) joiners stuck at once, past which batches run the fixed " +
			"tasks. The workload keeps each stuck batch's WaitGroup and, when it stops, makes up the Done " +
			"calls the failed tasks skipped, so no joiner outlives it (a program that cannot do that " +
			"keeps them until it exits).",
		Rule: "waitgroup-stuck",
		Fix: "Each task defers its Done as its first statement, so every path out of it, the early return " +
			"of a failure included, counts it done: every joiner returns.",
		Run: runJoinNeverDone,
	})
}

// joinBatch is one batch of tasks and the WaitGroup its joiner waits on.
type joinBatch struct {
	wg sync.WaitGroup
	// skipped counts the Done calls the failed tasks skipped: the lab's
	// own bookkeeping, so that it can make them up when it stops.
	skipped atomic.Int64
}

var errJoinTask = errors.New("task failed")

func runJoinNeverDone(ctx context.Context, env *Env) error {
	p := env.Params
	n, work, failRate, maxStuck := p.Int("tasks"), p.Duration("work"), p.Float("fail_rate"), int64(p.Int("max_stuck"))
	var (
		tasks   sync.WaitGroup // every task of every batch: the lab's bookkeeping
		mu      sync.Mutex
		waiting = map[*joinBatch]bool{} // batches whose joiner waits
		stuck   atomic.Int64
	)
	task := func(ctx context.Context, i int) error {
		if !pauseFor(ctx, rand.N(work)) {
			return ctx.Err()
		}
		if rand.Float64() < failRate {
			return errJoinTask
		}
		env.Op()
		return nil
	}
	t := time.NewTicker(p.Duration("every"))
	defer t.Stop()
	for {
		b := &joinBatch{}
		fixed := p.Bool("fix") || stuck.Load() >= maxStuck
		mu.Lock()
		waiting[b] = true
		mu.Unlock()
		tasks.Add(n)
		stuck.Add(1) // until its Wait returns
		go env.Spawn(ctx, "joiner")(func(ctx context.Context) {
			defer stuck.Add(-1)
			joinBatchOf(ctx, env, b, n, fixed, task, &tasks)
			mu.Lock()
			delete(waiting, b)
			mu.Unlock()
		})
		select {
		case <-ctx.Done():
			// Make up the Done calls the failed tasks skipped, once every
			// task has returned, so that no joiner outlives the workload.
			tasks.Wait()
			mu.Lock()
			for b := range waiting {
				for range b.skipped.Load() {
					b.wg.Done()
				}
			}
			mu.Unlock()
			return nil
		case <-t.C:
		}
	}
}

// joinBatchOf starts n tasks, one goroutine each, and waits for them all.
// done counts every task's return, for the lab's bookkeeping.
func joinBatchOf(ctx context.Context, env *Env, b *joinBatch, n int, fixed bool, task func(context.Context, int) error, done *sync.WaitGroup) {
	for i := range n {
		b.wg.Add(1)
		if fixed {
			go env.Spawn(ctx, "task")(func(ctx context.Context) {
				defer done.Done()
				// The fix: Done is deferred first, so every path out counts.
				defer b.wg.Done()
				_ = task(ctx, i)
			})
			continue
		}
		go env.Spawn(ctx, "task")(func(ctx context.Context) {
			defer done.Done()
			if err := task(ctx, i); err != nil {
				b.skipped.Add(1)
				// The bug: this early return skips the Done below, and the joiner waits forever.
				return
			}
			b.wg.Done()
		})
	}
	b.wg.Wait()
}
