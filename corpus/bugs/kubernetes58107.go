package main

import (
	"sync"
	"time"
)

// kubernetes#58107 (RWMutex and Cond): the resource quota controller's workers
// take workerLock for reading around pulling from a queue, and wait on the
// queue's sync.Cond when it is empty, still holding the read lock. A periodic
// Sync takes workerLock for writing: it waits for that reader, and since a
// waiting writer keeps new readers out, the workers of the other queue block
// in RLock. Nothing will ever fill the first queue. The fix stopped holding
// workerLock while pulling from a queue.
func init() { register("kubernetes58107", "rwmutex+cond", kubernetes58107) }

type k58107Queue struct {
	cond  *sync.Cond
	items []string
}

type k58107Controller struct {
	workerLock sync.RWMutex
	missing    *k58107Queue // empty: nobody adds to it any more
	primary    *k58107Queue
}

func kubernetes58107() {
	rq := &k58107Controller{
		missing: &k58107Queue{cond: sync.NewCond(&sync.Mutex{})},
		primary: &k58107Queue{cond: sync.NewCond(&sync.Mutex{}), items: []string{"quota"}},
	}
	reading := make(chan struct{})
	go rq.worker(rq.missing, reading)
	<-reading
	go rq.Sync()
	go rq.otherWorker()
}

func (rq *k58107Controller) worker(q *k58107Queue, reading chan<- struct{}) {
	rq.workerLock.RLock()
	defer rq.workerLock.RUnlock()
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	close(reading)
	for len(q.items) == 0 {
		q.cond.Wait() // want: stuck
	}
	q.items = q.items[1:]
}

func (rq *k58107Controller) Sync() {
	rq.workerLock.Lock() // want: stuck
	defer rq.workerLock.Unlock()
}

func (rq *k58107Controller) otherWorker() {
	// This worker comes after Sync began to wait.
	for rq.workerLock.TryRLock() {
		rq.workerLock.RUnlock()
		time.Sleep(time.Millisecond)
	}
	rq.workerLock.RLock() // want: stuck
	defer rq.workerLock.RUnlock()
	q := rq.primary
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	q.items = q.items[1:]
}
