package inproc

// Benchmarks of the in-process Collector against the project's targets: the
// live snapshot's time, pauses and memory at 10k, 100k (and 1M) goroutines,
// the full dump's stop-the-world cost and budget, the always-on flight
// recorder's cost to a workload, and the CPU a watching client costs.
// BENCHMARKS.md at the module root has the results and the commands.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	rtrace "runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/tracewin"
	"golang.org/x/exp/trace"
)

// parkGoroutines starts n goroutines blocked on a channel receive, half of
// them under pprof.Do labels, and returns a func that ends them.
func parkGoroutines(n int) (release func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(n)
	ctx := context.Background()
	for i := range n {
		if i%2 == 0 {
			go pprof.Do(ctx, pprof.Labels("workload", "bench", "role", "parked"), func(context.Context) {
				defer wg.Done()
				<-stop
			})
		} else {
			go func() {
				defer wg.Done()
				<-stop
			}()
		}
	}
	return func() {
		close(stop)
		wg.Wait()
	}
}

// pauseProbe reads the runtime's stop-the-world pause histograms (GC and
// other), to tell the pauses that happened between mark and since.
type pauseProbe struct {
	samples []metrics.Sample
	before  [][]uint64
}

func newPauseProbe() *pauseProbe {
	p := &pauseProbe{samples: []metrics.Sample{
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/sched/pauses/total/other:seconds"},
	}}
	p.mark()
	return p
}

func (p *pauseProbe) mark() {
	metrics.Read(p.samples)
	p.before = p.before[:0]
	for _, s := range p.samples {
		p.before = append(p.before, slices.Clone(s.Value.Float64Histogram().Counts))
	}
}

// since returns the pauses since mark: their count, the upper bound of the
// highest bucket that gained counts (the longest pause, over-estimated by at
// most the bucket's width) and an estimate of their total (bucket
// midpoints).
func (p *pauseProbe) since() (n uint64, longest, total time.Duration) {
	_, _, n, longest, total = p.sinceByClass()
	return n, longest, total
}

// sinceByClass is since, with the longest GC and other pause apart.
func (p *pauseProbe) sinceByClass() (gc, other time.Duration, n uint64, longest, total time.Duration) {
	metrics.Read(p.samples)
	for k, s := range p.samples {
		h := s.Value.Float64Histogram()
		for i, c := range h.Counts {
			d := c - p.before[k][i]
			if d == 0 {
				continue
			}
			lo, hi := h.Buckets[i], h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = lo
			}
			lo = max(lo, 0) // the first bucket starts at -Inf
			n += d
			longest = max(longest, time.Duration(hi*1e9))
			if k == 0 {
				gc = max(gc, time.Duration(hi*1e9))
			} else {
				other = max(other, time.Duration(hi*1e9))
			}
			total += time.Duration(float64(d) * (lo + hi) / 2 * 1e9)
		}
	}
	return gc, other, n, longest, total
}

