package main

import "sync"

// kubernetes#6632 (lock and channel): an spdy stream's WriteFrame holds the
// write lock while it sends on resetChan; when resetChan is full it waits for
// monitor to drain it, but monitor, woken by the connection closing, first
// takes the same write lock to close resetChan. Each waits for the other. Not
// holding the lock across the send would end it.
func init() { register("kubernetes6632", "lock+channel", kubernetes6632) }

type k6632Conn struct {
	writeLock sync.Mutex
	resetChan chan struct{}
	closeChan chan struct{}
}

func kubernetes6632() {
	c := &k6632Conn{resetChan: make(chan struct{}, 1), closeChan: make(chan struct{})}
	c.resetChan <- struct{}{} // one reset already pending: the buffer is full
	writing := make(chan struct{})
	go c.WriteFrame(writing)
	<-writing
	go c.monitor()
	close(c.closeChan)
}

func (c *k6632Conn) WriteFrame(writing chan<- struct{}) {
	c.writeLock.Lock()
	defer c.writeLock.Unlock()
	close(writing)
	c.resetChan <- struct{}{} // want: stuck
}

func (c *k6632Conn) monitor() {
	<-c.closeChan
	c.writeLock.Lock() // want: stuck
	close(c.resetChan)
	c.writeLock.Unlock()
}
