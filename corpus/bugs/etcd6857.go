package main

// etcd#6857 (channel): raft's node.Status asks the node's run loop for its
// status by sending a request on n.status. Once Stop has made the run loop
// return, nobody receives on n.status: the caller of Status blocks for good.
// Selecting on n.done beside the send would end it.
func init() { register("etcd6857", "channel", etcd6857) }

type e6857Node struct {
	status chan chan string
	stop   chan struct{}
	done   chan struct{}
}

func etcd6857() {
	n := &e6857Node{status: make(chan chan string), stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	n.Stop()
	go func() { _ = n.Status() }()
}

func (n *e6857Node) run() {
	for {
		select {
		case c := <-n.status:
			c <- "leader"
		case <-n.stop:
			close(n.done)
			return
		}
	}
}

func (n *e6857Node) Stop() {
	n.stop <- struct{}{}
	<-n.done
}

func (n *e6857Node) Status() string {
	c := make(chan string)
	n.status <- c // want: stuck
	return <-c
}
