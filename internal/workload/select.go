package workload

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "select",
		Lesson: "tokio_select",
		Kind:   Healthy,
		Description: "Each round races several goroutines that sleep for random times; the first to finish " +
			"wins and the others are cancelled through a shared context, then the round waits until every " +
			"loser has noticed and returned. tokio::select! polls several futures and drops the losers, " +
			"which cancels them at their next .await; a goroutine cannot be dropped, so Go cancels by " +
			"closing a context's Done channel that every racer selects on. The result channel has room " +
			"for every racer, so a loser that finishes at the same moment as the winner never blocks.",
		Params: []ParamSpec{
			IntParam("racers", "goroutines racing each round", 3, 2, 64),
			DurationParam("max_sleep", "longest sleep of a racer; each sleeps a random share of it", 100*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("pause", "time between rounds", 50*time.Millisecond, 0, time.Minute),
		},
		Run: runSelect,
	})
}

func runSelect(ctx context.Context, env *Env) error {
	p := env.Params
	racers, maxSleep, pause := p.Int("racers"), p.Duration("max_sleep"), p.Duration("pause")
	for {
		sleeps := make([]time.Duration, racers)
		for i := range sleeps {
			sleeps[i] = rand.N(maxSleep)
		}
		winner, cancelled, err := selectRace(ctx, env, sleeps)
		if err != nil {
			return nil // only the workload's own cancellation ends a race early
		}
		env.Op()
		env.Log.Debug("race won", "winner", winner, "slept", sleeps[winner], "cancelled", cancelled)
		if !pauseFor(ctx, pause) {
			return nil
		}
	}
}

// selectRace starts one racer per entry of sleeps and returns the index of
// the first to finish and how many racers saw the cancellation. It returns
// only after every racer has ended, so no round leaves goroutines behind.
func selectRace(ctx context.Context, env *Env, sleeps []time.Duration) (winner, cancelled int, err error) {
	raceCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	won := make(chan int, len(sleeps))
	var lost atomic.Int64
	var wg sync.WaitGroup
	for i, d := range sleeps {
		wg.Add(1)
		go env.Spawn(raceCtx, "racer")(func(ctx context.Context) {
			defer wg.Done()
			if !pauseFor(ctx, d) {
				lost.Add(1)
				return
			}
			won <- i
		})
	}
	select {
	case winner = <-won:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	wg.Wait()
	return winner, int(lost.Load()), err
}
