package probes

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the runtime's trace writer may write to
// while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// busyLoad runs goroutines of every kind until stop closes: a 10 ms
// sleeper, a CPU spinner, a contended mutex, a channel ping-pong, short
// lived goroutines created all the time, and parked ones.
func busyLoad(t *testing.T, stop chan struct{}) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	wg.Go(func() {
		n := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range 100000 {
				n += i
			}
			if n%7 == 0 {
				runtime.Gosched()
			}
		}
	})
	var mu sync.Mutex
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				time.Sleep(time.Millisecond)
				mu.Unlock()
			}
		})
	}
	ping, pong := make(chan int), make(chan int)
	wg.Go(func() {
		for i := 0; ; i++ {
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
			select {
			case <-stop:
				return
			case ping <- 1:
			}
			<-pong
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case v := <-ping:
				pong <- v
			}
		}
	})
	wg.Go(func() {
		var inner sync.WaitGroup
		defer inner.Wait()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			inner.Go(func() { time.Sleep(20 * time.Millisecond) })
		}
	})
	for range 200 {
		wg.Go(func() { <-stop })
	}
	return &wg
}

// A live window equals AnalyzeTrace's window over the same span of the same
// stream, goroutine by goroutine and site by site, though it was composed
// from generations analysed once each.
func TestLiveWindowMatchesAnalyzeTrace(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps for the load")
	}
	stop := make(chan struct{})
	wg := busyLoad(t, stop)
	defer wg.Wait()
	defer close(stop)

	lt := newLiveTrace(64 << 20)
	var tee lockedBuffer
	lt.tee = &tee
	if err := lt.start(); err != nil {
		t.Fatal(err)
	}
	defer lt.stop()

	for round := range 3 {
		time.Sleep(2500 * time.Millisecond)
		b, err := lt.catchUp()
		if err != nil {
			t.Fatal(err)
		}
		win, ok := b.liveWindow(2 * time.Second)
		if !ok {
			t.Fatalf("round %d: no live window after %v", round, time.Duration(round+1)*2500*time.Millisecond)
		}
		lt.mu.Lock()
		upto := int(lt.base) + len(lt.hdr)
		lt.mu.Unlock()
		tee.mu.Lock()
		stream := bytes.Clone(tee.b.Bytes()[:upto])
		tee.mu.Unlock()

		if win.WallStart.IsZero() {
			t.Fatal("live window has no wall clock")
		}
		ref, err := AnalyzeTrace(bytes.NewReader(stream), WindowOptions{Sites: true, Since: win.WallStart, For: time.Duration(win.Duration())})
		if err != nil {
			t.Fatal(err)
		}
		d := time.Duration(win.Duration())
		if d < 1400*time.Millisecond || d > 2600*time.Millisecond {
			t.Errorf("round %d: live window of %v, want about 2s", round, d)
		}
		t.Logf("round %d: %v window, %d goroutines, %d sites, %d events", round, d, len(win.Goroutines), len(win.Sites), win.Events)
		compareWindows(t, ref, win)
	}
}

// compareWindows checks that a live window has the numbers of the reference
// window, within the microseconds by which their starts may differ (the
// reference places the start through a clock snapshot).
func compareWindows(t *testing.T, ref, live *Window) {
	t.Helper()
	const tol = int64(50 * time.Microsecond)
	near := func(a, b int64) bool { return a-b <= tol && b-a <= tol }
	if !near(ref.Start, live.Start) || !near(ref.End, live.End) {
		t.Errorf("window [%d, %d], reference [%d, %d]", live.Start, live.End, ref.Start, ref.End)
	}
	bad := 0
	for id, r := range ref.Goroutines {
		l, ok := live.Goroutines[id]
		if !ok {
			t.Errorf("goroutine %d (%s) missing from the live window", id, r.StartFunc)
			bad++
			continue
		}
		type num struct {
			name string
			r, l int64
		}
		for _, n := range []num{{"total", r.Total, l.Total}, {"busy", r.Busy, l.Busy}, {"sched", r.Sched, l.Sched},
			{"idle", r.Idle, l.Idle}, {"syscall", r.Syscall, l.Syscall}, {"longest run", r.LongestRun, l.LongestRun},
			{"in state", r.InState, l.InState}} {
			if !near(n.r, n.l) {
				t.Errorf("goroutine %d (%s): %s %d, reference %d", id, r.StartFunc, n.name, n.l, n.r)
				bad++
			}
		}
		if r.Polls != l.Polls || r.State != l.State || r.WaitReason != l.WaitReason || r.Exited != l.Exited {
			t.Errorf("goroutine %d (%s): polls %d state %v %q exited %v, reference %d %v %q %v", id, r.StartFunc,
				l.Polls, l.State, l.WaitReason, l.Exited, r.Polls, r.State, r.WaitReason, r.Exited)
			bad++
		}
		if r.RunTimes.Count() != l.RunTimes.Count() || r.SchedDelays.Count() != l.SchedDelays.Count() {
			t.Errorf("goroutine %d (%s): %d runs %d delays, reference %d %d", id, r.StartFunc,
				l.RunTimes.Count(), l.SchedDelays.Count(), r.RunTimes.Count(), r.SchedDelays.Count())
			bad++
		}
		for _, rr := range r.IdleByReason {
			if !near(rr.NS, l.IdleFor(rr.Reason)) {
				t.Errorf("goroutine %d (%s): idle %q %d, reference %d", id, r.StartFunc, rr.Reason, l.IdleFor(rr.Reason), rr.NS)
				bad++
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	for id, l := range live.Goroutines {
		if _, ok := ref.Goroutines[id]; !ok {
			t.Errorf("goroutine %d (%s) in the live window only: total %d exited %v", id, l.StartFunc, l.Total, l.Exited)
		}
	}
	type key struct {
		reason string
		loc    Frame
	}
	sites := map[key]*SiteStats{}
	for _, s := range live.Sites {
		sites[key{s.Reason, s.Location}] = s
	}
	for _, r := range ref.Sites {
		l := sites[key{r.Reason, r.Location}]
		if l == nil {
			t.Errorf("site %s at %s:%d missing from the live window", r.Reason, r.Location.Func, r.Location.Line)
			continue
		}
		if r.Waiting != l.Waiting || r.Wakeups != l.Wakeups || !near(r.WaitNS/int64(max(r.Waiting, 1)), l.WaitNS/int64(max(r.Waiting, 1))) {
			t.Errorf("site %s at %s:%d: waiting %d wakeups %d wait %d, reference %d %d %d", r.Reason, r.Location.Func, r.Location.Line,
				l.Waiting, l.Wakeups, l.WaitNS, r.Waiting, r.Wakeups, r.WaitNS)
		}
		if len(r.Wakers) > 0 && (len(l.Wakers) == 0 || l.Wakers[0].Location != r.Wakers[0].Location) {
			t.Errorf("site %s at %s:%d: wakers %v, reference %v", r.Reason, r.Location.Func, r.Location.Line, l.Wakers, r.Wakers)
		}
	}
}
