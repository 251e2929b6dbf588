package inproc

import (
	"math"
	"runtime"
	"runtime/metrics"

	"github.com/inspectd/inspectd/internal/api"
)

// The runtime/metrics the process view shows. Reading them costs no
// stop-the-world, so they are read on every snapshot.
var processMetrics = []string{
	"/sched/goroutines:goroutines",
	"/sched/goroutines/runnable:goroutines",
	"/sched/goroutines/running:goroutines",
	"/sched/goroutines/waiting:goroutines",
	"/sched/goroutines/not-in-go:goroutines",
	"/sched/threads/total:threads",
	"/sched/gomaxprocs:threads",
	"/sched/latencies:seconds",
	"/sync/mutex/wait/total:seconds",
	"/sched/pauses/total/gc:seconds",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
}

// ReadProcess reads the runtime/metrics of interest of this process.
// Metrics the running Go version lacks are left at zero.
func ReadProcess() api.Process {
	samples := make([]metrics.Sample, len(processMetrics))
	for i, name := range processMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples)
	p := api.Process{GoVersion: runtime.Version(), ByState: map[string]int64{}, Leaked: -1}
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			v := s.Value.Uint64()
			switch s.Name {
			case "/sched/goroutines:goroutines":
				p.Goroutines = int64(v)
			case "/sched/goroutines/runnable:goroutines":
				p.ByState["runnable"] = int64(v)
			case "/sched/goroutines/running:goroutines":
				p.ByState["running"] = int64(v)
			case "/sched/goroutines/waiting:goroutines":
				p.ByState["waiting"] = int64(v)
			case "/sched/goroutines/not-in-go:goroutines":
				p.ByState["syscall"] = int64(v)
			case "/sched/threads/total:threads":
				p.Threads = int64(v)
			case "/sched/gomaxprocs:threads":
				p.GOMAXPROCS = int(v)
			case "/memory/classes/heap/objects:bytes":
				p.HeapBytes = v
			case "/gc/heap/live:bytes":
				p.HeapLiveBytes = v
			}
		case metrics.KindFloat64:
			if s.Name == "/sync/mutex/wait/total:seconds" {
				p.MutexWaitNS = int64(s.Value.Float64() * 1e9)
			}
		case metrics.KindFloat64Histogram:
			h := FromFloat64Histogram(s.Value.Float64Histogram())
			switch s.Name {
			case "/sched/latencies:seconds":
				p.SchedLatency = h
			case "/sched/pauses/total/gc:seconds":
				p.GCPause = h
			}
		}
	}
	if p.GOMAXPROCS == 0 {
		p.GOMAXPROCS = runtime.GOMAXPROCS(0)
	}
	return p
}

// FromFloat64Histogram summarises a runtime/metrics histogram of seconds as
// an api.Histogram: the count and the p50, p90, p99 and maximum, each taken
// as the upper bound of the bucket the quantile falls in (the runtime's
// buckets are fine enough that this errs by at most a bucket's width).
func FromFloat64Histogram(h *metrics.Float64Histogram) *api.Histogram {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	out := &api.Histogram{Count: int64(total)}
	if total == 0 {
		return out
	}
	quantile := func(q float64) int64 {
		rank := uint64(math.Ceil(q * float64(total)))
		var seen uint64
		for i, c := range h.Counts {
			seen += c
			if seen >= rank && c > 0 {
				return bucketUpperNS(h.Buckets, i)
			}
		}
		return bucketUpperNS(h.Buckets, len(h.Counts)-1)
	}
	out.P50NS, out.P90NS, out.P99NS = quantile(0.5), quantile(0.9), quantile(0.99)
	// The counts by power of two too, by each bucket's lower bound: two
	// readings' difference is the tail of the time between them.
	out.Buckets = make([]int64, pow2Buckets)
	for i, c := range h.Counts {
		k := 0
		if lo := h.Buckets[i] * 1e9; lo >= 1 {
			k = min(int(math.Log2(lo)), pow2Buckets-1)
		}
		out.Buckets[k] += int64(c)
	}
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			out.MaxNS = bucketUpperNS(h.Buckets, i)
			break
		}
	}
	return out
}

// pow2Buckets bounds Histogram.Buckets of runtime/metrics histograms: the
// last counts all from 2^39 ns (about 9 minutes) up.
const pow2Buckets = 40

// bucketUpperNS is bucket i's upper bound in nanoseconds; an infinite bound
// falls back to the lower one.
func bucketUpperNS(bounds []float64, i int) int64 {
	hi := bounds[i+1]
	if math.IsInf(hi, 1) {
		hi = bounds[i]
	}
	return int64(hi * 1e9)
}
