package workload

import (
	"context"
	"time"
)

func init() {
	Register(Spec{
		Name:   "hello",
		Lesson: "hello_tokio",
		Kind:   Healthy,
		Description: "Starts a short-lived goroutine on every tick that says hello and exits. " +
			"Tokio needs a runtime and block_on before any async code can run; Go's scheduler is " +
			"always on, so `go f()` is all it takes, and main is itself a goroutine.",
		Params: []ParamSpec{
			DurationParam("interval", "time between greetings", 100*time.Millisecond, time.Millisecond, time.Minute),
		},
		Run: runHello,
	})
}

func runHello(ctx context.Context, env *Env) error {
	t := time.NewTicker(env.Params.Duration("interval"))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			go env.Spawn(ctx, "greeter")(func(context.Context) {
				env.Log.Debug("hello from a goroutine")
				env.Op()
			})
		}
	}
}
