package workload

import (
	"context"
	"runtime"
	"time"
)

func init() {
	Register(Spec{
		Name:   "busy-poll",
		Lesson: "tokio_yield",
		Kind:   Broken,
		Description: "A spinner goroutine waits for rare events by polling: a select with a default " +
			"branch in a loop, calling runtime.Gosched when nothing is ready. It never blocks, so it " +
			"burns a whole core to handle a few events a second, and an execution trace shows a flood " +
			"of tiny run slices with no waiting in between: the self-wake that tokio-console flags. The " +
			"fix: drop the default branch and let the select block until the channel (or ctx.Done) is ready.",
		Params: []ParamSpec{
			IntParam("spinners", "goroutines polling the channel", 1, 1, maxHogs()),
			DurationParam("every", "time between two events on the channel", 100*time.Millisecond, time.Millisecond, time.Minute),
			FixParam(),
		},
		Caps: "At most GOMAXPROCS+2 spinners (default 1), each of which keeps one core busy until the workload stops.",
		Rule: "busy-poll",
		Fix:  "The select has no default case: the spinner blocks until an event (or ctx.Done) is ready, and uses no CPU in between.",
		Run:  runBusyPoll,
	})
}

func runBusyPoll(ctx context.Context, env *Env) error {
	p := env.Params
	events := make(chan time.Time, 1)
	go env.Spawn(ctx, "ticker")(func(ctx context.Context) {
		t := time.NewTicker(p.Duration("every"))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				select {
				case events <- now:
				default: // the spinners are behind; an event is already waiting
				}
			}
		}
	})
	poll := pollEvents
	if p.Bool("fix") {
		poll = waitEvents
	}
	for range min(p.Int("spinners"), maxHogs()) {
		go env.Spawn(ctx, "spinner")(func(ctx context.Context) { poll(ctx, env, events) })
	}
	<-ctx.Done()
	return nil
}

func pollEvents(ctx context.Context, env *Env, events <-chan time.Time) {
	for {
		select {
		case <-events:
			env.Op()
		case <-ctx.Done():
			return
		default:
			// The bug: nothing is ready, so poll again at once instead of blocking.
			runtime.Gosched()
		}
	}
}

// waitEvents is pollEvents with the fix.
func waitEvents(ctx context.Context, env *Env, events <-chan time.Time) {
	for {
		// The fix: no default case, so the select blocks until one is ready.
		select {
		case <-events:
			env.Op()
		case <-ctx.Done():
			return
		}
	}
}