// peakProbe samples read every 2ms until stopped, for the highest value
// seen.
type peakProbe struct {
	stop chan struct{}
	done chan uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startPeak(read func() uint64) *peakProbe {
	h := &peakProbe{stop: make(chan struct{}), done: make(chan uint64)}
	go func() {
		peak := read()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				h.done <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return h
}

func (h *peakProbe) end() uint64 {
	close(h.stop)
	return <-h.done
}

// heapLive is the heap the last garbage collection found live.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcCPU is the CPU time the garbage collector has used so far.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// benchGOGC sets, with PROBES_BENCH_GOGC=N, the garbage collector's
// percent to N for the benchmark, and reports whether it did. A low N
// (10) has the collector run every few tens of MB allocated, so the live heap each one finds (/gc/heap/live:bytes)
// follows the build's stages closely: its highest value is the memory the
// collector needs at its peak, without the garbage the default pacing
// (GOGC=100) lets pile up before it collects. Such a run's times count
// all those collections.
func benchGOGC(b *testing.B) bool {
	env := os.Getenv("PROBES_BENCH_GOGC")
	if env == "" {
		return false
	}
	n, err := strconv.Atoi(env)
	if err != nil || n <= 0 {
		b.Fatalf("PROBES_BENCH_GOGC=%q: want a percent", env)
	}
	old := debug.SetGCPercent(n)
	b.Cleanup(func() { debug.SetGCPercent(old) })
	return true
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const mb = 1 << 20

// writeHeapProfile writes the heap profile to the file PROBES_BENCH_HEAP
// names, if any: what the collector keeps, part by part (with
// -memprofilerate=1 for exact sizes).
func writeHeapProfile(b *testing.B) {
	name := os.Getenv("PROBES_BENCH_HEAP")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCollectorSnapshot builds the live snapshot (tasks with state,
// wait reason and site, labels, window numbers) without a full dump, of a
// program with 10k and 100k goroutines parked on channel receives, half of
// them under pprof.Do labels (1M with PROBES_BENCH_1M=1: the process then
// needs about 7 GB). Each count is measured twice: "fresh", 2.5s after the
// recorder started, and "steady", once the recorder holds its full MinAge
// of 10s (as a long-running program has it).
//
// ns/op is Snapshot alone. Per snapshot it reports the process's CPU time
// during it (cpu-ms: the build and the GC it causes; the first snapshot
// also reads the goroutine profile alongside), the longest
// stop-the-world pause seen during it (max-pause-ms, any cause, GC
// included), the heap allocated (alloc-MB), the live heap's peak above its
// level before the snapshot (peak-MB), the live heap after it with the
// collector keeping the snapshot (heap-MB) and what the collector keeps
// (kept-MB), the tasks and those labelled (from the goroutine profile,
// read in the background after each snapshot, each read taking
// profile-ms: the benchmark waits for it to end before going on), and the
// breakdown
// of a second build step by step: the flight recorder's WriteTo
// (write-ms), the trace analysis (analyze-ms), the model with the
// runtime/metrics read (model-ms) and that read alone (metrics-ms), with
// the trace's size, its generations and those the analysis reads
// (gens-read: from the one before the window's start), the events
// analysed, and the bare parse of those generations by x/exp/trace
// (bare-parse-ms: NewReader and ReadEvent, the floor of the analysis).
//
//	go test -run x -bench CollectorSnapshot -benchtime 5x -timeout 30m ./internal/source/inproc
func BenchmarkCollectorSnapshot(b *testing.B) {
	counts := benchCounts()
	for _, n := range counts {
		b.Run(fmt.Sprintf("g=%dk", n/1000), func(b *testing.B) {
			// DumpBudget 1e-9: the first dump is due after 6us*n/1e-9, years.
			// (1e-12 overflows time.Duration above ~1,500 goroutines and
			// dumps every time.) CPUBudget 1e9: no snapshot is shared.
			// LiveIdle -1: every window from the flight recorder
			// (BenchmarkCollectorLive measures the live stream's).
			c, base := parkedCollector(b, n, CollectorOptions{DumpBudget: 1e-9, CPUBudget: 1e9, LiveIdle: -1})
			started := time.Now()
			for _, phase := range []struct {
				name string
				age  time.Duration
			}{{"fresh", 2500 * time.Millisecond}, {"steady", 12 * time.Second}} {
				time.Sleep(time.Until(started.Add(phase.age)))
				b.Run(phase.name, func(b *testing.B) {
					benchSnapshot(b, c, n, base)
				})
			}
		})
	}
}

// parkedCollector parks n goroutines (parkGoroutines) and starts a
// collector with opts, both ended with b; base is the live heap before the
// collector started.
func parkedCollector(b *testing.B, n int, opts CollectorOptions) (*Collector, uint64) {
	b.Cleanup(parkGoroutines(n))
	base := liveHeap()
	c, err := NewCollector(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c, base
}

// benchCounts are the goroutine counts the snapshot benchmarks park: 10k
// and 100k, and 1M with PROBES_BENCH_1M=1.
func benchCounts() []int {
	counts := []int{10_000, 100_000}
	if os.Getenv("PROBES_BENCH_1M") != "" {
		counts = append(counts, 1_000_000)
	}
	return counts
}

// waitProfileRead waits for the goroutine profile read that follows a
// snapshot, if one runs: it adds to the build's cost.
func waitProfileRead(c *Collector) {
	c.mu.Lock()
	done := c.profDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

func benchSnapshot(b *testing.B, c *Collector, n int, base uint64) {
	const window = 2 * time.Second
	ctx := context.Background()
	pp := newPauseProbe()
	var longest, longestGC, longestOther, profT, writeT, analyzeT, modelT, metricsT, cpuT time.Duration
	var labelled int
	var bareT time.Duration
	var gens, gensRead int64
	var alloc, peak uint64
	var traceBytes, events int64
	var tasks int
	var ms0, ms1 runtime.MemStats
	var buf bytes.Buffer
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		before := heapObjects()
		runtime.ReadMemStats(&ms0)
		hp := startPeak(heapObjects)
		// StartTimer and StopTimer stop the world (ReadMemStats: up to
		// 5ms at 1M goroutines): the pauses are counted within them.
		b.StartTimer()
		pp.mark()
		cpu0 := cpuTime()

		snap, err := c.Snapshot(ctx, window)

		cpuT += cpuTime() - cpu0
		gcP, otherP, _, l, _ := pp.sinceByClass()
		b.StopTimer()
		longestGC, longestOther = max(longestGC, gcP), max(longestOther, otherP)
		p := hp.end()
		runtime.ReadMemStats(&ms1)
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(snap.Source, "dump") {
			b.Fatalf("snapshot source %q: a dump was taken", snap.Source)
		}
		// The goroutine profile read that follows the snapshot (CPUBudget
		// 1e9: after every one): let it end before timing anything else.
		waitProfileRead(c)
		c.mu.Lock()
		profT += c.profCost
		c.mu.Unlock()
		labelled = 0
		for i := range snap.Tasks {
			if snap.Tasks[i].Labels["workload"] == "bench" {
				labelled++
			}
		}
		if len(snap.Tasks) < n {
			b.Fatalf("%d tasks, want >= %d: the window lacks goroutines", len(snap.Tasks), n)
		}
		longest = max(longest, l)
		alloc += ms1.TotalAlloc - ms0.TotalAlloc
		peak = max(peak, p-min(p, before))
		tasks = len(snap.Tasks)

		// The same build, step by step.
		buf.Reset()
		t0 := time.Now()
		if _, err := c.fr.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		win, err := tracewin.AnalyzeTrace(bytes.NewBuffer(buf.Bytes()), snapshotWindow(t0.Add(-window)))
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		// The floor: the bare parse of what the analysis reads (the
		// generations from the one before the window's start).
		ev, syncs := bareParse(b, tracewin.SkipGenerations(bytes.NewBuffer(buf.Bytes()), t0.Add(-window)))
		t2b := time.Now()
		c.mu.Lock()
		_ = c.model(win, t0)
		c.mu.Unlock()
		t3 := time.Now()
		bareT += t2b.Sub(t2)
		modelT += t3.Sub(t2b)
		gensRead = syncs - 1
		gens = tracewin.Generations(buf.Bytes())
		if ev != win.Events {
			b.Fatalf("bare parse: %d events, analysis %d", ev, win.Events)
		}
		_ = ReadProcess()
		t4 := time.Now()
		writeT += t1.Sub(t0)
		analyzeT += t2.Sub(t1)
		metricsT += t4.Sub(t3)
		traceBytes, events = int64(buf.Len()), win.Events
		b.StartTimer()
	}
	b.StopTimer()
	buf = bytes.Buffer{} // not counted in what the collector keeps
	heap := liveHeap()
	N := float64(b.N)
	msOf := func(d time.Duration) float64 { return d.Seconds() * 1e3 / N }
	b.ReportMetric(float64(longest.Microseconds())/1e3, "max-pause-ms")
	b.ReportMetric(float64(longestGC.Microseconds())/1e3, "max-gc-pause-ms")
	b.ReportMetric(float64(longestOther.Microseconds())/1e3, "max-other-pause-ms")
	b.ReportMetric(float64(alloc)/N/mb, "alloc-MB")
	b.ReportMetric(float64(peak)/mb, "peak-MB")
	b.ReportMetric(float64(heap)/mb, "heap-MB")
	b.ReportMetric(float64(int64(heap)-int64(base))/mb, "kept-MB")
	b.ReportMetric(msOf(cpuT), "cpu-ms")
	b.ReportMetric(msOf(profT), "profile-ms")
	b.ReportMetric(msOf(writeT), "write-ms")
	b.ReportMetric(msOf(analyzeT), "analyze-ms")
	b.ReportMetric(msOf(bareT), "bare-parse-ms")
	b.ReportMetric(float64(gens), "generations")
	b.ReportMetric(float64(gensRead), "gens-read")
	b.ReportMetric(msOf(modelT), "model-ms")
	b.ReportMetric(msOf(metricsT), "metrics-ms")
	b.ReportMetric(float64(traceBytes)/mb, "trace-MB")
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(float64(tasks), "tasks")
	b.ReportMetric(float64(labelled), "labelled")
}

// bareParse reads every event of data and counts them and the syncs (one
// per generation, and one at the end).
func bareParse(b *testing.B, data io.Reader) (events, syncs int64) {
	r, err := trace.NewReader(data)
	if err != nil {
		b.Fatal(err)
	}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			return events, syncs
		}
		if err != nil {
			b.Fatal(err)
		}
		events++
		if ev.Kind() == trace.EventSync {
			syncs++
		}
	}
}

// BenchmarkGCPause is the baseline for the pauses the snapshot benchmark
// sees: the longest stop-the-world pause of a runtime.GC() with 100k
// parked goroutines, with the flight recorder off and on.
//
//	go test -run x -bench GCPause -benchtime 10x ./internal/source/inproc
func BenchmarkGCPause(b *testing.B) {
	release := parkGoroutines(100_000)
	defer release()
	for _, rec := range []bool{false, true} {
		b.Run(fmt.Sprintf("recorder=%v", rec), func(b *testing.B) {
			if rec {
				fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: 10 * time.Second, MaxBytes: 64 << 20})
				if err := fr.Start(); err != nil {
					b.Fatal(err)
				}
				defer fr.Stop()
				time.Sleep(1500 * time.Millisecond)
			}
			pp := newPauseProbe()
			var longest time.Duration
			for b.Loop() {
				pp.mark()
				runtime.GC()
				_, l, _ := pp.since()
				longest = max(longest, l)
			}
			b.ReportMetric(float64(longest.Microseconds())/1e3, "max-pause-ms")
		})
	}
}

// BenchmarkDumpStopTheWorld takes the full goroutine dump (runtime.Stack of
// all goroutines, what Collector.dump does) of 10k and 100k parked
// goroutines and reports its cost per goroutine, the longest
// stop-the-world pause and the share of the call the world was stopped.
//
//	go test -run x -bench DumpStopTheWorld -benchtime 5x ./internal/source/inproc
func BenchmarkDumpStopTheWorld(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("g=%dk", n/1000), func(b *testing.B) {
			release := parkGoroutines(n)
			defer release()
			buf := make([]byte, 2048*n)
			pp := newPauseProbe()
			var longest, paused time.Duration
			var size int
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				b.StartTimer() // (it stops the world too: marked after)
				pp.mark()
				size = runtime.Stack(buf, true)
				_, l, t := pp.since()
				b.StopTimer()
				longest, paused = max(longest, l), paused+t
				if size == len(buf) {
					b.Fatal("dump cut: buffer too small")
				}
				b.StartTimer()
			}
			per := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(per*1e9/float64(n), "ns/goroutine")
			b.ReportMetric(float64(longest.Microseconds())/1e3, "max-pause-ms")
			b.ReportMetric(paused.Seconds()/float64(b.N)/per, "stopped-share")
			b.ReportMetric(float64(size)/float64(n), "B/goroutine")
		})
	}
}

