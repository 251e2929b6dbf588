package main

// syncthing#5795 (channel): a connection's dispatcher loop, on an error,
// closes the connection, and Close waits on dispatcherLoopStopped for the
// dispatcher loop to end: the loop waits for itself. Start, which handed the
// loop a message and then waited for it to stop as well, waits for good too.
// Close must not wait when called from the loop.
func init() { register("syncthing5795", "channel", syncthing5795) }

type s5795Conn struct {
	inbox                 chan string
	closed                chan struct{}
	dispatcherLoopStopped chan struct{}
}

func syncthing5795() {
	c := &s5795Conn{inbox: make(chan string), closed: make(chan struct{}), dispatcherLoopStopped: make(chan struct{})}
	go c.dispatcherLoop()
	c.inbox <- "bad message"
	<-c.dispatcherLoopStopped // want: stuck
}

func (c *s5795Conn) dispatcherLoop() {
	defer close(c.dispatcherLoopStopped)
	for {
		select {
		case msg := <-c.inbox:
			if msg == "bad message" {
				c.Close()
			}
		case <-c.closed:
			return
		}
	}
}

func (c *s5795Conn) Close() {
	close(c.closed)
	<-c.dispatcherLoopStopped // want: stuck
}
