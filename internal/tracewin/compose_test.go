package tracewin

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/stack"
)

// composeSleeper sleeps 10ms at a time: about 100 runs a second.
//
//go:noinline
func composeSleeper(stop *atomic.Bool) {
	for !stop.Load() {
		time.Sleep(10 * time.Millisecond)
	}
}

// composeHalfBusy computes about 4ms, then sleeps 4ms.
//
//go:noinline
func composeHalfBusy(stop *atomic.Bool) {
	for !stop.Load() {
		for t := time.Now(); time.Since(t) < 4*time.Millisecond; {
			spin(1000)
		}
		time.Sleep(4 * time.Millisecond)
	}
}

// composeParked waits all along.
//
//go:noinline
func composeParked(stop <-chan struct{}) { <-stop }

// waitParked waits until n goroutines wait in composeParked: a goroutine
// just started may run its first steps in the trace that follows.
func waitParked(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		dump := string(buf[:runtime.Stack(buf, true)])
		parked := 0
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "[chan receive") && strings.Contains(g, ".composeParked(") {
				parked++
			}
		}
		if parked >= n {
			return
		}
	}
	t.Fatalf("%d goroutines never all parked", n)
}

// slicesOf traces n slices of on, with off between.
func slicesOf(t *testing.T, n int, on, off time.Duration) []*Slice {
	t.Helper()
	in := NewInterner()
	var parts []*Slice
	for i := range n {
		w := traceFor(t, on)
		if w.WallStart.IsZero() {
			t.Fatal("a slice without a wall clock")
		}
		parts = append(parts, NewSlice(w, in))
		if i < n-1 {
			time.Sleep(off)
		}
	}
	return parts
}

// traceFor traces d and analyses it.
func traceFor(t *testing.T, d time.Duration) *Window {
	t.Helper()
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	trace.Stop()
	w, err := AnalyzeTrace(&buf, WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// byFunc finds the goroutine of a window that runs fn: in its start
// function or its stacks.
func byFunc(t *testing.T, w *Window, fn string) *GoStats {
	t.Helper()
	has := func(frames []stack.Frame) bool {
		return slices.ContainsFunc(frames, func(f stack.Frame) bool { return strings.HasSuffix(f.Func, "."+fn) })
	}
	for g := range w.All() {
		if !g.Exited && (strings.HasSuffix(g.StartFunc, "."+fn) || has(g.Stack) || has(g.StretchStack)) {
			c := *g
			return &c
		}
	}
	t.Fatalf("no goroutine runs %s", fn)
	return nil
}

// A window composed of slices traced 40% of the time tells what the slices
// saw, scaled to the window: runs per second and the busy share within 10%
// of those in the slices, its times adding up to its length, and the share
// it observed. The slices are parts of the full trace, and where they are a
// fair sample of it (the program ran as steadily in them as all along, as
// it does on a quiet machine) the estimate is within 10% of the full
// trace's figures too; on a loaded machine the program's runs come in
// bursts, the slices need not be a fair sample, and only the estimate's
// arithmetic is checked.
func TestComposeMatchesAFullTrace(t *testing.T) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { composeSleeper(&stop) })
	wg.Go(func() { composeHalfBusy(&stop) })
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	time.Sleep(100 * time.Millisecond)
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3200 * time.Millisecond)
	trace.Stop()
	data := buf.Bytes()
	full, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	// 150ms of each 375ms, from 100ms in.
	in := NewInterner()
	var parts []*Slice
	var sliced []*Window
	for i := range 8 {
		from := full.WallStart.Add(100*time.Millisecond + time.Duration(i)*375*time.Millisecond)
		sw, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true, Since: from, For: 150 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		sliced = append(sliced, sw)
		parts = append(parts, NewSlice(sw, in))
	}
	full, err = AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true, Since: parts[0].WallStart,
		For: parts[len(parts)-1].WallEnd.Sub(parts[0].WallStart)})
	if err != nil {
		t.Fatal(err)
	}
	w := Compose(parts, 10*time.Second)

	if share := w.ObservedShare(); share < 0.3 || share > 0.5 {
		t.Errorf("observed share %.2f; want about 0.4", share)
	}
	if d, want := time.Duration(w.Duration()), time.Duration(full.Duration()); d < want*9/10 || d > want*11/10 {
		t.Errorf("window %v; want about %v", d, want)
	}
	for g := range w.All() {
		if g.Busy+g.Sched+g.Idle+g.Syscall != g.Total || g.Total > w.Duration() {
			t.Errorf("goroutine %d: busy %d + sched %d + idle %d + syscall %d != total %d (window %d)", g.ID, g.Busy, g.Sched, g.Idle, g.Syscall, g.Total, w.Duration())
		}
	}
	rate := func(g *GoStats) float64 { return float64(g.Polls) / float64(g.Total) * 1e9 }
	share := func(g *GoStats) float64 { return float64(g.Busy) / float64(g.Total) }
	// inSlices adds up a goroutine's numbers over the slices: what the
	// composed window scales up.
	inSlices := func(id int64) *GoStats {
		var sum GoStats
		for _, sw := range sliced {
			if g := sw.Get(id); g != nil {
				sum.Polls += g.Polls
				sum.Busy += g.Busy
				sum.Total += g.Total
			}
		}
		return &sum
	}
	for _, c := range []struct {
		fn   string
		what string
		of   func(*GoStats) float64
	}{
		{"composeSleeper", "runs per second", rate},
		{"composeHalfBusy", "runs per second", rate},
		{"composeHalfBusy", "busy share", share},
	} {
		// One trace: the same goroutine has the same ID in both.
		ref := byFunc(t, full, c.fn)
		g := w.Get(ref.ID)
		if g == nil {
			t.Fatalf("%s: goroutine %d is not in the composed window", c.fn, ref.ID)
		}
		got, saw, all := c.of(g), c.of(inSlices(ref.ID)), c.of(ref)
		if math.Abs(got-saw) > 0.1*saw {
			t.Errorf("%s: %s %.3g composed, %.3g in the slices it was composed of: more than 10%% apart", c.fn, c.what, got, saw)
		}
		switch {
		case math.Abs(saw-all) > 0.05*all:
			t.Logf("%s: %s %.3g in the slices, %.3g in the full trace: the machine made the program unsteady, the slices are no fair sample of it", c.fn, c.what, saw, all)
		case math.Abs(got-all) > 0.1*all:
			t.Errorf("%s: %s %.3g composed, %.3g in the full trace (%.3g in the slices): more than 10%% apart", c.fn, c.what, got, all, saw)
		}
	}
}

