package workload

import (
	"context"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "spawn-storm",
		Lesson: "async recursion",
		Kind:   Broken,
		Description: "Computes Fibonacci numbers recursively and, like async recursion without a " +
			"cut-off, starts a goroutine for every call. Each call first waits a little (standing in for " +
			"I/O), so the goroutine count climbs level by level, roughly doubling each step, all from " +
			"one creation site, until it reaches the cap; then the remaining calls run inline, the storm " +
			"winds down, and another starts after a pause. The fix, shown by the healthy recursion workload: spawn only above a depth " +
			"cut-off and recurse plainly below it, or bound the goroutines with a semaphore.",
		Params: []ParamSpec{
			IntParam("depth", "the n of fib(n): the depth of the recursion", 30, 2, 35),
			IntParam("max_goroutines", "live goroutines at which a storm stops spawning and winds down", 100000, 1, 100000),
			DurationParam("step", "the wait each call does before it recurses", 100*time.Millisecond, 0, 10*time.Second),
			DurationParam("pause", "rest between two storms", 10*time.Second, 0, time.Hour),
			IntParam("cutoff", "with fix, the depth down to which calls spawn a goroutine", 4, 0, 10),
			FixParam(),
		},
		Caps: "At most max_goroutines (default 100,000) live goroutines: on reaching it a storm " +
			"computes the rest inline and winds down; every goroutine exits at the end of its storm or " +
			"when the workload stops.",
		Rule: "goroutine-explosion",
		Fix: "Calls spawn a goroutine only down to depth cutoff (default 4) and recurse plainly below it, " +
			"as the healthy recursion workload does: a storm starts at most 2^(cutoff+1) goroutines.",
		Run: runSpawnStorm,
	})
}

// storm is one recursion without a cut-off, bounded only by its cap.
type storm struct {
	env    *Env
	step   time.Duration
	max    int64
	cutoff int // with fix: the depth below which calls run inline
	live   atomic.Int64
	peak   atomic.Int64 // the most goroutines live at once in this storm
	capped atomic.Bool  // the cap was reached: no more goroutines in this storm
}

func runSpawnStorm(ctx context.Context, env *Env) error {
	p := env.Params
	for {
		s := &storm{env: env, step: p.Duration("step"), max: int64(p.Int("max_goroutines")), cutoff: p.Int("cutoff")}
		began := time.Now()
		var fib int
		if p.Bool("fix") {
			fib = s.fibCutOff(ctx, p.Int("depth"), 0)
		} else {
			fib = s.fib(ctx, p.Int("depth"))
		}
		env.Log.Debug("storm over", "fib", fib, "took", time.Since(began), "capped", s.capped.Load(), "peak", s.peak.Load())
		if !pauseFor(ctx, p.Duration("pause")) {
			return nil
		}
	}
}

// fib returns fib(n), spawning a goroutine for each of its two sub-calls.
func (s *storm) fib(ctx context.Context, n int) int {
	if n < 2 {
		return n
	}
	if s.capped.Load() || !pauseFor(ctx, s.step) {
		return fibInline(n)
	}
	results := make(chan int, 2)
	for _, k := range [2]int{n - 1, n - 2} {
		if !s.reserve() {
			results <- fibInline(k)
			continue
		}
		// The bug: a goroutine per call and no cut-off, so the count doubles at every level.
		go s.env.Spawn(ctx, "node")(func(ctx context.Context) {
			defer s.live.Add(-1)
			results <- s.fib(ctx, k)
		})
	}
	s.env.Op()
	return <-results + <-results
}

// fibCutOff is fib with the fix: only the calls above the cut-off depth
// spawn; below it the recursion is a plain loop.
func (s *storm) fibCutOff(ctx context.Context, n, depth int) int {
	if n < 2 || depth >= s.cutoff {
		return fibInline(n)
	}
	if !pauseFor(ctx, s.step) {
		return fibInline(n)
	}
	results := make(chan int, 2)
	for _, k := range [2]int{n - 1, n - 2} {
		go s.env.Spawn(ctx, "node")(func(ctx context.Context) {
			results <- s.fibCutOff(ctx, k, depth+1)
		})
	}
	s.env.Op()
	return <-results + <-results
}

// reserve counts one more live goroutine, or reports that the storm reached its
// cap. The cap, not the fix: past it the storm stops growing and winds down.
func (s *storm) reserve() bool {
	if s.capped.Load() {
		return false
	}
	n := s.live.Add(1)
	if n > s.max {
		s.live.Add(-1)
		s.capped.Store(true)
		return false
	}
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	return true
}

func fibInline(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}
