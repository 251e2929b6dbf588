//go:build linux

package target

import (
	"context"
	"net/http"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync/atomic"
	"time"
)

// counters count operations, one cache line per goroutine that counts, so
// that counting does not contend.
type counters struct {
	c []paddedCounter
}

type paddedCounter struct {
	n atomic.Int64
	_ [56]byte
}

func newCounters(n int) *counters { return &counters{c: make([]paddedCounter, n)} }

func (c *counters) at(i int) *atomic.Int64 { return &c.c[i%len(c.c)].n }

func (c *counters) sum() int64 {
	var s int64
	for i := range c.c {
		s += c.c[i].n.Load()
	}
	return s
}

// sink keeps Spin's result alive.
var sink atomic.Uint64

// Spin burns CPU: n rounds of xorshift, about a nanosecond each. The driver
// calibrates once (Calibrate) and gives every target of a run the same n.
func Spin(n int) uint64 {
	x := uint64(88172645463325252) + uint64(n)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// Calibrate returns how many Spin iterations this machine runs a second:
// the fastest of several tries, so the least disturbed by other work.
func Calibrate() float64 {
	const n = 1 << 21
	best := time.Duration(1<<63 - 1)
	for range 40 {
		t := time.Now()
		sink.Add(Spin(n) & 1)
		best = min(best, time.Since(t))
	}
	return n / best.Seconds()
}

// pingpong runs pairs of goroutines bouncing a value over unbuffered
// channels: each round trip (one operation) is two goroutine switches.
func pingpong(pairs int, ops *counters) {
	for i := range pairs {
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
		}()
		go func(n *atomic.Int64) {
			v := 0
			for {
				ping <- v
				v = <-pong
				n.Add(1)
			}
		}(ops.at(i))
	}
}

// pool runs GOMAXPROCS workers taking tasks of iters Spin rounds from a
// buffered channel that one producer fills; a task done is an operation.
func pool(iters int, ops *counters) {
	tasks := make(chan int, 256)
	go func() {
		for i := 0; ; i++ {
			tasks <- i
		}
	}()
	for w := range runtime.GOMAXPROCS(0) {
		go func(n *atomic.Int64) {
			for t := range tasks {
				if Spin(iters+t&1) == 0 {
					sink.Add(1)
				}
				n.Add(1)
			}
		}(ops.at(w))
	}
}

// workHandler serves GET /work: iters Spin rounds, then a short answer; a
// request served is an operation.
func workHandler(iters int, ops *counters) http.Handler {
	mux := http.NewServeMux()
	n := ops.at(0)
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		x := Spin(iters)
		n.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte{'0' + byte(x%10), '\n'})
	})
	return mux
}

// park starts n goroutines that wait on channels nobody sends on: a quarter
// labelled {workload: parked, role: a}, a quarter {workload: parked, role: b}
// (with pprof.Do, as a program labels its work), half without labels. It
// returns once they all wait.
func park(n int) {
	a, b, plain := make(chan struct{}), make(chan struct{}), make(chan struct{})
	wait := func(c chan struct{}, k int) {
		for range k {
			go func() { <-c }()
		}
	}
	labelled := n / 2
	pprof.Do(context.Background(), pprof.Labels("workload", "parked", "role", "a"), func(context.Context) {
		wait(a, labelled/2)
	})
	pprof.Do(context.Background(), pprof.Labels("workload", "parked", "role", "b"), func(context.Context) {
		wait(b, labelled-labelled/2)
	})
	wait(plain, n-labelled)
	// Return once they wait (or a while later: a few may be running on).
	waiting := []metrics.Sample{{Name: "/sched/goroutines/waiting:goroutines"}}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		metrics.Read(waiting)
		if waiting[0].Value.Kind() != metrics.KindUint64 || waiting[0].Value.Uint64() >= uint64(n) {
			return
		}
	}
}