// A goroutine parked all along is quiet in every slice (separate traces,
// each of which records it as it ends): idle all the composed window, and
// in its state as long as the slices saw it, the gaps between them
// included. Get makes what All does.
func TestComposeQuietGoroutines(t *testing.T) {
	parked := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { composeParked(parked) })
	}
	defer func() { close(parked); wg.Wait() }()
	waitParked(t, 20)
	parts := slicesOf(t, 4, 200*time.Millisecond, 200*time.Millisecond)
	w := Compose(parts, 10*time.Second)
	p := byFunc(t, w, "composeParked")
	if p.State != stack.Waiting || p.WaitReason != "chan receive" || p.Idle != p.Total || p.InState < w.Duration()*9/10 {
		t.Errorf("parked: %+v; want waiting on chan receive all the %v window", *p, time.Duration(w.Duration()))
	}
	if g := w.Get(p.ID); g == nil || g.Total != p.Total || g.InState != p.InState || len(g.Stack) == 0 {
		t.Errorf("Get(%d) = %+v; want %+v", p.ID, g, *p)
	}
	if w.Get(1<<40) != nil {
		t.Error("Get of a goroutine no slice saw")
	}
	quiet := 0
	for _, x := range parts {
		quiet += len(x.quiet)
	}
	if quiet < 4*20 {
		t.Errorf("%d quiet records in 4 slices of 20 parked goroutines", quiet)
	}
}

// A window shorter than the slices kept takes the last ones only; one
// slice gives that slice's numbers, unscaled.
func TestComposeSpan(t *testing.T) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { composeSleeper(&stop) })
	defer func() { stop.Store(true); wg.Wait() }()
	parts := slicesOf(t, 3, 200*time.Millisecond, 100*time.Millisecond)
	w := Compose(parts, 200*time.Millisecond)
	if w.ObservedShare() < 0.99 || w.WallStart.Before(parts[2].WallStart) || time.Duration(w.Duration()) != 200*time.Millisecond {
		t.Errorf("a 200ms window of 200ms slices: share %.2f, %v from %v; want 200ms of the last slice", w.ObservedShare(), time.Duration(w.Duration()), w.WallStart)
	}
	// A window that starts within a slice takes it in proportion: all of
	// the last slice, and what of the one before falls in the window (the
	// gap between them is 100ms, more on a loaded machine).
	w = Compose(parts, 400*time.Millisecond)
	from := parts[2].WallEnd.Add(-400 * time.Millisecond)
	if from.Before(parts[1].WallStart) {
		from = parts[1].WallStart
	}
	traced := parts[2].Duration() + max(0, parts[1].WallEnd.Sub(from))
	want := float64(traced) / float64(400*time.Millisecond)
	if d := time.Duration(w.Duration()); d != 400*time.Millisecond || math.Abs(w.ObservedShare()-want) > 0.02 {
		t.Errorf("a 400ms window: %v, share %.2f; want 400ms, %v of it traced (%.2f)", d, w.ObservedShare(), traced, want)
	}
	if w := Compose(nil, time.Second); w.Count() != 0 {
		t.Errorf("no slices: %d goroutines", w.Count())
	}
}

