package tracewin

import (
	"bytes"
	"io"
	"os"
	"runtime"
	rtrace "runtime/trace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/exp/trace"
)

// The traces the benchmarks read are recorded once per test binary run.
var (
	pingPongOnce sync.Once
	pingPongData []byte
	parkedOnce   sync.Once
	parkedData   []byte
)

// pingPongTrace is one second of a busy program: 1,000 goroutines in 500
// pairs ping-ponging on unbuffered channels (20 to 40 MB of trace on 2
// cores). With PROBES_BENCH_TRACE=file it is read from the file, or
// recorded there if the file does not exist: the same bytes across runs,
// for comparing changes.
func pingPongTrace(b *testing.B) []byte {
	pingPongOnce.Do(func() {
		file := os.Getenv("PROBES_BENCH_TRACE")
		if file != "" {
			if data, err := os.ReadFile(file); err == nil {
				pingPongData = data
				return
			}
			defer func() {
				if err := os.WriteFile(file, pingPongData, 0o644); err != nil {
					b.Fatal(err)
				}
			}()
		}
		// Each pair stops by itself at the deadline: a goroutine woken
		// behind 500 busy pairs (the tracing one, say) waits long.
		pingPongData = recordTrace(b, func() {
			deadline := time.Now().Add(time.Second)
			var wg sync.WaitGroup
			for range 500 {
				ping, pong := make(chan int), make(chan int)
				wg.Go(func() {
					for time.Now().Before(deadline) {
						ping <- 1
						<-pong
					}
					close(ping)
				})
				wg.Go(func() {
					for v := range ping {
						pong <- v
					}
				})
			}
			wg.Wait()
		})
	})
	return pingPongData
}

const parkedGoroutines = 100_000

// parkedTrace is a FlightRecorder snapshot of a program with 100,000
// goroutines parked on channels since before the recording and a few busy
// ones: the window of a large, mostly idle service.
func parkedTrace(b *testing.B) []byte {
	parkedOnce.Do(func() {
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range parkedGoroutines {
			wg.Go(func() { <-release })
		}
		var stop atomic.Bool
		for range 4 {
			wg.Go(func() {
				for !stop.Load() {
					time.Sleep(time.Millisecond)
				}
			})
		}
		time.Sleep(100 * time.Millisecond)
		fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: time.Second})
		if err := fr.Start(); err != nil {
			b.Fatalf("flight recorder: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
		var buf bytes.Buffer
		if _, err := fr.WriteTo(&buf); err != nil {
			b.Fatalf("flight recorder snapshot: %v", err)
		}
		fr.Stop()
		stop.Store(true)
		close(release)
		wg.Wait()
		parkedData = buf.Bytes()
	})
	return parkedData
}

