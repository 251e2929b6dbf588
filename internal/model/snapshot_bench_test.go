package model

import (
	"runtime"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/tracewin"
)

// BenchmarkSnapshotParked makes the snapshot of a window of 100,000
// goroutines parked at two places, half of them labelled by the goroutine
// profile, and reports what it allocates per goroutine: a snapshot stays
// alive until the next, and the garbage collector keeps as much again.
func BenchmarkSnapshotParked(b *testing.B) {
	const n = 100_000
	gs := make([]*tracewin.GoStats, n)
	for i := range gs {
		stk := recvAt
		if i%2 == 0 {
			stk = sleepAt
		}
		gs[i] = waiting(int64(i+1), stk, "chan receive")
		gs[i].CreatedBy = spawnAt
	}
	w := window(gs...)
	m := New()
	key := StackKey(sleepAt)
	m.SetProfile(&StackProfile{labels: map[string]map[string]string{key: {"workload": "parked", "role": "a"}},
		counts: map[string]int64{key: n / 2}, total: n / 2}, time.Unix(0, 0))
	end := time.Unix(10, 0)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if s := m.Snapshot(w, end); len(s.Tasks) != n {
			b.Fatalf("%d tasks, want %d", len(s.Tasks), n)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "B/goroutine")
}