// AnalyzeSlice keeps what NewSlice keeps of AnalyzeTrace's window, without
// making the quiet goroutines' numbers.
func TestAnalyzeSliceIsNewSlice(t *testing.T) {
	var stop atomic.Bool
	parked := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { composeSleeper(&stop) })
	wg.Go(func() { composeHalfBusy(&stop) })
	for range 20 {
		wg.Go(func() { composeParked(parked) })
	}
	defer func() { stop.Store(true); close(parked); wg.Wait() }()
	waitParked(t, 20)
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	trace.Stop()
	w, err := AnalyzeTrace(bytes.NewReader(buf.Bytes()), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	a := Compose([]*Slice{NewSlice(w, NewInterner())}, time.Minute)
	s, err := AnalyzeSlice(bytes.NewReader(buf.Bytes()), NewInterner(), nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.quiet) < 20 {
		t.Errorf("%d quiet goroutines, want the 20 parked at least", len(s.quiet))
	}
	if cap(s.quiet) > len(s.quiet)+len(s.quiet)/8 {
		t.Errorf("room for %d quiet records kept for %d: a slice keeps what it needs", cap(s.quiet), len(s.quiet))
	}
	b := Compose([]*Slice{s}, time.Minute)
	var n int
	for g := range a.All() {
		n++
		h := b.Get(g.ID)
		if h == nil {
			t.Errorf("goroutine %d missing", g.ID)
			continue
		}
		if h.Total != g.Total || h.Busy != g.Busy || h.Polls != g.Polls || h.State != g.State || h.WaitReason != g.WaitReason ||
			h.InState != g.InState || h.StartFunc != g.StartFunc || len(h.Stack) != len(g.Stack) || h.CreatedBy != g.CreatedBy {
			t.Errorf("goroutine %d: %+v, want %+v", g.ID, *h, *g)
		}
	}
	if n == 0 || b.Count() != a.Count() || len(b.Sites) != len(a.Sites) {
		t.Errorf("%d goroutines, %d and %d counted, %d and %d sites", n, a.Count(), b.Count(), len(a.Sites), len(b.Sites))
	}
	// A cut trace gives what it could read, and says so.
	cut, err := AnalyzeSlice(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), NewInterner(), nil, nil, 0)
	if err == nil || !cut.Truncated {
		t.Errorf("a cut trace: %v, truncated %v", err, cut.Truncated)
	}
}

// Stack says what Get says of a goroutine's stacks, for every goroutine of
// a composed window, without making its numbers.
func TestComposeStackIsGets(t *testing.T) {
	var stop atomic.Bool
	parked := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { composeSleeper(&stop) })
	wg.Go(func() { composeHalfBusy(&stop) })
	wg.Go(func() {
		// Runs long enough to be preempted: a stretch stack.
		for !stop.Load() {
			for t := time.Now(); time.Since(t) < 30*time.Millisecond; {
				spin(1000)
			}
			time.Sleep(time.Millisecond)
		}
	})
	for range 10 {
		wg.Go(func() { composeParked(parked) })
	}
	defer func() { stop.Store(true); close(parked); wg.Wait() }()
	waitParked(t, 10)
	same := func(a, b []stack.Frame) bool {
		return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
	}
	var w *Window
	n, stretched := 0, 0
	// A loaded machine may not preempt the spinner in a given window: the
	// windows are composed until one holds a stretch stack to compare.
	for try := 0; try < 5 && stretched == 0; try++ {
		w = Compose(slicesOf(t, 3, 150*time.Millisecond, 100*time.Millisecond), 10*time.Second)
		n = 0
		for g := range w.All() {
			got := w.Get(g.ID)
			if s := w.Stack(g.ID, false); !same(s, got.Stack) {
				t.Errorf("goroutine %d: Stack %v, Get's %v", g.ID, s, got.Stack)
			}
			if s := w.Stack(g.ID, true); !same(s, got.StretchStack) {
				t.Errorf("goroutine %d: stretch stack %v, Get's %v", g.ID, s, got.StretchStack)
			}
			n++
			if len(got.StretchStack) > 0 {
				stretched++
			}
		}
	}
	if n < 12 || stretched == 0 {
		t.Errorf("%d goroutines, %d with a stretch stack in 5 windows: want the sleeper, the busy ones and the parked ones", n, stretched)
	}
	if w.Stack(1<<40, false) != nil || w.Stack(1<<40, true) != nil {
		t.Error("a stack for a goroutine no slice saw")
	}
}

