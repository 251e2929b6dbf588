package workload

import (
	"context"
	"time"
)

func init() {
	Register(Spec{
		Name:   "channels",
		Lesson: "tokio_channels",
		Kind:   Healthy,
		Description: "A producer sends a numbered message on every tick into a buffered channel and a " +
			"consumer receives and handles them. Tokio's mpsc::channel(n) is bounded and send().await " +
			"waits when it is full; a Go channel made with make(chan T, n) behaves the same, and the " +
			"send blocks until there is room, which is backpressure for free. The producer closes the " +
			"channel when the workload stops and the consumer's range loop ends with it, as a Tokio " +
			"receiver sees None once every sender is dropped.",
		Params: []ParamSpec{
			DurationParam("interval", "time between messages", 10*time.Millisecond, 100*time.Microsecond, time.Minute),
			IntParam("buffer", "channel capacity; 0 makes every send wait for the consumer", 16, 0, 1024),
			DurationParam("work", "time the consumer spends on each message; above interval, the producer waits", 2*time.Millisecond, 0, time.Minute),
		},
		Run: runChannels,
	})
}

func runChannels(ctx context.Context, env *Env) error {
	p := env.Params
	interval, work := p.Duration("interval"), p.Duration("work")
	ch := make(chan int, p.Int("buffer"))

	go env.Spawn(ctx, "producer")(func(ctx context.Context) {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case <-ctx.Done():
				return
			case ch <- seq:
			}
		}
	})
	go env.Spawn(ctx, "consumer")(func(ctx context.Context) {
		// The range ends when the producer closes ch; once ctx is done the
		// remaining buffered messages drain at once because pauseFor returns
		// immediately.
		for seq := range ch {
			if pauseFor(ctx, work) {
				env.Op()
				if seq%100 == 0 {
					env.Log.Debug("message handled", "seq", seq, "queued", len(ch))
				}
			}
		}
	})
	<-ctx.Done()
	return nil
}
