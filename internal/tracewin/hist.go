package tracewin

import (
	"math"
	"math/bits"

	"github.com/inspectd/inspectd/internal/api"
)

// HistBuckets is the number of buckets of a Hist. Bucket i counts durations
// in [2^i, 2^(i+1)) nanoseconds, except that bucket 0 also counts 0 and the
// last bucket counts everything from 2^(HistBuckets-1) ns (about 2.4 hours)
// up.
const HistBuckets = 44

// Hist is a histogram of durations in nanoseconds with power-of-two buckets,
// the shape of api.Histogram. It is a fixed-size value: Add never allocates.
// The zero Hist is empty and ready to use; a nil *Hist reads as empty.
type Hist struct {
	counts        [HistBuckets]int64
	count         int64
	sum, min, max int64
}

// histBucket is the bucket of a duration.
func histBucket(ns int64) int {
	if ns <= 1 {
		return 0
	}
	i := bits.Len64(uint64(ns)) - 1
	if i >= HistBuckets {
		i = HistBuckets - 1
	}
	return i
}

// Add records one duration; negative durations count as 0.
func (h *Hist) Add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[histBucket(ns)]++
	if h.count == 0 || ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	h.count++
	h.sum += ns
}

// Merge adds all of o's durations to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.count == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.count += o.count
	h.sum += o.sum
}

// Count is the number of durations recorded.
func (h *Hist) Count() int64 {
	if h == nil {
		return 0
	}
	return h.count
}

// Sum is the total of the durations recorded.
func (h *Hist) Sum() int64 {
	if h == nil {
		return 0
	}
	return h.sum
}

// Min is the shortest duration recorded, 0 when empty.
func (h *Hist) Min() int64 {
	if h == nil {
		return 0
	}
	return h.min
}

// Max is the longest duration recorded, 0 when empty.
func (h *Hist) Max() int64 {
	if h == nil {
		return 0
	}
	return h.max
}

// Mean is the average duration, 0 when empty.
func (h *Hist) Mean() int64 {
	if h == nil || h.count == 0 {
		return 0
	}
	return h.sum / h.count
}

// Buckets returns the count per bucket (see HistBuckets), without the
// trailing empty buckets; nil when empty.
func (h *Hist) Buckets() []int64 {
	if h == nil || h.count == 0 {
		return nil
	}
	n := HistBuckets
	for n > 0 && h.counts[n-1] == 0 {
		n--
	}
	return append([]int64(nil), h.counts[:n]...)
}

// Quantile estimates the q-quantile (0 <= q <= 1) of the recorded durations:
// it finds the bucket that holds the rank q*Count and interpolates linearly
// inside it, between the bucket's bounds narrowed to [Min, Max]. Quantile(0)
// is Min and Quantile(1) is Max. It returns 0 when empty.
func (h *Hist) Quantile(q float64) int64 {
	if h == nil || h.count == 0 {
		return 0
	}
	if !(q > 0) { // also NaN
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := q * float64(h.count)
	var seen float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		lo, hi := bucketBounds(i)
		lo = max(lo, float64(h.min))
		hi = min(hi, float64(h.max))
		if hi < lo {
			hi = lo
		}
		v := lo + (rank-seen)/float64(c)*(hi-lo)
		return int64(math.Round(v))
	}
	return h.max
}

// bucketBounds returns the range of durations bucket i covers.
func bucketBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 2
	}
	lo = float64(uint64(1) << i)
	if i == HistBuckets-1 {
		return lo, math.Inf(1)
	}
	return lo, 2 * lo
}

// Histogram converts h to the wire form: count, p50, p90, p99, max and the
// bucket counts. A nil or empty Hist gives the zero api.Histogram.
func (h *Hist) Histogram() api.Histogram {
	if h == nil || h.count == 0 {
		return api.Histogram{}
	}
	return api.Histogram{
		Count:   h.count,
		P50NS:   h.Quantile(0.5),
		P90NS:   h.Quantile(0.9),
		P99NS:   h.Quantile(0.99),
		MaxNS:   h.max,
		Buckets: h.Buckets(),
	}
}