// BenchmarkDumpBudget checks the collector's rule for full dumps: a client
// asks for a snapshot every 100ms (each built anew, CPUBudget 1e9) for
// PROBES_BENCH_BUDGET (default 30s) with PROBES_BENCH_BUDGET_N (default
// 10,000) parked goroutines and the default DumpBudget (1%). It reports the
// dumps taken and the share of wall time, counted from the collector's
// start, the world was stopped: by the dumps' own measure (dump-share) and
// by the runtime's pause histograms (stw-share, all pauses, GC included),
// and the highest share seen at the end of any dump (worst-dump-share).
//
//	go test -run x -bench DumpBudget -benchtime 1x ./internal/source/inproc
func BenchmarkDumpBudget(b *testing.B) {
	dur := 30 * time.Second
	if s := os.Getenv("PROBES_BENCH_BUDGET"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	n := 10_000
	if s := os.Getenv("PROBES_BENCH_BUDGET_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	release := parkGoroutines(n)
	defer release()
	var dumps int
	var dumpT time.Duration
	var stwShare, worst float64
	for b.Loop() {
		pp := newPauseProbe()
		c, err := NewCollector(CollectorOptions{CPUBudget: 1e9})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		dumps, dumpT, worst = 0, 0, 0
		tick := time.NewTicker(100 * time.Millisecond)
		for time.Since(start) < dur {
			<-tick.C
			snap, err := c.Snapshot(context.Background(), 2*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(snap.Source, "dump") {
				dumps++
				c.mu.Lock()
				dumpT += c.dumpCost
				c.mu.Unlock()
				worst = max(worst, dumpT.Seconds()/time.Since(start).Seconds())
				b.Logf("dump %d at %v: %v", dumps, time.Since(start).Round(time.Millisecond), c.dumpCost.Round(time.Millisecond))
			}
		}
		tick.Stop()
		elapsed := time.Since(start)
		_, _, stw := pp.since()
		c.Close()
		stwShare = stw.Seconds() / elapsed.Seconds()
		b.ReportMetric(dumpT.Seconds()/elapsed.Seconds(), "dump-share")
	}
	b.ReportMetric(float64(dumps), "dumps")
	b.ReportMetric(stwShare, "stw-share")
	b.ReportMetric(worst, "worst-dump-share")
}

// A throughput workload for the recorder's overhead: it runs until stop
// and counts operations in ops (one padded counter per goroutine).
type workload struct {
	name  string
	start func(stop <-chan struct{}, ops []paddedCount, wg *sync.WaitGroup) int
}

type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

// spin is a small piece of CPU work (~3ns per round).
//
//go:noinline
func spin(rounds int) uint64 {
	x := uint64(rounds)
	for i := range rounds {
		x = x*6364136223846793005 + uint64(i)
		x ^= x >> 29
	}
	return x
}

var spinSink atomic.Uint64

var workloads = []workload{
	// 50 pairs of goroutines ping-ponging on unbuffered channels: every
	// operation is two goroutine switches, the worst case for tracing.
	{"pingpong", func(stop <-chan struct{}, ops []paddedCount, wg *sync.WaitGroup) int {
		const pairs = 50
		for p := range pairs {
			ping, pong := make(chan int), make(chan int)
			wg.Go(func() {
				for {
					select {
					case <-stop:
						close(ping)
						return
					case ping <- 1:
					}
					<-pong
					ops[p].n.Add(1)
				}
			})
			wg.Go(func() {
				for v := range ping {
					pong <- v
				}
			})
		}
		return pairs
	}},
	// A worker pool: a producer hands tiny tasks (~1.5us of CPU each) over
	// a buffered channel to 2*GOMAXPROCS workers.
	{"pool", poolWorkload(500)},
	// The same pool with tasks of ~50us of CPU each.
	{"pool50us", poolWorkload(16_000)},
}

func poolWorkload(rounds int) func(stop <-chan struct{}, ops []paddedCount, wg *sync.WaitGroup) int {
	return func(stop <-chan struct{}, ops []paddedCount, wg *sync.WaitGroup) int {
		tasks := make(chan int, 256)
		wg.Go(func() {
			defer close(tasks)
			for {
				select {
				case <-stop:
					return
				case tasks <- rounds:
				}
			}
		})
		workers := 2 * runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				var x uint64
				for r := range tasks {
					x += spin(r)
					ops[w].n.Add(1)
				}
				spinSink.Add(x)
			})
		}
		return workers
	}
}

