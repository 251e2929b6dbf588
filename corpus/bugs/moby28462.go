package main

import "sync"

// moby#28462 (lock and channel): a container's state change holds the
// container lock and stops the health monitor by sending on its stop channel;
// the monitor, between two probes, handles a probe result, which takes the
// container lock before it gets back to receiving on stop. Each waits for the
// other. Closing the channel instead of sending on it would end it.
func init() { register("moby28462", "lock+channel", moby28462) }

type m28462Container struct {
	sync.Mutex
	health *m28462Health
}

type m28462Health struct{ stop chan struct{} }

func moby28462() {
	c := &m28462Container{health: &m28462Health{stop: make(chan struct{})}}
	locked := make(chan struct{})
	go c.StateChanged(locked)
	<-locked
	go c.monitor()
}

func (c *m28462Container) monitor() {
	for {
		c.handleProbeResult()
		select {
		case <-c.health.stop:
			return
		default:
		}
	}
}

func (c *m28462Container) handleProbeResult() {
	c.Lock() // want: stuck
	defer c.Unlock()
}

func (c *m28462Container) StateChanged(locked chan<- struct{}) {
	c.Lock()
	defer c.Unlock()
	close(locked)
	c.health.stop <- struct{}{} // want: stuck
}
