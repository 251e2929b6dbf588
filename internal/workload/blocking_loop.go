package workload

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "blocking-loop",
		Lesson: "tokio_blocking",
		Kind:   Broken,
		Description: "One server goroutine drains a queue channel and, for every item, makes a slow " +
			"synchronous call (a sleep standing in for a blocking API) before it takes the next one. " +
			"Senders produce far faster than that, so the queue fills and the senders pile up in chan " +
			"send while the only consumer sleeps: the talk's warning about blocking inside the task that " +
			"everybody depends on. The fix: hand slow calls to a bounded pool of workers (or make the " +
			"call asynchronous) so the serving loop only dispatches.",
		Params: []ParamSpec{
			IntParam("senders", "goroutines that put items on the queue", 4, 1, 256),
			DurationParam("send_every", "pause of each sender between two items", 20*time.Millisecond, 0, time.Minute),
			DurationParam("call", "the synchronous call the server makes per item", 100*time.Millisecond, time.Millisecond, 10*time.Second),
			IntParam("queue", "capacity of the queue channel", 16, 0, 10000),
			IntParam("pool", "workers that make the slow calls, with fix", 32, 1, 256),
			FixParam(),
		},
		Caps: "No cap needed: senders+pool+1 goroutines (at most 513) and a queue of at most 10,000 items, all released when the workload stops.",
		Rule: "blocked-loop",
		Fix: "The server only dispatches: each item goes to a bounded pool of pool workers that make the slow " +
			"calls, so the queue drains as fast as the senders fill it.",
		Run: runBlockingLoop,
	})
}

func runBlockingLoop(ctx context.Context, env *Env) error {
	p := env.Params
	call, every := p.Duration("call"), p.Duration("send_every")
	queue := make(chan int, p.Int("queue"))
	sendersDone := make(chan struct{})

	// drain receives until the senders are gone: senders blocked in a
	// plain send need a receiver to leave.
	drain := func() {
		for {
			select {
			case <-queue:
			case <-sendersDone:
				return
			}
		}
	}
	serve := func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				drain()
				return
			case <-queue:
				// The bug: a synchronous call in the only goroutine that serves the queue.
				slowCall(ctx, call)
				env.Op()
			}
		}
	}
	if p.Bool("fix") {
		serve = func(ctx context.Context) {
			// The fix: the server hands each item to a bounded pool of
			// workers and goes back to the queue at once.
			work := make(chan int)
			var workers sync.WaitGroup
			for range p.Int("pool") {
				workers.Add(1)
				go env.Spawn(ctx, "worker")(func(ctx context.Context) {
					defer workers.Done()
					for range work {
						slowCall(ctx, call)
						env.Op()
					}
				})
			}
			defer workers.Wait()
			defer close(work)
			for {
				select {
				case <-ctx.Done():
					drain()
					return
				case item := <-queue:
					select {
					case work <- item:
					case <-ctx.Done():
					}
				}
			}
		}
	}
	go env.Spawn(ctx, "server")(serve)

	var senders sync.WaitGroup
	for i := range p.Int("senders") {
		senders.Add(1)
		go env.Spawn(ctx, "sender")(func(ctx context.Context) {
			defer senders.Done()
			for n := i; ctx.Err() == nil; n++ {
				// A plain send, as most code writes it: here the senders wait.
				queue <- n
				pauseFor(ctx, every)
			}
		})
	}
	<-ctx.Done()
	senders.Wait()
	close(sendersDone)
	return nil
}
