package main

import "context"

// goprocess#10 (nil channel; seen in go-ipfs): WithContextAndTeardown ties a
// process to a context with a goroutine that waits on <-ctx.Done() and then
// closes the process. Given a context whose Done returns nil, as
// context.Background's does, the goroutine receives from a nil channel:
// "chan receive (nil chan)", for good. Not starting the goroutine when Done
// is nil ends it.
func init() { register("goprocess10", "nil channel", goprocess10) }

type gp10Process struct {
	closed   chan struct{}
	teardown func() error
}

func goprocess10() {
	p := gp10WithContextAndTeardown(context.Background(), func() error { return nil })
	_ = p
}

func gp10WithContextAndTeardown(ctx context.Context, tf func() error) *gp10Process {
	p := &gp10Process{closed: make(chan struct{}), teardown: tf}
	go func() {
		<-ctx.Done() // want: stuck
		p.Close()
	}()
	return p
}

func (p *gp10Process) Close() error {
	close(p.closed)
	return p.teardown()
}
