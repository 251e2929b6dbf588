package inproc

import (
	"bytes"
	"context"
	"io"
	"math"
	"runtime/trace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/source"
)

// tracing says whether a trace runs in this process: runtime/trace.Start
// fails while one does.
func tracing(t *testing.T) bool {
	t.Helper()
	if err := trace.Start(io.Discard); err != nil {
		return true
	}
	trace.Stop()
	return false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// Nothing is traced while nobody asks: not before the first request, and
// not once requests have stopped for IdleAfter.
func TestCollectorIdleIsFree(t *testing.T) {
	c, err := NewCollector(CollectorOptions{IdleAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tracing(t) {
		t.Fatal("a trace runs before any request")
	}
	ctx := source.AcceptPartial(context.Background())
	if _, err := c.Snapshot(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	running := c.rec != nil
	c.mu.Unlock()
	if !running {
		t.Fatal("no recorder after a request")
	}
	eventually(t, 10*time.Second, "the recorder stops after the requests did", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.rec == nil
	})
	if tracing(t) {
		t.Error("a trace runs after the recorder stopped")
	}
}

// A request that takes a partial window (a watch stream's) gets the first
// slice of a process nobody watched, and says it is recording.
func TestCollectorPartialFirstSnapshot(t *testing.T) {
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	asked := time.Now()
	snap, err := c.Snapshot(source.AcceptPartial(context.Background()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if snap.RecordingSince.Before(asked) || time.Duration(snap.WindowNS) >= 5*time.Second {
		t.Errorf("recording since %v (asked at %v), window %v: want a window since the request, shorter than the 5s asked",
			snap.RecordingSince, asked, time.Duration(snap.WindowNS))
	}
	if !slices.ContainsFunc(snap.Notes, func(n string) bool { return strings.Contains(n, "recorded from the first request on") }) {
		t.Errorf("notes %q: want one saying it records from the request on", snap.Notes)
	}
}

// A /debug/pprof/trace request pauses the recorder: the runtime runs one
// runtime/trace.Start at a time.
func TestCollectorPauseLive(t *testing.T) {
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := source.AcceptPartial(context.Background())
	if _, err := c.Snapshot(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	resume := c.PauseLive()
	if tracing(t) {
		t.Error("the recorder still traces while paused")
	}
	// Requests meanwhile are served from the slices kept.
	if _, err := c.Snapshot(ctx, time.Second); err != nil {
		t.Errorf("snapshot while paused: %v", err)
	}
	if tracing(t) {
		t.Error("a request restarted the recorder while paused")
	}
	resume()
	resume() // harmless
	if _, err := c.Snapshot(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the recorder runs again after resume", func() bool { return tracing(t) })
}

// Past MaxPause, no dump: the notes say where names and waits come from.
func TestCollectorNoDumpPastMaxPause(t *testing.T) {
	c, err := NewCollector(CollectorOptions{MaxPause: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := c.Snapshot(source.AcceptPartial(context.Background()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(snap.Source, "dump") || !strings.Contains(snap.Source, "profile") {
		t.Errorf("source %q: want the goroutine profile and no dump", snap.Source)
	}
	if !slices.ContainsFunc(snap.Notes, func(n string) bool { return strings.Contains(n, "--max-pause") }) {
		t.Errorf("notes %q: want one saying why there is no dump", snap.Notes)
	}
}

// The share traced keeps inspection within the budget of the program's
// own CPU: a program whose tracing costs little is traced all the time;
// one whose events cost much (channel ping-pong) a part of each second,
// in short slices; one with many goroutines that do little, in long slices
// far apart (each costs an event a goroutine); one so costly that even
// that is too much, every maxCycle.
func TestNextPlan(t *testing.T) {
	for _, c := range []struct {
		name      string
		cost      costs
		wantShare [2]float64
		wantOn    [2]time.Duration
		wantOver  bool
	}{
		{"idle program, few goroutines", costs{on: time.Second, cycle: 1010 * time.Millisecond, analysis: 2 * time.Millisecond,
			events: 5000, goroutines: 50, progCPU: 20 * time.Millisecond}, [2]float64{1, 1}, [2]time.Duration{maxSlice, maxSlice}, false},
		{"ping-pong on two cores", costs{on: 250 * time.Millisecond, cycle: 600 * time.Millisecond, analysis: 300 * time.Millisecond,
			events: 1_500_000, goroutines: 120, progCPU: 1200 * time.Millisecond}, [2]float64{0.02, 0.08}, [2]time.Duration{minSlice, minSlice}, false},
		// The same, its slice cut at maxSliceBytes: slices as long as fit.
		{"ping-pong cut short", costs{on: 10 * time.Millisecond, cycle: 2 * time.Second, analysis: 60 * time.Millisecond,
			events: 52_000, bytes: maxSliceBytes + 20_000, goroutines: 120, progCPU: 3900 * time.Millisecond}, [2]float64{0.002, 0.02}, [2]time.Duration{8 * time.Millisecond, 10 * time.Millisecond}, false},
		{"100,000 parked goroutines", costs{on: time.Second, cycle: 1400 * time.Millisecond, analysis: 250 * time.Millisecond,
			events: 101_000, goroutines: 100_000, progCPU: 300 * time.Millisecond}, [2]float64{0.1, 0.2}, [2]time.Duration{maxSlice, maxSlice}, false},
		{"a million parked goroutines", costs{on: time.Second, cycle: 4 * time.Second, analysis: 2500 * time.Millisecond,
			events: 1_001_000, goroutines: 1_000_000, progCPU: 2600 * time.Millisecond}, [2]float64{0.1, 0.1}, [2]time.Duration{maxSlice, maxSlice}, true},
	} {
		p := nextPlan(c.cost, 0.05)
		if p.share < c.wantShare[0] || p.share > c.wantShare[1] || p.over != c.wantOver || p.on < c.wantOn[0] || p.on > c.wantOn[1] {
			t.Errorf("%s: %+v; want a share from %.3g to %.3g, slices of %v to %v, over %v", c.name, p, c.wantShare[0], c.wantShare[1], c.wantOn[0], c.wantOn[1], c.wantOver)
		}
		if p.on < minCapped || p.on > maxSlice || p.on+p.off > maxCycle {
			t.Errorf("%s: %+v: slices of %v to %v, cycles of at most %v", c.name, p, minCapped, maxSlice, maxCycle)
		}
	}
}

// What the snapshots cost (building, diagnosing, encoding them) comes out of
// the same budget: the recorder traces less the more they take, and a
// little still when they take all of it.
func TestNextPlanChargesTheSnapshots(t *testing.T) {
	// A server on one core whose tracing costs some 8% of it.
	server := costs{on: 500 * time.Millisecond, cycle: 520 * time.Millisecond, analysis: 15 * time.Millisecond,
		events: 200_000, goroutines: 40, progCPU: 530 * time.Millisecond}
	free := nextPlan(server, 0.05)
	if free.share <= 0.3 || free.share >= 1 {
		t.Fatalf("with nothing charged: %+v; want a share from 0.3 to 1", free)
	}
	allowed := 0.05 / 0.95
	for _, other := range []float64{0.01, 0.03} {
		server.other = other
		p := nextPlan(server, 0.05)
		want := free.share * (allowed - other) / allowed
		if math.Abs(p.share-want) > want/10 {
			t.Errorf("with %.0f%% of a core charged: %+v; want a share of %.3g (%.3g with nothing charged)", other*100, p, want, free.share)
		}
	}
	server.other = 0.2
	if p := nextPlan(server, 0.05); p.share <= 0 || p.share > free.share/8 {
		t.Errorf("with the snapshots taking all the budget: %+v; want a share above 0 and at most %.3g", p, free.share/8)
	}
}

// Past its cap, a slice's writer keeps the generation in flight to its end
// and drops the rest, so that what it keeps is a trace of whole generations
// however long the tracer takes to stop.
func TestCapWriterKeepsWholeGenerations(t *testing.T) {
	var buf bytes.Buffer
	fulls := 0
	w := &capWriter{buf: &buf, max: 10, full: func() { fulls++ }}
	for _, p := range [][]byte{[]byte("header"), {endOfGeneration}, []byte("gen 2 batch"), []byte("more"), {endOfGeneration}, []byte("gen 3"), {endOfGeneration}} {
		if n, err := w.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	want := "header\x34gen 2 batchmore\x34"
	if buf.String() != want || !w.dropped || w.n != 29 || fulls == 0 {
		t.Errorf("kept %q (dropped %v, %d bytes written, full called %d times), want %q", buf.String(), w.dropped, w.n, fulls, want)
	}
}
