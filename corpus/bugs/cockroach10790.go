package main

import "context"

// cockroach#10790 (select and context): beginCmds waits for each command's
// turn on a channel, and gives up when its context is done. Giving up, it
// returns without draining the channels that the goroutines ahead of it send
// on once they are done: each of those blocks for good on its send. A buffer
// of one on each channel would end it.
func init() { register("cockroach10790", "select+context", cockroach10790) }

func cockroach10790() {
	ctx, cancel := context.WithCancel(context.Background())
	finish := make(chan struct{}) // the commands ahead finish after the wait gave up
	var chans []chan bool
	for range 3 {
		ch := make(chan bool)
		chans = append(chans, ch)
		go func() {
			<-finish
			ch <- true // want: stuck
		}()
	}
	cancel()
	_ = c10790BeginCmds(ctx, chans)
	close(finish)
}

func c10790BeginCmds(ctx context.Context, chans []chan bool) error {
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