// readBare is the bare parse: NewReader and ReadEvent until EOF.
func readBare(b *testing.B, data []byte) int64 {
	r, err := trace.NewReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for {
		_, err := r.ReadEvent()
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func reportEvents(b *testing.B, events int64) {
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(events)/float64(b.N), "ns/event")
}

// analyzeCases are the analyses the benchmarks compare with the bare parse:
// with and without sites, parsing on the analysing goroutine or a second one.
var analyzeCases = []struct {
	name string
	opts WindowOptions
}{
	{"stats", WindowOptions{}},
	{"sites", WindowOptions{Sites: true}},
	{"stats-parallel", WindowOptions{Parallel: true}},
	{"sites-parallel", WindowOptions{Sites: true, Parallel: true}},
}

// BenchmarkReadEventBare is the floor: what parsing the ping-pong trace
// costs without any analysis. Compare BenchmarkAnalyzeTrace's MB/s with it.
func BenchmarkReadEventBare(b *testing.B) {
	data := pingPongTrace(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var events int64
	for b.Loop() {
		events = readBare(b, data)
	}
	reportEvents(b, events)
}

// BenchmarkAnalyzeTrace analyses the same bytes as BenchmarkReadEventBare:
// with and without sites, all on one goroutine (the default) or parsing on
// a second one ("-parallel").
func BenchmarkAnalyzeTrace(b *testing.B) {
	for _, bc := range analyzeCases {
		b.Run(bc.name, func(b *testing.B) {
			data := pingPongTrace(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			var w *Window
			for b.Loop() {
				var err error
				w, err = AnalyzeTrace(bytes.NewReader(data), bc.opts)
				if err != nil {
					b.Fatal(err)
				}
			}
			reportEvents(b, w.Events)
			b.ReportMetric(float64(len(w.Goroutines)), "goroutines")
		})
	}
}

// BenchmarkAnalyzeParked analyses a snapshot of 100,000 parked goroutines
// and reports the cost per goroutine, in time and in bytes allocated.
func BenchmarkAnalyzeParked(b *testing.B) {
	data := parkedTrace(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var w *Window
	for b.Loop() {
		var err error
		w, err = AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(len(w.Goroutines))
	if n < parkedGoroutines {
		b.Fatalf("%d goroutines in the window, want >= %d", len(w.Goroutines), parkedGoroutines)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/goroutine")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "B/goroutine")
	b.ReportMetric(n, "goroutines")
	b.ReportMetric(float64(w.Events), "events")
}

// BenchmarkReadEventBareParked is the bare parse of the parked snapshot.
func BenchmarkReadEventBareParked(b *testing.B) {
	data := parkedTrace(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var events int64
	for b.Loop() {
		events = readBare(b, data)
	}
	reportEvents(b, events)
}

// BenchmarkAnalyzeVsBare alternates the bare parse and the analysis of the
// ping-pong trace and reports the analysis' speed relative to the bare
// parse ("speed-ratio", the target is >= 0.8): alternating makes the ratio
// robust to a machine whose load changes.
func BenchmarkAnalyzeVsBare(b *testing.B) {
	for _, bc := range analyzeCases {
		b.Run(bc.name, func(b *testing.B) {
			data := pingPongTrace(b)
			b.SetBytes(int64(len(data)))
			var bare, analyze time.Duration
			for b.Loop() {
				t0 := time.Now()
				readBare(b, data)
				t1 := time.Now()
				if _, err := AnalyzeTrace(bytes.NewReader(data), bc.opts); err != nil {
					b.Fatal(err)
				}
				bare += t1.Sub(t0)
				analyze += time.Since(t1)
			}
			b.ReportMetric(float64(bare)/float64(analyze), "speed-ratio")
		})
	}
}

// BenchmarkReadEventTransitions is the floor of any analysis through the
// public API: the bare parse plus ev.StateTransition() on every state
// transition, which is how goroutine IDs and states are read.
func BenchmarkReadEventTransitions(b *testing.B) {
	data := pingPongTrace(b)
	b.SetBytes(int64(len(data)))
	var bare, floor time.Duration
	var sink int64
	for b.Loop() {
		t0 := time.Now()
		readBare(b, data)
		t1 := time.Now()
		r, err := trace.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := r.ReadEvent()
			if err != nil {
				break
			}
			if ev.Kind() == trace.EventStateTransition {
				st := ev.StateTransition()
				sink += int64(st.Resource.Kind)
			}
		}
		bare += t1.Sub(t0)
		floor += time.Since(t1)
	}
	b.ReportMetric(float64(bare)/float64(floor), "speed-ratio")
	if sink == -1 {
		b.Log(sink)
	}
}

var (
	windowParkedOnce  sync.Once
	windowParkedData  []byte
	windowParkedSince time.Time
)

// windowParkedTrace is what the Collector analyses in a large, mostly idle
// program: a FlightRecorder snapshot of 100,000 goroutines parked on
// channels and a few busy ones, 5s after the recorder started, with a
// snapshot (a WriteTo, so a new generation) every 500ms, and the start of
// a 2s window ending at its end.
func windowParkedTrace(b *testing.B) ([]byte, time.Time) {
	windowParkedOnce.Do(func() {
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range parkedGoroutines {
			wg.Go(func() { <-release })
		}
		var stop atomic.Bool
		for range 4 {
			wg.Go(func() {
				for !stop.Load() {
					time.Sleep(time.Millisecond)
				}
			})
		}
		fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{MinAge: 10 * time.Second, MaxBytes: 64 << 20})
		if err := fr.Start(); err != nil {
			b.Fatalf("flight recorder: %v", err)
		}
		for range 10 {
			time.Sleep(500 * time.Millisecond)
			if _, err := fr.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		var buf bytes.Buffer
		end := time.Now()
		if _, err := fr.WriteTo(&buf); err != nil {
			b.Fatalf("flight recorder snapshot: %v", err)
		}
		fr.Stop()
		stop.Store(true)
		close(release)
		wg.Wait()
		windowParkedData, windowParkedSince = buf.Bytes(), end.Add(-2*time.Second)
	})
	return windowParkedData, windowParkedSince
}

// BenchmarkAnalyzeWindowVsBare is BenchmarkAnalyzeVsBare on the Collector's
// kind of input (windowParkedTrace): the bare parse of the generations
// the window needs, alternating with their analysis as the Collector runs
// it (sites, Since) sequentially and in parallel. It reports the analysis'
// speed relative to the bare parse (speed-ratio) and both per goroutine.
//
//	go test -run x -bench AnalyzeWindowVsBare -benchtime 10x ./internal/tracewin
func BenchmarkAnalyzeWindowVsBare(b *testing.B) {
	data, since := windowParkedTrace(b)
	for _, parallel := range []bool{false, true} {
		name := "sequential"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			var bare, analyze time.Duration
			var w *Window
			for b.Loop() {
				t0 := time.Now()
				r, err := trace.NewReader(newGenSkipper(bytes.NewBuffer(data), since))
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := r.ReadEvent(); err != nil {
						break
					}
				}
				t1 := time.Now()
				opts := WindowOptions{Sites: true, Since: since, Parallel: true}
				opts.Parallel = parallel
				if w, err = AnalyzeTrace(bytes.NewBuffer(data), opts); err != nil {
					b.Fatal(err)
				}
				bare += t1.Sub(t0)
				analyze += time.Since(t1)
			}
			n := float64(len(w.Goroutines)) * float64(b.N)
			b.ReportMetric(float64(bare)/float64(analyze), "speed-ratio")
			b.ReportMetric(float64(bare)/n, "bare-ns/goroutine")
			b.ReportMetric(float64(analyze)/n, "analyze-ns/goroutine")
			b.ReportMetric(float64(w.Events), "events")
			b.ReportMetric(float64(len(data))/mb, "trace-MB")
			b.ReportMetric(float64(Generations(data)), "generations")
		})
	}
}

const mb = 1 << 20

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
