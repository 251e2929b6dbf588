package main

import "sync"

// cockroach#584 (lock: missing unlock): the gossip bootstrap loop locks g.mu
// at the top of each round and breaks out of the loop when the gossip is
// closed, without unlocking. The next call that locks g.mu (manage) blocks for
// good: one goroutine, alone in sync.Mutex.Lock. Unlocking before the break
// ends it.
func init() { register("cockroach584", "lock", cockroach584) }

type c584Gossip struct {
	mu     sync.Mutex
	closed bool
}

func cockroach584() {
	g := &c584Gossip{closed: true}
	g.bootstrap()
	g.manage()
}

func (g *c584Gossip) bootstrap() {
	for {
		g.mu.Lock()
		if g.closed {
			break // the bug: g.mu stays locked
		}
		g.mu.Unlock()
	}
}

func (g *c584Gossip) manage() {
	g.mu.Lock() // want: stuck
	defer g.mu.Unlock()
}
