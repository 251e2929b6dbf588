package inproc

import (
	"context"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/inspectd/inspectd/internal/model"
)

// The collector's state profile of real goroutines: a mutex waiter under
// pprof labels shows under the root "sync.Mutex.Lock" with its labels and
// its Lock call; a CPU hog under "running".
func TestCollectorStateProfile(t *testing.T) {
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var mu sync.Mutex
	mu.Lock()
	var stop atomic.Bool
	var sink atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("workload", "states", "role", "waiter"), func(context.Context) {
			mu.Lock()
			mu.Unlock()
		})
	})
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("workload", "states", "role", "hog"), func(context.Context) {
			n := int64(0)
			for !stop.Load() {
				n += stateSpin(10000)
			}
			sink.Add(n)
		})
	})
	defer func() {
		stop.Store(true)
		mu.Unlock()
		wg.Wait()
	}()
	time.Sleep(1500 * time.Millisecond)

	p, err := c.StateProfile(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	if p.SampleType[0].Type != model.StateProfileSampleType || p.TimeNanos == 0 || p.DurationNanos < 5e8 {
		t.Errorf("sample type %v time %d duration %d", p.SampleType, p.TimeNanos, p.DurationNanos)
	}

	waits := stateSamples(p, "sync.Mutex.Lock", "role", "waiter")
	if len(waits) != 1 {
		t.Fatalf("%d samples of role=waiter under sync.Mutex.Lock; want 1", len(waits))
	}
	w := waits[0]
	if !slices.Equal(w.Label["workload"], []string{"states"}) {
		t.Errorf("waiter labels %v", w.Label)
	}
	if !sampleHasFunc(w, "sync.(*Mutex).Lock") || !sampleHasFunc(w, "TestCollectorStateProfile") {
		t.Errorf("waiter stack lacks the Lock call or the test: %v", frameNames(w))
	}
	if w.Value[0] < p.DurationNanos*8/10 {
		t.Errorf("waiter: %v in sync.Mutex.Lock of a %v window", time.Duration(w.Value[0]), time.Duration(p.DurationNanos))
	}

	var running int64
	for _, s := range stateSamples(p, model.StateRunning, "role", "hog") {
		if !slices.Equal(s.Label["workload"], []string{"states"}) {
			t.Errorf("hog labels %v", s.Label)
		}
		if !sampleHasFunc(s, "TestCollectorStateProfile") {
			t.Errorf("hog stack lacks the test: %v", frameNames(s))
		}
		running += s.Value[0]
	}
	// One core among other tests' goroutines: it runs most of the window
	// (the race detector and a busy machine leave it less).
	if running < p.DurationNanos/4 {
		t.Errorf("hog: %v running of a %v window", time.Duration(running), time.Duration(p.DurationNanos))
	}
}

// stateSamples returns the samples of p under root frame state whose label
// key is value.
func stateSamples(p *profile.Profile, state, key, value string) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range p.Sample {
		if len(s.Location) == 0 || !slices.Contains(s.Label[key], value) {
			continue
		}
		if rootName(s) == state {
			out = append(out, s)
		}
	}
	return out
}

func rootName(s *profile.Sample) string {
	root := s.Location[len(s.Location)-1]
	if len(root.Line) == 0 || root.Line[0].Function == nil {
		return ""
	}
	return root.Line[0].Function.Name
}

// sampleHasFunc reports whether a frame of s, other than the root, is in a
// function whose name contains fn.
func sampleHasFunc(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location[:len(s.Location)-1] {
		for _, l := range loc.Line {
			if l.Function != nil && strings.Contains(l.Function.Name, fn) {
				return true
			}
		}
	}
	return false
}

func frameNames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			out = append(out, l.Function.Name)
		}
	}
	return out
}

// leafStop ends leafHog, which sets leafDone. Package variables, so that
// leafHog needs no closure and no frame.
var leafStop, leafDone atomic.Bool

// leafHog burns CPU in a function without a frame of its own: started with
// go leafHog(), the runtime's frame-pointer unwinding finds nothing below
// its asynchronous preemption.
func leafHog() {
	for !leafStop.Load() {
	}
	leafDone.Store(true)
}

// startLeafHog starts leafHog and returns a function that stops it.
func startLeafHog() (stop func()) {
	leafStop.Store(false)
	leafDone.Store(false)
	go leafHog()
	return func() {
		leafStop.Store(true)
		for !leafDone.Load() {
			time.Sleep(time.Millisecond)
		}
	}
}

//go:noinline
func stateSpin(n int) int64 {
	x := int64(0)
	for i := range n {
		x += int64(i) ^ x>>3
	}
	return x
}
