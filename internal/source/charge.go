package source

import (
	"runtime"
	"time"
)

// Charger is a source whose program pays for its own inspection: the
// in-process collector, which keeps inspection within an overhead budget
// of the program's CPU. What is done for its snapshots in the program's
// process outside the source (diagnosing them, encoding them for a
// client) is charged to it, so that the budget covers the whole of it.
type Charger interface {
	// Charge says inspection took cpu of the program's CPU time besides
	// what the source measured itself.
	Charge(cpu time.Duration)
}

// Charge charges cpu to s when s is a Charger; other sources (a program
// read from outside) pay for nothing in their target.
func Charge(s any, cpu time.Duration) {
	if c, ok := s.(Charger); ok && cpu > 0 {
		c.Charge(cpu)
	}
}

// OnThread runs f locked to its thread and says how much CPU time it took:
// what f cost the process, not the wall time it spent waiting for a turn
// in a program whose goroutines keep every core busy.
func OnThread(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := ThreadCPU()
	f()
	return ThreadCPU() - t0
}