func countOps(ops []paddedCount) int64 {
	var s int64
	for i := range ops {
		s += ops[i].n.Load()
	}
	return s
}

// BenchmarkRecorderOverhead runs a throughput workload (pingpong: 50 pairs
// of goroutines on unbuffered channels; pool: a worker pool doing ~1.5us
// tasks; pool50us: the same with ~50us tasks) continuously and measures its operations over rounds of
// PROBES_BENCH_ROUND (default 2s) alternately with the probes off and on;
// one iteration is one round of each, their order alternating. "recorder"
// is the flight recorder with the collector's defaults (MinAge 10s,
// MaxBytes 64 MiB); "collector" is a Collector with its defaults and a
// client asking it for a snapshot (5s window) every second. The
// parked=N variants add N goroutines parked on channels (present in both
// rounds). It reports on/off: the throughput ratio over all rounds, and its
// lowest and highest over single rounds.
//
//	go test -run x -bench RecorderOverhead -benchtime 5x -timeout 30m ./internal/source/inproc
func BenchmarkRecorderOverhead(b *testing.B) {
	round := 2 * time.Second
	if s := os.Getenv("PROBES_BENCH_ROUND"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		round = d
	}
	type variant struct {
		wl     workload
		probe  string
		parked int
	}
	var vs []variant
	for _, wl := range workloads {
		for _, probe := range []string{"recorder", "collector"} {
			vs = append(vs, variant{wl, probe, 0})
		}
	}
	for _, wl := range workloads[1:] {
		for _, parked := range []int{1_000, 10_000, 100_000} {
			vs = append(vs, variant{wl, "recorder", parked})
		}
	}
	for _, v := range vs {
		name := v.wl.name + "/" + v.probe
		if v.parked > 0 {
			name += fmt.Sprintf("/parked=%dk", v.parked/1000)
		}
		b.Run(name, func(b *testing.B) {
			if v.parked > 0 {
				defer parkGoroutines(v.parked)()
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			ops := make([]paddedCount, 64)
			v.wl.start(stop, ops, &wg)
			defer func() {
				close(stop)
				wg.Wait()
			}()
			measure := func() float64 {
				time.Sleep(300 * time.Millisecond) // settle
				n0, t0 := countOps(ops), time.Now()
				time.Sleep(round)
				return float64(countOps(ops)-n0) / time.Since(t0).Seconds()
			}
			on := func() float64 {
				switch v.probe {
				case "recorder":
					fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: 10 * time.Second, MaxBytes: 64 << 20})
					if err := fr.Start(); err != nil {
						b.Fatal(err)
					}
					defer fr.Stop()
					return measure()
				default:
					c, err := NewCollector(CollectorOptions{})
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					done := make(chan struct{})
					var cw sync.WaitGroup
					cw.Go(func() {
						t := time.NewTicker(time.Second)
						defer t.Stop()
						for {
							if _, err := c.Snapshot(context.Background(), 5*time.Second); err != nil {
								b.Error(err)
							}
							select {
							case <-done:
								return
							case <-t.C:
							}
						}
					})
					defer func() {
						close(done)
						cw.Wait()
					}()
					return measure()
				}
			}
			var sumOn, sumOff float64
			lo, hi := 1e9, 0.0
			i := 0
			for b.Loop() {
				var rOn, rOff float64
				if i%2 == 0 {
					rOff = measure()
					rOn = on()
				} else {
					rOn = on()
					rOff = measure()
				}
				i++
				sumOn, sumOff = sumOn+rOn, sumOff+rOff
				lo, hi = min(lo, rOn/rOff), max(hi, rOn/rOff)
			}
			b.ReportMetric(sumOn/sumOff, "on/off")
			b.ReportMetric(lo, "min-on/off")
			b.ReportMetric(hi, "max-on/off")
			b.ReportMetric(sumOff/float64(i), "off-ops/s")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectorCPU measures the process's CPU time (user+system, as a
// share of one core) with 10k parked goroutines for PROBES_BENCH_CPU
// (default 10s): with no probe ("none"), with a Collector nobody asks
// ("idle": the flight recorder alone), and with a client asking for a
// snapshot (5s window) every 200ms ("watch", default CPUBudget 0.25), or
// two clients doing so, one for a 5s window and one for 10s ("watch2").
// For those it also reports the snapshots built (the others were shared)
// and the share of the wall time the builds were charged with against the
// budget (build-share: see CollectorOptions.CPUBudget).
//
//	go test -run x -bench CollectorCPU -benchtime 1x ./internal/source/inproc
func BenchmarkCollectorCPU(b *testing.B) {
	dur := 10 * time.Second
	if s := os.Getenv("PROBES_BENCH_CPU"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	release := parkGoroutines(10_000)
	defer release()
	for _, mode := range []string{"none", "idle", "watch", "watch2"} {
		b.Run(mode, func(b *testing.B) {
			var share, builds, buildShare float64
			for b.Loop() {
				var c *Collector
				if mode != "none" {
					var err error
					if c, err = NewCollector(CollectorOptions{}); err != nil {
						b.Fatal(err)
					}
					time.Sleep(time.Second) // the recorder's start-up
				}
				runtime.GC()
				cpu0, t0 := cpuTime(), time.Now()
				var buildT time.Duration
				built := 0
				if strings.HasPrefix(mode, "watch") {
					windows := []time.Duration{5 * time.Second}
					if mode == "watch2" {
						windows = append(windows, 10*time.Second)
					}
					var mu sync.Mutex
					var lastAt time.Time
					var wg sync.WaitGroup
					for _, w := range windows {
						wg.Go(func() {
							tick := time.NewTicker(200 * time.Millisecond)
							defer tick.Stop()
							for time.Since(t0) < dur {
								<-tick.C
								if _, err := c.Snapshot(context.Background(), w); err != nil {
									b.Error(err)
									return
								}
								c.mu.Lock()
								at, cost := c.last.at, c.buildCost
								c.mu.Unlock()
								mu.Lock()
								if at != lastAt {
									built++
									buildT += cost
									lastAt = at
								}
								mu.Unlock()
							}
						})
					}
					wg.Wait()
				} else {
					time.Sleep(dur)
				}
				wall := time.Since(t0)
				share = (cpuTime() - cpu0).Seconds() / wall.Seconds()
				builds = float64(built)
				buildShare = buildT.Seconds() / wall.Seconds()
				if c != nil {
					c.Close()
				}
			}
			b.ReportMetric(share, "cores")
			if strings.HasPrefix(mode, "watch") {
				b.ReportMetric(builds, "builds")
				b.ReportMetric(buildShare, "build-share")
			}
		})
	}
}

// BenchmarkCollectorLive is BenchmarkCollectorSnapshot for a client that
// watches: a snapshot (2s window) a second, served from the live trace
// stream (live.go) rather than from the flight recorder. Of each snapshot
// it reports the catch-up (parsing the generations completed since the
// last one: catchup-ms), the window's composition (compose-ms), the rest
// (model-ms: the join with labels and runtime/metrics), the events parsed
// per snapshot (events) and the parser's time analysing them, during the
// snapshot or, while the CPU budget allows, as they came since the last
// one (parse-ms), the share of snapshots the stream served (live-%)
// and the same pauses, CPU and memory figures, with the times the stream's
// analysis started over (restarts: after a dropped backlog or an error).
// Every heap allocation in the process counts in alloc-MB, the runtime's
// own too: idle-alloc-MB/s is the process's rate while it waits for the
// next build, and own-alloc-MB, when the stream waits unread between
// builds, is alloc-MB less that rate over the build's time. gc-cpu-ms is
// the garbage collector's CPU during a build. With PROBES_BENCH_GOGC=10
// (see benchGOGC), live-peak-MB is the most the collections found live,
// builds and the waits between them (the goroutine profile read after a
// build included), above the level before the collector started: the
// memory the collector needs, the runtime tracer's included. A collection
// takes a second and more at a million goroutines, so shorter peaks may
// fall between two: with PROBES_BENCH_STAGES=1, a collection ends each
// stage of a build instead, for the heap live then (live-catch-up-MB,
// live-compose-MB, live-model-MB, above the level before the collector).
// For the ratio with the bare parse, after the last snapshot it takes a
// flight recorder snapshot and times x/exp/trace's bare ReadEvent loop over
// the generations a window of the same length is read from
// (bare-parse-ms): vs-bare is that over the live analysis (catch-up and
// composition); above 1, the live window is ready sooner than a bare parse
// of its trace. parse-vs-bare compares the stream's parser, analysis
// included, with that bare parse per event: at or above 0.8, the target.
// Run it beside
// BenchmarkCollectorSnapshot for the ratio:
//
//	go test -run x -bench 'Collector(Snapshot|Live)/g=100k' -benchtime 5x -timeout 30m ./internal/source/inproc
func BenchmarkCollectorLive(b *testing.B) {
	for _, n := range benchCounts() {
		b.Run(fmt.Sprintf("g=%dk", n/1000), func(b *testing.B) {
			benchLive(b, n, 1e9)
		})
	}
}

// BenchmarkCollectorLiveBudget is BenchmarkCollectorLive within the
// default CPU budget (a quarter of a core): the client asks every second,
// and it times the snapshots built anew, as soon as the budget allows one
// (spacing-ms apart: the last build's cost, the stream's parse since
// included, over the budget). Where parsing the stream as it comes would
// cost more than half the budget (1M goroutines), the catch-up parses what
// the window needs when a snapshot asks.
//
//	PROBES_BENCH_1M=1 go test -run x -bench 'CollectorLiveBudget' -benchtime 5x -timeout 25m ./internal/source/inproc
func BenchmarkCollectorLiveBudget(b *testing.B) {
	for _, n := range benchCounts() {
		b.Run(fmt.Sprintf("g=%dk", n/1000), func(b *testing.B) {
			benchLive(b, n, 0)
		})
	}
}

// benchLive runs BenchmarkCollectorLive with n parked goroutines and a
// CPU budget (0: the default).
func benchLive(b *testing.B, n int, budget float64) {
	gogc := benchGOGC(b)
	c, base := parkedCollector(b, n, CollectorOptions{DumpBudget: 1e-9, CPUBudget: budget})
	// With PROBES_BENCH_STAGES=1, each stage of a build ends with a
	// collection, for the heap live then: the times of such a run count
	// those collections.
	stages := map[string]uint64{}
	if os.Getenv("PROBES_BENCH_STAGES") != "" {
		buildStage = func(stage string) {
			runtime.GC()
			stages[stage] = max(stages[stage], heapObjects())
		}
		b.Cleanup(func() { buildStage = nil })
	}
	const window = 2 * time.Second
	ctx := context.Background()
	// waitFor waits until at, asking every second as a watching client
	// does: the answers share the last snapshot.
	waitFor := func(at time.Time) {
		for {
			d := time.Until(at)
			if d <= 0 {
				return
			}
			time.Sleep(min(d, time.Second))
			if d > time.Second {
				if _, err := c.Snapshot(ctx, window); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// next is when the client gets a snapshot built anew: a second after
	// the last, or later when the budget allows none sooner.
	next := func(last time.Time) time.Time {
		at := last.Add(time.Second)
		if budget == 0 {
			// A goroutine profile read after the last build adds to its
			// cost.
			waitProfileRead(c)
			c.mu.Lock()
			if c.last != nil {
				if t := c.nextBuild(c.last.at, c.buildCost).Add(5 * time.Millisecond); t.After(at) {
					at = t
				}
			}
			c.mu.Unlock()
		}
		return at
	}
	// The stream starts with the first snapshot and serves once it
	// covers a window.
	began := time.Now()
	last := began
	// The last snapshot's time tells a shared one: the snapshot itself,
	// held across the next build, would count in its memory.
	var prevAt time.Time
	for {
		snap, err := c.Snapshot(ctx, window)
		if err != nil {
			b.Fatal(err)
		}
		prevAt = snap.Time
		if c.liveServed {
			break
		}
		if time.Since(began) > 3*time.Minute {
			b.Fatal("the live stream served no snapshot in 3 minutes")
		}
		waitFor(next(last))
		last = time.Now()
	}
	pp := newPauseProbe()
	var longest time.Duration
	var catchUpT, composeT, totalT, cpuT time.Duration
	var alloc, peak uint64
	var served, events, restarts int64
	var longestGC, longestOther, parseT time.Duration
	var ms0, ms1, msIdle runtime.MemStats
	var spacingT, idleT time.Duration
	var idleAlloc uint64
	idleParsed := false // the stream was analysed between builds
	clear(stages)       // the builds before the stream served
	var livePeak *peakProbe
	if gogc {
		livePeak = startPeak(heapLive)
	}
	var gcT time.Duration
	for b.Loop() {
		b.StopTimer()
		at := next(last)
		spacingT += at.Sub(last)
		// What the process allocates while it waits for the build, for
		// the rate at which it allocates without one: the runtime's
		// tracer, the stream's bytes, the shared snapshots and, with the
		// stream parsed as it comes, its analysis.
		runtime.ReadMemStats(&msIdle)
		idle0 := time.Now()
		busyIdle0 := c.live.ParseTime()
		waitFor(at)
		idleT += time.Since(idle0)
		idleParsed = idleParsed || c.live.ParseTime() != busyIdle0
		runtime.GC()
		before := heapObjects()
		runtime.ReadMemStats(&ms0)
		idleAlloc += ms0.TotalAlloc - msIdle.TotalAlloc
		hp := startPeak(heapObjects)
		ev0 := c.liveCost.events
		st0 := c.live.Status()
		pid0, busy0 := st0.Parser, st0.Busy
		// StartTimer and StopTimer stop the world (ReadMemStats: up to
		// 5ms at 1M goroutines): the pauses are counted within them.
		b.StartTimer()
		pp.mark()
		cpu0, gc0 := cpuTime(), gcCPU()
		last = time.Now()

		snap, err := c.Snapshot(ctx, window)

		totalT += time.Since(last)
		cpuT += cpuTime() - cpu0
		gcT += gcCPU() - gc0
		gcP, otherP, _, l, _ := pp.sinceByClass()
		b.StopTimer()
		longest, longestGC, longestOther = max(longest, l), max(longestGC, gcP), max(longestOther, otherP)
		p := hp.end()
		runtime.ReadMemStats(&ms1)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Tasks) < n {
			b.Fatalf("%d tasks, want >= %d", len(snap.Tasks), n)
		}
		if snap.Time.Equal(prevAt) {
			b.Fatal("the snapshot was shared, not built")
		}
		prevAt = snap.Time
		waitProfileRead(c)
		st := c.live.Status()
		restarted := st.Parser != pid0
		if !restarted {
			parseT += st.Busy - busy0
		}
		if restarted {
			restarts++
		}
		if c.liveServed {
			served++
			catchUpT += c.liveCost.catchUp
			composeT += c.liveCost.compose
			if !restarted {
				events += c.liveCost.events - ev0
			}
		}
		alloc += ms1.TotalAlloc - ms0.TotalAlloc
		peak = max(peak, p-min(p, before))
		b.StartTimer()
	}
	b.StopTimer()
	if livePeak != nil {
		// The most the collections found live, builds and the waits
		// between them, beyond what the process held before the
		// collector.
		p := livePeak.end()
		b.ReportMetric(float64(p-min(p, base))/mb, "live-peak-MB")
	}
	for _, stage := range []string{"catch-up", "compose", "model"} {
		if v, ok := stages[stage]; ok {
			b.ReportMetric(float64(v-min(v, base))/mb, "live-"+stage+"-MB")
		}
	}
	kept := int64(liveHeap()) - int64(base)
	writeHeapProfile(b)
	var buf bytes.Buffer
	t0 := time.Now()
	if _, err := c.fr.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	bareEvents, _ := bareParse(b, tracewin.SkipGenerations(&buf, t0.Add(-window)))
	bareT := time.Since(t1)
	N := float64(b.N)
	msOf := func(d time.Duration, n float64) float64 { return d.Seconds() * 1e3 / max(n, 1) }
	b.ReportMetric(float64(served)*100/N, "live-%")
	b.ReportMetric(msOf(catchUpT, float64(served)), "catchup-ms")
	b.ReportMetric(msOf(composeT, float64(served)), "compose-ms")
	b.ReportMetric(msOf(totalT-catchUpT-composeT, N), "model-ms")
	b.ReportMetric(float64(events)/max(float64(served), 1), "events")
	b.ReportMetric(msOf(bareT, 1), "bare-parse-ms")
	if served > 0 {
		b.ReportMetric(msOf(bareT, 1)/msOf(catchUpT+composeT, float64(served)), "vs-bare")
	}
	b.ReportMetric(float64(restarts), "restarts")
	b.ReportMetric(msOf(parseT, N), "parse-ms")
	if parseT > 0 && events > 0 && bareEvents > 0 {
		// The stream's parser, analysis included, against the bare
		// parse, per event.
		b.ReportMetric((float64(bareT)/float64(bareEvents))/(float64(parseT)/float64(events)), "parse-vs-bare")
	}
	b.ReportMetric(float64(longestGC.Microseconds())/1e3, "max-gc-pause-ms")
	b.ReportMetric(float64(longestOther.Microseconds())/1e3, "max-other-pause-ms")
	b.ReportMetric(float64(longest.Microseconds())/1e3, "max-pause-ms")
	b.ReportMetric(msOf(cpuT, N), "cpu-ms")
	b.ReportMetric(msOf(gcT, N), "gc-cpu-ms")
	b.ReportMetric(float64(alloc)/N/mb, "alloc-MB")
	b.ReportMetric(float64(peak)/mb, "peak-MB")
	b.ReportMetric(float64(kept)/mb, "kept-MB")
	if idleT > 0 && !idleParsed {
		// alloc-MB less what the process allocates in as long without a
		// build: at a million goroutines the runtime's tracer alone
		// allocates some 100 MB a second (traceAdvance lists every
		// goroutine at each generation). Only when the stream waits
		// unread between builds, or the analysis would count as idle.
		rate := float64(idleAlloc) / idleT.Seconds()
		b.ReportMetric(rate/mb, "idle-alloc-MB/s")
		b.ReportMetric(max(float64(alloc)-rate*totalT.Seconds(), 0)/N/mb, "own-alloc-MB")
	}
	if budget == 0 {
		b.ReportMetric(msOf(spacingT, N), "spacing-ms")
	}
}
