package main

import (
	"sync"
	"time"
)

// kubernetes#62464 (RWMutex: recursive read lock with a waiting writer): the
// CPU manager's reconcileState reads the state under s.RLock and, through
// GetCPUSetOrDefault, calls GetCPUSet, which takes s.RLock again. When
// RemoveContainer's SetDefaultCPUSet asks for s.Lock in between, the second
// RLock waits behind the writer, and the writer waits for the first RLock to
// be released: both block for good. Taking the read lock once ends it.
func init() { register("kubernetes62464", "rwmutex", kubernetes62464) }

type k62464State struct {
	mu      sync.RWMutex
	cpusets map[string]string
	def     string
}

func kubernetes62464() {
	s := &k62464State{cpusets: map[string]string{}, def: "0-3"}
	reading := make(chan struct{})
	go func() { _ = s.GetCPUSetOrDefault("web", reading) }()
	<-reading
	go s.SetDefaultCPUSet("0-1")
}

func (s *k62464State) GetCPUSetOrDefault(container string, reading chan<- struct{}) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	close(reading)
	// The interleaving that loses: SetDefaultCPUSet waits for the lock by now.
	for s.mu.TryRLock() {
		s.mu.RUnlock()
		time.Sleep(time.Millisecond)
	}
	if res, ok := s.GetCPUSet(container); ok {
		return res
	}
	return s.def
}

func (s *k62464State) GetCPUSet(container string) (string, bool) {
	s.mu.RLock() // want: stuck
	defer s.mu.RUnlock()
	res, ok := s.cpusets[container]
	return res, ok
}

func (s *k62464State) SetDefaultCPUSet(cset string) {
	s.mu.Lock() // want: stuck
	defer s.mu.Unlock()
	s.def = cset
}
