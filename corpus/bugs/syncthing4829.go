package main

import "sync"

// syncthing#4829 (RWMutex: read lock under its own write lock): a port
// mapping's clearAddresses holds m.mut for writing and calls notify, which
// takes m.mut for reading to copy the subscribers: the goroutine waits for
// itself, alone. Calling notify after unlocking ends it.
func init() { register("syncthing4829", "rwmutex", syncthing4829) }

type s4829Mapping struct {
	mut   sync.RWMutex
	addrs map[string]string
	subs  []func()
}

func syncthing4829() {
	m := &s4829Mapping{addrs: map[string]string{"wan": "203.0.113.7:22000"}, subs: []func(){func() {}}}
	m.clearAddresses()
}

func (m *s4829Mapping) clearAddresses() {
	m.mut.Lock()
	defer m.mut.Unlock()
	clear(m.addrs)
	m.notify()
}

func (m *s4829Mapping) notify() {
	m.mut.RLock() // want: stuck
	subs := m.subs
	m.mut.RUnlock()
	for _, s := range subs {
		s()
	}
}
