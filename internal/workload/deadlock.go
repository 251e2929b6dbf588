package workload

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "deadlock",
		Lesson: BeyondTheTalk + "shared state behind a Mutex",
		Kind:   Broken,
		Description: "Two goroutines transfer money between the same two accounts in opposite " +
			"directions. Each locks the account it pays from, then the one it pays to: one takes A then " +
			"B, the other B then A. Each ends up holding one lock and waiting for the other's, forever: " +
			"both sit in sync.Mutex.Lock and make no progress. A new pair starts every interval, so the " +
			"deadlock recurs. The fix: take the locks in one global order (say, by account ID) whatever " +
			"the direction of the transfer.",
		Params: []ParamSpec{
			DurationParam("every", "time between two deadlocking pairs", 5*time.Second, time.Millisecond, time.Hour),
			IntParam("max_pairs", "pairs started per start (two goroutines each)", 5000, 1, 5000),
			FixParam(),
		},
		Caps: "At most max_pairs pairs (default 5,000, so 10,000 goroutines) per start. Deadlocked " +
			"goroutines can never be reclaimed, not even by stopping the workload: only they reference " +
			"their mutexes, which is what lets the goroutineleak profile see them. Restart the process to free them.",
		MaxLeft: func(p Params) int { return 2 * p.Int("max_pairs") },
		Rule:    "deadlock",
		Fix: "Both transfers take the two locks in one order, by account ID, whatever the direction: each " +
			"pair completes. The pairs deadlocked before the fix stay stuck for good (see the caps): the " +
			"finding stays, naming them, and stops growing.",
		LeaksForGood: true,
		Run:          runDeadlock,
	})
}

type account struct {
	id      int
	mu      sync.Mutex
	balance int
}

func runDeadlock(ctx context.Context, env *Env) error {
	p := env.Params
	maxPairs := p.Int("max_pairs")
	t := time.NewTicker(p.Duration("every"))
	defer t.Stop()
	for pairs := 0; ; {
		if p.Bool("fix") {
			startOrderedPair(ctx, env)
			env.Op()
		} else if pairs < maxPairs {
			startDeadlockPair(ctx, env)
			pairs++
			env.Op()
			if pairs == maxPairs {
				env.Log.Warn("deadlock cap reached; no more pairs until restart", "pairs", pairs)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// startDeadlockPair starts two transfers in opposite directions. The accounts
// are reachable only from the two goroutines, so once they deadlock nothing
// else can ever unlock them.
func startDeadlockPair(ctx context.Context, env *Env) {
	a, b := &account{id: 1, balance: 100}, &account{id: 2, balance: 100}
	var bothHold sync.WaitGroup
	bothHold.Add(2)
	go env.SpawnDetached(ctx, "transfer")(func(context.Context) { transfer(a, b, 10, &bothHold) })
	go env.SpawnDetached(ctx, "transfer")(func(context.Context) { transfer(b, a, 10, &bothHold) })
}

func transfer(from, to *account, amount int, bothHold *sync.WaitGroup) {
	from.mu.Lock()
	defer from.mu.Unlock()
	// Both hold their first lock before either reaches for the second, which
	// makes certain a deadlock that real code hits only now and then.
	bothHold.Done()
	bothHold.Wait()
	// The bug: the other transfer takes these two locks in the opposite order.
	to.mu.Lock()
	defer to.mu.Unlock()
	from.balance -= amount
	to.balance += amount
}

// startOrderedPair is the same two transfers with the fix: they complete,
// and the workload waits for neither.
func startOrderedPair(ctx context.Context, env *Env) {
	a, b := &account{id: 1, balance: 100}, &account{id: 2, balance: 100}
	var bothHold sync.WaitGroup
	bothHold.Add(2)
	go env.Spawn(ctx, "transfer")(func(context.Context) { transferOrdered(a, b, 10, &bothHold) })
	go env.Spawn(ctx, "transfer")(func(context.Context) { transferOrdered(b, a, 10, &bothHold) })
}

// transferOrdered is transfer with the fix: the locks are taken in the order
// of the account IDs, so two transfers between the same accounts wait for
// each other at most for one critical section.
func transferOrdered(from, to *account, amount int, started *sync.WaitGroup) {
	started.Done()
	started.Wait() // both start together, as the broken pair does
	first, second := from, to
	if to.id < from.id {
		first, second = to, from
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	second.mu.Lock()
	defer second.mu.Unlock()
	from.balance -= amount
	to.balance += amount
}