// A slice whose analysis stopped at its event cap lacks the goroutines
// that had no event before the cut (quiet ones are told at the end of
// their generation): composed after a whole slice, they are not taken for
// exited; after a whole slice that lacks them, they are.
func TestComposeCutSliceKeepsQuietGoroutines(t *testing.T) {
	parked := make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { composeParked(parked) })
	}
	defer func() { close(parked); wg.Wait() }()
	waitParked(t, 5)
	record := func() []byte {
		var buf bytes.Buffer
		if err := trace.Start(&buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		trace.Stop()
		return buf.Bytes()
	}
	in := NewInterner()
	whole, err := AnalyzeSlice(bytes.NewReader(record()), in, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, q := range whole.quiet {
		ids = append(ids, q.id)
	}
	if len(ids) < 5 {
		t.Fatalf("%d quiet goroutines in a whole slice, want the 5 parked at least", len(ids))
	}
	cut, _ := AnalyzeSlice(bytes.NewReader(record()), in, nil, nil, 20)
	if !cut.Truncated {
		t.Fatalf("a slice analysed up to 20 events is not marked cut")
	}
	cut.WallStart, cut.WallEnd = whole.WallEnd.Add(time.Millisecond), whole.WallEnd.Add(101*time.Millisecond)
	w := Compose([]*Slice{whole, cut}, time.Minute)
	for _, id := range ids {
		if g := w.Get(id); g == nil || g.Exited {
			t.Errorf("goroutine %d, quiet in the whole slice, absent from the cut one: %+v, want alive", id, g)
		}
	}
	// The same absence from a whole slice is an exit.
	cut.Truncated = false
	w = Compose([]*Slice{whole, cut}, time.Minute)
	if g := w.Get(ids[0]); g == nil || !g.Exited {
		t.Errorf("goroutine %d absent from a whole last slice: %+v, want exited", ids[0], g)
	}
}

// waitForWake blocks its goroutine on wake, then on done: the site of the
// first wait is what TestSliceWaitsSinceTheSliceBefore looks for.
func waitForWake(wake, done chan struct{}) {
	<-wake
	<-done
}

// A goroutine waiting since before a slice and woken in it has a status
// event without stack or reason: with the slice before, its wait is at
// the site where that slice saw it wait, not at a site of no place.
func TestSliceWaitsSinceTheSliceBefore(t *testing.T) {
	wake, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { waitForWake(wake, done) })
	defer func() { close(done); wg.Wait() }()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(string(buf[:runtime.Stack(buf, true)]), ".waitForWake("); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the goroutine never waited in waitForWake")
		}
	}
	record := func(during func()) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := trace.Start(&buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		during()
		time.Sleep(50 * time.Millisecond)
		trace.Stop()
		return buf.Bytes()
	}
	first, err := AnalyzeSlice(bytes.NewReader(record(func() {})), NewInterner(), nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	second := record(func() { close(wake) })
	sites := func(s *Slice) (placed, unplaced *SiteStats, all []string) {
		for _, st := range s.sites {
			all = append(all, fmt.Sprintf("%s at %s:%d (woken %d)", st.Reason, st.Location.Func, st.Location.Line, st.Wakeups))
			if st.Wakeups == 0 {
				continue
			}
			switch {
			case strings.HasSuffix(st.Location.Func, "tracewin.waitForWake") && st.Reason == "chan receive":
				placed = st
			case st.Location.Func == "":
				unplaced = st
			}
		}
		return placed, unplaced, all
	}
	alone, err := AnalyzeSlice(bytes.NewReader(second), NewInterner(), nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, unplaced, all := sites(alone); unplaced == nil {
		t.Logf("alone, the second slice placed the wake-up: %q", all) // the runtime gave the status a stack
	}
	s, err := AnalyzeSlice(bytes.NewReader(second), NewInterner(), first, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	placed, unplaced, all := sites(s)
	if placed == nil || unplaced != nil {
		t.Fatalf("the goroutine woken from its wait in waitForWake: sites %q, want its wake-up there, none at a site of no place", all)
	}
	if placed.WaitNS < int64(10*time.Millisecond) {
		t.Errorf("waitForWake's site: %v of waiting, want its wait from the slice's start to the wake-up", time.Duration(placed.WaitNS))
	}
}
