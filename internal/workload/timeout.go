package workload

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

func init() {
	Register(Spec{
		Name:   "timeout",
		Lesson: "tokio_select",
		Kind:   Healthy,
		Description: "Calls a slow operation again and again, each call wrapped in context.WithTimeout; " +
			"the operation takes a random time and gives up as soon as its context is done, so a call " +
			"that runs out of time returns context.DeadlineExceeded right at the deadline and leaves " +
			"nothing running. The talk builds a timeout by racing a future against a sleep in select! " +
			"(or tokio::time::timeout); in Go the deadline travels inside the context, and the slow call " +
			"must watch ctx.Done() for it to mean anything.",
		Params: []ParamSpec{
			DurationParam("timeout", "deadline of each call", 100*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("max_latency", "longest time the slow call takes; each takes a random share of it", 200*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("pause", "time between calls", 20*time.Millisecond, 0, time.Minute),
		},
		Run: runTimeout,
	})
}

func runTimeout(ctx context.Context, env *Env) error {
	p := env.Params
	timeout, maxLatency, pause := p.Duration("timeout"), p.Duration("max_latency"), p.Duration("pause")
	var ok, late int
	for {
		latency := rand.N(maxLatency)
		began := time.Now()
		err := timeoutCall(ctx, timeout, latency)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			late++
			env.Log.Debug("call timed out", "latency", latency, "waited", time.Since(began), "ok", ok, "timed_out", late)
		default:
			ok++
			env.Log.Debug("call answered", "latency", latency, "ok", ok, "timed_out", late)
		}
		env.Op()
		if !pauseFor(ctx, pause) {
			return nil
		}
	}
}

// timeoutCall gives the slow call at most timeout.
func timeoutCall(ctx context.Context, timeout, latency time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return timeoutSlowCall(ctx, latency)
}

// timeoutSlowCall stands for a call to a slow dependency. It honours
// cancellation: a call that ignored ctx would make the timeout a lie, with
// the work running on after the caller gave up.
func timeoutSlowCall(ctx context.Context, latency time.Duration) error {
	if !pauseFor(ctx, latency) {
		return ctx.Err()
	}
	return nil
}
