package main

import "sync"

// moby#27782 (channel and Cond): following a container's log file, the log
// reader removes its file watcher when the log is closed, and waits on the
// watcher's sync.Cond until the watcher's event loop acknowledges. The event
// loop is blocked sending an event on w.Events, which the reader no longer
// reads: neither will ever run again. Selecting on a close channel beside the
// event loop's send would end it.
func init() { register("moby27782", "channel+cond", moby27782) }

type m27782Watcher struct {
	Events  chan string
	mu      sync.Mutex
	cv      *sync.Cond
	removed bool
	acked   bool
}

func moby27782() {
	w := &m27782Watcher{Events: make(chan string)}
	w.cv = sync.NewCond(&w.mu)
	go w.readEvents()
	watchClose := make(chan struct{})
	close(watchClose) // the log was closed
	go m27782FollowLogs(w, watchClose)
}

func (w *m27782Watcher) readEvents() {
	for {
		w.Events <- "modify" // want: stuck
		w.mu.Lock()
		if w.removed {
			w.acked = true
			w.cv.Broadcast()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

func m27782FollowLogs(w *m27782Watcher, watchClose <-chan struct{}) {
	<-watchClose
	w.Remove()
}

func (w *m27782Watcher) Remove() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removed = true
	for !w.acked {
		w.cv.Wait() // want: stuck
	}
}
