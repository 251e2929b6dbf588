// Package tracewin analyses execution traces: it takes a trace (a file, an
// HTTP body, the runtime's own stream) and gives, per window, every
// goroutine's numbers, state, wait reason and stack, and the wait sites.
// The sources (package source/...) feed it; the model (package model)
// joins its windows with dumps and profiles into tasks.
//
// AnalyzeTrace (or a WindowBuilder fed event by event) turns an execution
// trace into the per-goroutine numbers of the task view: how long each
// goroutine was busy (running), scheduled (runnable: ready but not running),
// idle (waiting, split by wait reason) and in system calls, how often it was
// scheduled, its longest run and histograms of its run times and scheduling
// delays; plus the blocking sites (wait reason + call site) with their wait
// time, wake-ups and the stack that most often woke them.
//
// It reads any execution trace of Go 1.22 or later (older ones are converted
// by the parser): runtime/trace.Start output, a runtime/trace.FlightRecorder
// snapshot, `curl 'http://host/debug/pprof/trace?seconds=5'`, the gops
// agent's trace:
//
//	w, err := tracewin.AnalyzeTrace(resp.Body, tracewin.WindowOptions{Sites: true})
//	// err != nil: the trace was cut or corrupt; w holds what was read.
//	for id, g := range w.Goroutines {
//		fmt.Println(id, g.State, g.WaitReason, g.Busy, g.Sched, g.Idle, g.Polls)
//	}
//
// The accounting is that of Go's own trace summary (internal/trace's
// Summarizer, the per-goroutine breakdown of `go tool trace`): every
// goroutine state transition closes an interval of the old state and opens
// one of the new state; a goroutine whose first event tells a state it was
// already in (a status event: it existed before the trace started) counts
// that state from the window start; intervals still open at the end close at
// the window end. So Busy is Go's "Execution time", Sched its "Sched wait
// time", Idle the sum of its "Block time (...)" columns, and Syscall its
// "Syscall execution time" plus "Block time (syscall)". Two differences, on
// purpose: a goroutine that blocks "forever" (select {}, a nil channel) is
// still there and still waiting, so its idle time goes on (Go's summary
// treats it as gone); and wait reasons are the goroutine dump's ("sync.Mutex.Lock",
// "IO wait", "sync.Cond.Wait", ...) rather than the trace's coarser ones
// ("sync", "network", "sync.(*Cond).Wait"), told apart by the blocking stack.
//
// What the trace lacks: labels (join with a goroutine dump by goroutine ID),
// and the wait reason of a goroutine blocked since before the window: its
// status event has its stack but no reason, so the reason is read off the
// top frames (chanrecv: "chan receive", selectgo: "select", time.Sleep:
// "sleep", ...) and GoStats.ReasonInferred says so. One woken before the
// runtime wrote the statuses of the goroutines it had not seen has neither
// stack nor reason: WindowOptions.WaitingAt places it where an earlier
// trace saw it wait (AnalyzeSlice, from the slice before).
package tracewin
