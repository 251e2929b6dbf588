package tracewin

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A loop that never blocks shows as one long stretch on CPU, however often
// the scheduler preempts it; a loop that yields or blocks after every bit
// of work shows short stretches. This is what tells tokio-console's
// "never yielded" apart in Go, where a 10ms preemption cuts every run.
func TestWindowLongestStretch(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var stop atomic.Bool
	longID, yieldID, sleepID := make(chan int64, 1), make(chan int64, 1), make(chan int64, 1)
	traced, longDone := make(chan struct{}), make(chan struct{})
	go func() { // computes for 300ms, with another goroutine competing for its P
		longID <- curGoID()
		<-traced // all of the loop within the trace, however late the tracer starts
		traceSpin(300 * time.Millisecond)
		close(longDone)
	}()
	go func() { // yields after every bit of work
		yieldID <- curGoID()
		for !stop.Load() {
			traceSpin(50 * time.Microsecond)
			runtime.Gosched()
		}
	}()
	go func() { // blocks after every bit of work
		sleepID <- curGoID()
		for !stop.Load() {
			traceSpin(50 * time.Microsecond)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	long, yielder, sleeper := <-longID, <-yieldID, <-sleepID
	data := recordTrace(t, func() {
		close(traced)
		<-longDone
		time.Sleep(50 * time.Millisecond) // the others go on a while after
	})
	stop.Store(true)
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := w.Goroutines[long]
	if g == nil {
		t.Fatal("the long loop is not in the window")
	}
	t.Logf("long loop: longest run %v, longest stretch %v", time.Duration(g.LongestRun), time.Duration(g.LongestStretch))
	if g.LongestStretch < int64(200*time.Millisecond) {
		t.Errorf("longest stretch of a 300ms loop: %v, want >= 200ms", time.Duration(g.LongestStretch))
	}
	if !trHasFrame(g.StretchStack, "traceSpin") {
		t.Errorf("stack of the longest stretch %v: want it in traceSpin, where it computed", g.StretchStack)
	}
	if g.LongestStretch < g.LongestRun {
		t.Errorf("longest stretch %v below the longest run %v", time.Duration(g.LongestStretch), time.Duration(g.LongestRun))
	}
	for name, id := range map[string]int64{"yielding": yielder, "sleeping": sleeper} {
		g := w.Goroutines[id]
		if g == nil {
			t.Fatalf("the %s loop is not in the window", name)
		}
		// Each yield or block ends a stretch: none is much more than one
		// run (a preemption may split a run in two). A run itself may last
		// long on a loaded machine, whose OS stops the thread while the
		// trace says running: the bound is relative.
		if g.LongestStretch > 2*g.LongestRun+int64(time.Millisecond) {
			t.Errorf("%s loop: longest stretch %v, longest run %v: want every stretch about one run",
				name, time.Duration(g.LongestStretch), time.Duration(g.LongestRun))
		}
	}
}

// traceSpin computes for d without blocking.
func traceSpin(d time.Duration) {
	x := uint64(1)
	for start := time.Now(); time.Since(start) < d; {
		for range 1000 {
			x = x*6364136223846793005 + 1
		}
	}
	sink.Add(x)
}

var sink atomic.Uint64

// InState tells how long a goroutine has been where it is: a goroutine
// blocked before the window shows the whole window, one that blocked 300ms
// before its end about 300ms.
func TestWindowInState(t *testing.T) {
	oldID, newID := make(chan int64, 1), make(chan int64, 1)
	block, block2 := make(chan struct{}), make(chan struct{})
	defer close(block)
	defer close(block2)
	go func() { oldID <- curGoID(); <-block }()
	old := <-oldID
	var blocked time.Time
	var newest int64
	data := recordTrace(t, func() {
		time.Sleep(200 * time.Millisecond)
		go func() { newID <- curGoID(); <-block2 }()
		newest = <-newID
		blocked = time.Now() // it blocks right after sending
		time.Sleep(300 * time.Millisecond)
	})
	// A loaded machine oversleeps: the bound is the time that really passed.
	upper := time.Since(blocked) + 50*time.Millisecond
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, n := w.Goroutines[old], w.Goroutines[newest]
	if g == nil || n == nil {
		t.Fatal("blocked goroutines not in the window")
	}
	if g.InState != g.Total {
		t.Errorf("blocked since before the window: in state %v, want the window %v", time.Duration(g.InState), time.Duration(g.Total))
	}
	if n.InState < int64(250*time.Millisecond) || n.InState > int64(upper) || n.InState >= n.Total {
		t.Errorf("blocked for about 300ms (at most %v): in state %v of %v", upper, time.Duration(n.InState), time.Duration(n.Total))
	}
}

// A lock's site lists every place that woke its waiters: the unlock of a
// holder that sleeps with the lock, as well as the waiters' own unlocks.
func TestSiteWakers(t *testing.T) {
	var mu sync.Mutex
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); wakerHolder(&mu, &stop) }()
	for range 3 {
		go func() { defer wg.Done(); wakerWaiter(&mu, &stop) }()
	}
	data := recordTrace(t, func() { time.Sleep(300 * time.Millisecond) })
	stop.Store(true)
	wg.Wait()
	w, err := AnalyzeTrace(bytes.NewReader(data), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Sites {
		if s.Reason != "sync.Mutex.Lock" || !strings.HasSuffix(s.Location.Func, "wakerWaiter") {
			continue
		}
		var holder, waiter bool
		for _, wk := range s.Wakers {
			holder = holder || strings.HasSuffix(wk.Location.Func, "wakerHolder")
			waiter = waiter || strings.HasSuffix(wk.Location.Func, "wakerWaiter")
		}
		if !holder || !waiter {
			t.Errorf("wakers of the lock %+v: want the holder's and the waiters' unlocks", s.Wakers)
		}
		return
	}
	t.Fatalf("no sync.Mutex.Lock site in wakerWaiter among %d sites", len(w.Sites))
}

func wakerHolder(mu *sync.Mutex, stop *atomic.Bool) {
	for !stop.Load() {
		mu.Lock()
		time.Sleep(20 * time.Millisecond)
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

func wakerWaiter(mu *sync.Mutex, stop *atomic.Bool) {
	for !stop.Load() {
		mu.Lock()
		traceSpin(10 * time.Microsecond)
		mu.Unlock()
	}
}
