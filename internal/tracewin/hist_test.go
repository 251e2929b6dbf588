package tracewin

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistBuckets(t *testing.T) {
	tests := []struct {
		ns     int64
		bucket int
	}{
		{-5, 0}, {0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}, {1023, 9}, {1024, 10},
		{1 << 42, 42}, {1<<43 - 1, 42}, {1 << 43, 43}, {math.MaxInt64, HistBuckets - 1},
	}
	for _, tt := range tests {
		var h Hist
		h.Add(tt.ns)
		b := h.Buckets()
		if len(b) != tt.bucket+1 || b[tt.bucket] != 1 {
			t.Errorf("Add(%d): buckets %v, want a 1 in bucket %d", tt.ns, b, tt.bucket)
		}
	}
}

func TestHistStats(t *testing.T) {
	var h Hist
	for _, ns := range []int64{300, 100, 200, 1000} {
		h.Add(ns)
	}
	if h.Count() != 4 || h.Sum() != 1600 || h.Min() != 100 || h.Max() != 1000 || h.Mean() != 400 {
		t.Errorf("count %d sum %d min %d max %d mean %d", h.Count(), h.Sum(), h.Min(), h.Max(), h.Mean())
	}
	if h.Quantile(0) != 100 || h.Quantile(1) != 1000 {
		t.Errorf("q0 %d q1 %d, want min and max", h.Quantile(0), h.Quantile(1))
	}
	var nilH *Hist
	if nilH.Count() != 0 || nilH.Quantile(0.5) != 0 || nilH.Max() != 0 || nilH.Buckets() != nil || nilH.Histogram().Count != 0 {
		t.Error("a nil Hist does not read as empty")
	}
	var empty Hist
	if empty.Quantile(0.5) != 0 || empty.Histogram().Buckets != nil {
		t.Error("an empty Hist has quantiles")
	}
}

// Quantiles interpolate within a bucket: within a bucket's width of the
// exact value, and exact for one value repeated.
func TestHistQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dist := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform 1ms-2ms", func() int64 { return 1e6 + rng.Int64N(1e6) }},
		{"exponential 50us", func() int64 { return int64(rng.ExpFloat64() * 50e3) }},
		{"log-uniform 1us-1s", func() int64 { return int64(math.Exp(rng.Float64()*math.Log(1e6)) * 1e3) }},
	} {
		var h Hist
		var xs []int64
		for range 10000 {
			x := dist.gen()
			h.Add(x)
			xs = append(xs, x)
		}
		slices.Sort(xs)
		for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
			exact := xs[int(q*float64(len(xs)))]
			got := h.Quantile(q)
			lo, hi := bucketBounds(histBucket(exact))
			if float64(got) < lo/2 || float64(got) > hi*2 {
				t.Errorf("%s: q%.2f = %d, exact %d (bucket [%.0f, %.0f))", dist.name, q, got, exact, lo, hi)
			}
			if rel := math.Abs(float64(got-exact)) / float64(exact); dist.name == "uniform 1ms-2ms" && rel > 0.05 {
				t.Errorf("%s: q%.2f = %d, exact %d: off by %.1f%%", dist.name, q, got, exact, rel*100)
			}
		}
	}
	var h Hist
	for range 100 {
		h.Add(12345)
	}
	for _, q := range []float64{0.01, 0.5, 0.99} {
		if got := h.Quantile(q); got != 12345 {
			t.Errorf("one value: q%.2f = %d", q, got)
		}
	}
}

func TestHistMerge(t *testing.T) {
	var a, b, all Hist
	for i := range int64(1000) {
		x := i * i
		all.Add(x)
		if i%3 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Merge(&b)
	a.Merge(nil)
	a.Merge(&Hist{})
	if a != all {
		t.Errorf("merged %+v, want %+v", a.Histogram(), all.Histogram())
	}
	var e Hist
	e.Merge(&all)
	if e != all {
		t.Error("merge into empty differs")
	}
}

func TestHistHistogram(t *testing.T) {
	var h Hist
	for _, ns := range []int64{1, 2, 3, 1000, 1000, 1 << 20} {
		h.Add(ns)
	}
	a := h.Histogram()
	if a.Count != 6 || a.MaxNS != 1<<20 || len(a.Buckets) != 21 || a.Buckets[0] != 1 || a.Buckets[1] != 2 || a.Buckets[9] != 2 || a.Buckets[20] != 1 {
		t.Errorf("%+v", a)
	}
	if !(a.P50NS <= a.P90NS && a.P90NS <= a.P99NS && a.P99NS <= a.MaxNS) {
		t.Errorf("quantiles out of order: %+v", a)
	}
}

func TestHistAddAllocs(t *testing.T) {
	var h Hist
	if n := testing.AllocsPerRun(1000, func() { h.Add(12345) }); n != 0 {
		t.Errorf("Add allocates %v times", n)
	}
}

func BenchmarkHistAdd(b *testing.B) {
	var h Hist
	for i := range b.N {
		h.Add(int64(i) * 977)
	}
}
