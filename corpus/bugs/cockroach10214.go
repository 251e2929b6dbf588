package main

import "sync"

// cockroach#10214 (lock: AB-BA): sendQueuedHeartbeats holds the store's
// coalescedMu and then locks a replica's raftMu, while the replica's tick
// holds raftMu and then locks coalescedMu to coalesce a heartbeat. When the
// two interleave, each waits for the lock the other holds. The fix released
// coalescedMu before locking raftMu.
func init() { register("cockroach10214", "lock", cockroach10214) }

type c10214Store struct {
	coalescedMu sync.Mutex
	replica     *c10214Replica
}

type c10214Replica struct {
	raftMu sync.Mutex
	store  *c10214Store
}

func cockroach10214() {
	s := &c10214Store{}
	s.replica = &c10214Replica{store: s}
	coalescedHeld, raftHeld := make(chan struct{}), make(chan struct{})
	go s.sendQueuedHeartbeats(coalescedHeld, raftHeld)
	go s.replica.tick(raftHeld, coalescedHeld)
}

func (s *c10214Store) sendQueuedHeartbeats(held chan<- struct{}, other <-chan struct{}) {
	s.coalescedMu.Lock()
	defer s.coalescedMu.Unlock()
	close(held)
	<-other                 // the interleaving that loses: tick holds raftMu by now
	s.replica.raftMu.Lock() // want: stuck
	s.replica.raftMu.Unlock()
}

func (r *c10214Replica) tick(held chan<- struct{}, other <-chan struct{}) {
	r.raftMu.Lock()
	defer r.raftMu.Unlock()
	close(held)
	<-other
	r.store.coalescedMu.Lock() // want: stuck
	r.store.coalescedMu.Unlock()
}
