package workload

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "yield",
		Lesson: "tokio_yield",
		Kind:   Healthy,
		Description: "Goroutines take strict turns: each round every player makes a move when the shared " +
			"turn counter says so, and while waiting for its turn calls runtime.Gosched to hand its P " +
			"to whoever can run; then all rest until the next round. In Tokio a task must reach an " +
			".await, or call yield_now, before another task on its thread can run. Go preempts " +
			"goroutines anyway, so Gosched is rarely needed: it matters only when more goroutines " +
			"want to run than there are Ps (GOMAXPROCS), which raising players beyond GOMAXPROCS shows. " +
			"A player whose turn is slow to come (the program's Ps busy with others) stops yielding after " +
			"a few tries and sleeps until the player before it moves, as sync.Mutex spins and then parks; " +
			"rounds are short and end in a rest: the yielding never turns into busy polling.",
		Params: []ParamSpec{
			IntParam("players", "goroutines taking turns; more than GOMAXPROCS makes them contend for Ps", 2, 2, 16),
			IntParam("turns", "moves each player makes per round", 20, 1, 10000),
			DurationParam("pause", "rest between rounds", 50*time.Millisecond, time.Millisecond, time.Minute),
		},
		Run: runYield,
	})
}

// yieldTries is how many times a player yields while waiting for its turn
// before it sleeps until the player before it moves. With a free P the
// other player moves within a few yields.
const yieldTries = 100

func runYield(ctx context.Context, env *Env) error {
	p := env.Params
	players, turns := p.Int("players"), p.Int("turns")
	t := time.NewTicker(p.Duration("pause"))
	defer t.Stop()

	var turn, yields atomic.Int64
	// One start channel per player: with a shared one, a player that finished
	// its round early could take another player's start and wait forever for
	// a turn that never comes.
	starts := make([]chan struct{}, players)
	// moved[p] tells player p that the player before it moved: it may be
	// its turn. Buffered, so that a move made between a player's look at
	// the counter and its sleep still wakes it.
	moved := make([]chan struct{}, players)
	for p := range players {
		starts[p], moved[p] = make(chan struct{}, 1), make(chan struct{}, 1)
	}
	done := make(chan struct{}, players)
	for me := range players {
		next := moved[(me+1)%players]
		go env.Spawn(ctx, "player")(func(ctx context.Context) {
			for {
				select {
				case <-ctx.Done():
					return
				case <-starts[me]:
				}
				for k := range turns {
					mine := int64(k*players + me)
					for tries := 0; turn.Load() != mine; tries++ {
						if ctx.Err() != nil {
							return
						}
						if tries < yieldTries {
							runtime.Gosched()
							yields.Add(1)
							continue
						}
						// The turn is slow to come: yielding on would be
						// busy polling. Sleep until the player before moves.
						select {
						case <-ctx.Done():
							return
						case <-moved[me]:
						}
					}
					env.Op()
					turn.Store(mine + 1)
					select {
					case next <- struct{}{}:
					default: // a wake-up is already pending
					}
				}
				done <- struct{}{} // buffered for every player: never blocks
			}
		})
	}

	for round := 1; ; round++ {
		// Every player has reported the previous round done, so nobody reads
		// the counter while it is reset.
		turn.Store(0)
		for _, s := range starts {
			s <- struct{}{}
		}
		for range players {
			select {
			case <-ctx.Done():
				return nil
			case <-done:
			}
		}
		env.Log.Debug("round played", "round", round, "moves", players*turns, "yields", yields.Swap(0))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
