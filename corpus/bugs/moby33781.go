package main

import (
	"context"
	"time"
)

// moby#33781 (channel and context): the health monitor runs each probe in a
// goroutine that reports on an unbuffered result channel, and waits for the
// result, the probe's timeout or a stop. When stopped, it cancels the probe
// and returns without draining the result channel: the probe, which finishes
// anyway, blocks for good on its send. Selecting on the probe's context beside
// the send would end it.
func init() { register("moby33781", "select+context", moby33781) }

func moby33781() {
	stop := make(chan struct{})
	go m33781Monitor(stop, time.Second)
	stop <- struct{}{}
}

func m33781Monitor(stop <-chan struct{}, timeout time.Duration) {
	ctx, cancelProbe := context.WithTimeout(context.Background(), timeout)
	result := make(chan string)
	go func() {
		result <- m33781Probe(ctx) // want: stuck
	}()
	select {
	case <-stop:
		cancelProbe()
		return
	case r := <-result:
		_ = r
	case <-ctx.Done():
	}
	cancelProbe()
}

func m33781Probe(ctx context.Context) string {
	<-ctx.Done()
	return "probe cancelled"
}
