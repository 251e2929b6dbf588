package inproc

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestReadProcess(t *testing.T) {
	// Park some goroutines so the waiting count is visibly above them.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 50 {
		wg.Go(func() { <-release })
	}
	defer func() { close(release); wg.Wait() }()
	time.Sleep(10 * time.Millisecond)

	p := ReadProcess()
	if p.GoVersion != runtime.Version() || p.GOMAXPROCS != runtime.GOMAXPROCS(0) {
		t.Errorf("version %q gomaxprocs %d", p.GoVersion, p.GOMAXPROCS)
	}
	if p.Goroutines < 50 || p.ByState["waiting"] < 50 {
		t.Errorf("goroutines %d, waiting %d; want >= 50 each", p.Goroutines, p.ByState["waiting"])
	}
	if p.ByState["running"] < 1 || p.Threads < 1 || p.HeapBytes == 0 {
		t.Errorf("running %d threads %d heap %d", p.ByState["running"], p.Threads, p.HeapBytes)
	}
	if p.SchedLatency == nil || p.SchedLatency.Count == 0 || p.SchedLatency.P99NS < p.SchedLatency.P50NS {
		t.Errorf("scheduler latency histogram: %+v", p.SchedLatency)
	}
	if p.HeapLiveBytes == 0 {
		runtime.GC()
		if p = ReadProcess(); p.HeapLiveBytes == 0 {
			t.Error("no live heap after a GC")
		}
	}
	// The buckets hold every count, for the tail between two readings.
	var n int64
	for _, c := range p.SchedLatency.Buckets {
		n += c
	}
	if n != p.SchedLatency.Count {
		t.Errorf("scheduler latency buckets hold %d of %d counts", n, p.SchedLatency.Count)
	}
	if p.Leaked != -1 {
		t.Errorf("leaked = %d before any leak profile was read, want -1 (unknown)", p.Leaked)
	}
}
