package main

import (
	"errors"
	"sync"
)

// moby#30408 (Cond): a plugin waits on activateWait, a sync.Cond, until the
// plugin is activated; when activation failed, nothing called Broadcast, so
// waitActive waits for good, and so does the caller waiting for it on a
// channel. Broadcasting on failure too would end it.
func init() { register("moby30408", "cond", moby30408) }

type m30408Plugin struct {
	activateWait *sync.Cond
	activated    bool
	err          error
}

func moby30408() {
	p := &m30408Plugin{activateWait: sync.NewCond(&sync.Mutex{})}
	done := make(chan struct{})
	go func() {
		p.waitActive()
		close(done)
	}()
	p.activate()
	<-done // want: stuck
}

func (p *m30408Plugin) activate() {
	p.activateWait.L.Lock()
	defer p.activateWait.L.Unlock()
	p.err = errors.New("plugin: activation failed")
	// No Broadcast: waiters are not told.
}

func (p *m30408Plugin) waitActive() {
	p.activateWait.L.Lock()
	defer p.activateWait.L.Unlock()
	for !p.activated { // the bug: a failure ends the wait neither
		p.activateWait.Wait() // want: stuck
	}
}
