package main

import "sync"

// grpc#1460 (lock and channel): with keepalives on, the client transport's
// keepalive goroutine, finding no active stream, waits on awakenKeepalive for
// NewStream to wake it, and does so holding t.mu. NewStream needs t.mu before
// it can send the wake-up. Both block for good. Releasing t.mu before waiting
// would end it.
func init() { register("grpc1460", "lock+channel", grpc1460) }

type g1460Transport struct {
	mu              sync.Mutex
	activeStreams   int
	awakenKeepalive chan struct{}
}

func grpc1460() {
	t := &g1460Transport{awakenKeepalive: make(chan struct{})}
	dormant := make(chan struct{})
	go t.keepalive(dormant)
	<-dormant
	go t.NewStream()
}

func (t *g1460Transport) keepalive(dormant chan<- struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.activeStreams == 0 {
		close(dormant)
		<-t.awakenKeepalive // want: stuck
	}
}

func (t *g1460Transport) NewStream() {
	t.mu.Lock() // want: stuck
	defer t.mu.Unlock()
	t.activeStreams++
	if t.activeStreams == 1 {
		t.awakenKeepalive <- struct{}{}
	}
}
