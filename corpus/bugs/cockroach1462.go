package main

import "sync"

// cockroach#1462 (channel and WaitGroup): the local test transport's workers
// run under a Stopper, which counts them in a WaitGroup. A worker delivers
// events on lt.Events, which the test stopped reading when it began to stop
// the transport: the worker blocks on its send, never calls Done, and Stop
// waits on the WaitGroup for good. Selecting on ShouldStop beside the send
// would end it.
func init() { register("cockroach1462", "channel+waitgroup", cockroach1462) }

type c1462Stopper struct {
	stop    sync.WaitGroup
	stopper chan struct{}
}

func cockroach1462() {
	s := &c1462Stopper{stopper: make(chan struct{})}
	events := make(chan int)
	sending := make(chan struct{})
	s.RunWorker(func() {
		close(sending)
		events <- 0 // want: stuck
	})
	<-sending
	s.Stop()
}

func (s *c1462Stopper) RunWorker(f func()) {
	s.stop.Add(1)
	go func() {
		defer s.stop.Done()
		f()
	}()
}

func (s *c1462Stopper) Stop() {
	close(s.stopper)
	s.stop.Wait() // want: stuck
}
