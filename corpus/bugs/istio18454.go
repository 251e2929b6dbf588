package main

import (
	"context"
	"sync"
	"time"
)

// istio#18454 (timer): a debouncing strategy restarts its timer when a change
// comes in, with the idiom "if !timer.Stop() { <-timer.C }". When the timer
// already fired and its event loop took the value, Stop returns false and
// the receive waits for a value that will never come. The changes that
// follow fill the one-slot reset channel, and the processor sending the
// next one blocks too. Draining with a select and a default, or Reset alone
// (Go 1.23 timers), would end it.
func init() { register("istio18454", "timer+channel", istio18454) }

type i18454Strategy struct {
	timer     *time.Timer
	resetChan chan struct{}
	published chan struct{}
	once      sync.Once
}

func istio18454() {
	s := &i18454Strategy{resetChan: make(chan struct{}, 1), published: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	_ = cancel // the processor is never stopped
	s.timer = time.NewTimer(time.Millisecond)
	go s.eventLoop(ctx)
	<-s.published // the timer fired and the loop took its value
	for range 3 {
		s.OnChange()
	}
}

func (s *i18454Strategy) OnChange() {
	s.resetChan <- struct{}{} // want: stuck
}

func (s *i18454Strategy) eventLoop(ctx context.Context) {
	for {
		select {
		case <-s.timer.C:
			s.once.Do(func() { close(s.published) })
		case <-s.resetChan:
			if !s.timer.Stop() {
				<-s.timer.C // want: stuck
			}
			s.timer.Reset(time.Millisecond)
		case <-ctx.Done():
			s.timer.Stop()
			return
		}
	}
}
