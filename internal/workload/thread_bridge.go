package workload

import (
	"context"
	"runtime"
	"time"
)

func init() {
	Register(Spec{
		Name:   "thread-bridge",
		Lesson: "thread_to_tokio",
		Kind:   Healthy,
		Description: "One goroutine locks itself to an OS thread with runtime.LockOSThread, the way code " +
			"that calls a thread-affine API (a C library, a GUI loop, thread-local state) must, and " +
			"feeds readings into a buffered channel that an ordinary goroutine receives from. The talk " +
			"sends from a std::thread into Tokio through a channel with blocking_send, because a plain " +
			"thread cannot .await; in Go the locked goroutine is still a goroutine and just sends, but it " +
			"pins a whole thread while it lives, so it unlocks on exit and there is only ever one.",
		Params: []ParamSpec{
			DurationParam("interval", "time between readings", 20*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("buffer", "channel capacity between the locked thread and the receiver", 8, 0, 1024),
		},
		Run: runThreadBridge,
	})
}

type threadReading struct {
	seq int
	at  time.Time
}

func runThreadBridge(ctx context.Context, env *Env) error {
	interval := env.Params.Duration("interval")
	readings := make(chan threadReading, env.Params.Int("buffer"))

	go env.Spawn(ctx, "thread")(func(ctx context.Context) {
		runtime.LockOSThread()
		// Unlocking hands the thread back to the scheduler; a goroutine that
		// ended still locked would take its thread down with it.
		defer runtime.UnlockOSThread()
		defer close(readings)
		t := time.NewTicker(interval)
		defer t.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case at := <-t.C:
				select {
				case <-ctx.Done():
					return
				case readings <- threadReading{seq: seq, at: at}:
				}
			}
		}
	})

	for {
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-readings:
			if !ok {
				return nil
			}
			env.Op()
			env.Log.Debug("reading received from the locked thread", "seq", r.seq, "delay", time.Since(r.at))
		}
	}
}
