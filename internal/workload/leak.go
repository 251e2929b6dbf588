package workload

import (
	"context"
	"math/rand/v2"
	"time"
)

func init() {
	Register(Spec{
		Name:   "leak",
		Lesson: "tokio_select",
		Kind:   Broken,
		Description: "Each request starts a worker and waits for its answer or a timeout, whichever comes " +
			"first, like the talk's select. When the timeout wins, the requester walks away, and the " +
			"worker later sends its answer on an unbuffered channel that nobody will ever read: it is " +
			"stuck in chan send for good. The goroutine count grows with every timed-out request, and " +
			"since nothing else can reach the channel, the goroutineleak profile reports the workers. " +
			"The fix: give the reply channel a buffer of one (or have the worker select on ctx.Done " +
			"too), so the send never waits for a receiver that has gone. Past its cap the workload " +
			"switches to that fix and keeps serving.",
		Params: []ParamSpec{
			DurationParam("every", "time between requests", 100*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("timeout", "how long a requester waits for the worker's answer", 50*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("work", "mean time a worker takes (uniform between 0 and twice this)", 60*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("max_leaked", "goroutines leaked per start; later requests use the fix", 10000, 1, 10000),
			FixParam(),
		},
		Caps: "At most max_leaked (default 10,000) goroutines leaked per start. They can never be " +
			"reclaimed, not even by stopping the workload: nothing references their channel, which is " +
			"exactly what lets the goroutineleak profile see them. Restart the process to free them.",
		MaxLeft: func(p Params) int { return p.Int("max_leaked") },
		Rule:    "goroutine-leak",
		Fix: "The reply channel gets a buffer of one, so a worker whose requester gave up still sends and " +
			"returns: nothing leaks any more. The workers leaked before the fix stay stuck for good (see " +
			"the caps): the finding stays, naming them, and stops growing.",
		LeaksForGood: true,
		Run:          runLeak,
	})
}

func runLeak(ctx context.Context, env *Env) error {
	p := env.Params
	every, timeout, work := p.Duration("every"), p.Duration("timeout"), p.Duration("work")
	maxLeaked := p.Int("max_leaked")
	t := time.NewTicker(every)
	defer t.Stop()
	leaked := 0
	for {
		fixed := leaked >= maxLeaked || p.Bool("fix")
		if leakRequest(ctx, env, timeout, rand.N(2*work), fixed) {
			leaked++
			if leaked == maxLeaked {
				env.Log.Warn("leak cap reached; later requests use a buffered reply channel", "leaked", leaked)
			}
		}
		env.Op()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// leakRequest runs one request and reports whether it left its worker stuck.
// It is a function of its own so that, once it returns, no live frame holds the
// reply channel: only the stuck worker does.
func leakRequest(ctx context.Context, env *Env, timeout, work time.Duration, fixed bool) (leaked bool) {
	reply := make(chan int)
	if fixed {
		// The fix: room for the answer, whether or not anyone still waits.
		reply = make(chan int, 1)
	}
	go env.SpawnDetached(ctx, "worker")(func(context.Context) {
		time.Sleep(work)
		// The bug: an unbuffered send, and the requester may be gone.
		reply <- 42
	})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-reply:
		return false
	case <-timer.C:
	case <-ctx.Done():
	}
	return !fixed
}
