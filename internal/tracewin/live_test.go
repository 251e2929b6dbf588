package tracewin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	rtrace "runtime/trace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/stack"
	"golang.org/x/exp/trace"
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

// sleeper sleeps 10 ms at a time until stop closes.
func sleeper(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// busyLoad runs goroutines of every kind until stop closes: a 10 ms
// sleeper, a CPU spinner, a contended mutex, a channel ping-pong, short
// lived goroutines created all the time, and parked ones.
func busyLoad(t *testing.T, stop chan struct{}) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() { sleeper(stop) })
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

	lt := NewStream(64 << 20)
	var tee lockedBuffer
	lt.tee = &tee
	if err := lt.Start(); err != nil {
		t.Fatal(err)
	}
	defer lt.Stop()

	for round := range 3 {
		time.Sleep(2500 * time.Millisecond)
		b, err := lt.CatchUp()
		if err != nil {
			t.Fatal(err)
		}
		win, ok := b.LiveWindow(2 * time.Second)
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
		t.Logf("round %d: %v window, %d goroutines, %d sites, %d events", round, d, win.Count(), len(win.Sites), win.Events)
		compareWindows(t, ref, win)
		// The first window starts with the stream, where every goroutine
		// shows up: none is quiet there.
		checkQuiet(t, b, win, round > 0)
	}
}

// checkQuiet checks that the quiet goroutines of live window win, kept
// apart from the others, read as they would have, composed with them.
func checkQuiet(t *testing.T, b *WindowBuilder, win *Window, wantQuiet bool) {
	t.Helper()
	if n := win.quiet.len(); wantQuiet && n < 200 {
		t.Errorf("%d quiet goroutines, want at least the 200 that wait all along", n)
	}
	quietWindows = false
	full, ok := b.LiveWindow(time.Duration(win.Duration()))
	quietWindows = true
	if !ok || full.quiet.len() != 0 || full.Start != win.Start || full.End != win.End {
		t.Fatalf("the window composed again without a quiet set: %v, %d quiet, [%d, %d] against [%d, %d]",
			ok, full.quiet.len(), full.Start, full.End, win.Start, win.End)
	}
	var ids []int64
	for g := range win.All() {
		ids = append(ids, g.ID)
		want := full.Goroutines[g.ID]
		if want == nil {
			t.Errorf("goroutine %d is in the window only with a quiet set", g.ID)
			continue
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("goroutine %d: read as\n%+v\ncomposed as\n%+v", g.ID, *g, *want)
		}
		if got := win.Get(g.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("goroutine %d: got as\n%+v\ncomposed as\n%+v", g.ID, got, *want)
		}
	}
	if len(ids) != full.Count() || !slices.IsSorted(ids) {
		t.Errorf("the window lists %d goroutines (in ID order: %v), composed whole %d", len(ids), slices.IsSorted(ids), full.Count())
	}
	if !reflect.DeepEqual(win.Sites, full.Sites) {
		t.Errorf("sites differ with a quiet set:\n%+v\nwithout:\n%+v", win.Sites, full.Sites)
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
		l := live.Get(id)
		if l == nil {
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
	for l := range live.All() {
		if _, ok := ref.Goroutines[l.ID]; !ok {
			t.Errorf("goroutine %d (%s) in the live window only: total %d exited %v", l.ID, l.StartFunc, l.Total, l.Exited)
		}
	}
	type key struct {
		reason string
		loc    stack.Frame
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

// recordStream records about d of this process' execution trace, as the
// runtime streams it, under a light load. With genEvery, a flight
// recorder's snapshots make the runtime start a generation that often.
func recordStream(t *testing.T, d, genEvery time.Duration) []byte {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sleeper(stop) })
	var buf lockedBuffer
	if err := rtrace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	if genEvery > 0 {
		fr := rtrace.NewFlightRecorder(rtrace.FlightRecorderConfig{})
		if err := fr.Start(); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(genEvery) {
			fr.WriteTo(io.Discard)
		}
		fr.Stop()
	} else {
		time.Sleep(d)
	}
	rtrace.Stop()
	close(stop)
	wg.Wait()
	return buf.b.Bytes()
}

// replay feeds a recorded stream to lt as the runtime would, in chunks.
func replay(lt *Stream, stream []byte) {
	lt.mu.Lock()
	lt.running = true
	lt.mu.Unlock()
	for len(stream) > 0 {
		n := min(len(stream), 3000)
		lt.Write(stream[:n])
		stream = stream[n:]
	}
}

// stopReplay ends a replayed stream's parser.
func stopReplay(lt *Stream) {
	lt.mu.Lock()
	lt.pid++
	lt.cond.Broadcast()
	done := lt.done
	lt.mu.Unlock()
	if done != nil {
		<-done
	}
}

// The stream is cut into generations as it arrives, whatever the chunks,
// and each catch-up analyses only the generations completed since the last.
func TestLiveTraceGenerations(t *testing.T) {
	stream := recordStream(t, 2500*time.Millisecond, 0)
	gens := Generations(stream)
	ends := genEnds(stream)
	if gens < 3 || len(ends) != int(gens) {
		t.Fatalf("%d generations in 2.5s of trace (%d ends)", gens, len(ends))
	}
	lt := NewStream(64 << 20)
	// Held in chunks of an odd size, so that batch headers and varints
	// straddle chunks.
	lt.data = newChunkBuf(4093)
	defer stopReplay(lt)
	// The first generation and some of the second.
	half := 16 + ends[0] + (ends[1]-ends[0])/2
	replay(lt, stream[:half])
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatal(err)
	}
	b.LiveWindow(time.Second) // records the generation in progress
	first := len(b.live.gens)
	events := b.events

	// Released without eagerness, the parser waits for the next catch-up.
	lt.Release(false)
	lt.Write(stream[half : 16+ends[len(ends)-2]])
	time.Sleep(50 * time.Millisecond)
	lt.mu.Lock()
	allowed, parked := lt.allowed, lt.parked
	lt.mu.Unlock()
	if allowed >= int64(ends[len(ends)-2]) || !parked {
		t.Errorf("not eager: the parser was let read up to %d (parked %v), before the generation ending at %d", allowed, parked, ends[len(ends)-2])
	}
	// Eager, it goes on by itself with each generation as it completes.
	lt.Release(true)
	lt.Write(stream[16+ends[len(ends)-2]:])
	deadline := time.Now().Add(10 * time.Second)
	for {
		lt.mu.Lock()
		done := lt.parked && lt.base == int64(ends[len(ends)-1])
		lt.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("eager: the parser did not read the whole stream by itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b, err = lt.CatchUp(); err != nil {
		t.Fatal(err)
	}
	b.LiveWindow(time.Second)
	if len(b.live.gens) != int(gens) || first >= len(b.live.gens) || b.events <= events {
		t.Errorf("%d generations analysed (%d after the first half), %d events (%d), want the stream's %d", len(b.live.gens), first, b.events, events, gens)
	}
	ref, err := AnalyzeTrace(bytes.NewReader(stream), WindowOptions{Sites: true})
	if err != nil {
		t.Fatal(err)
	}
	// AnalyzeTrace also counts the Sync the parser adds at the end.
	if b.events != ref.Events-1 {
		t.Errorf("%d events analysed, AnalyzeTrace %d", b.events, ref.Events)
	}
	if w, ok := b.LiveWindow(time.Hour); ok {
		t.Errorf("a window of an hour from %v of trace", time.Duration(w.Duration()))
	}
	w, ok := b.LiveWindow(time.Second)
	if !ok || w.Count() == 0 {
		t.Fatalf("no window of 1s: %v", ok)
	}
}

// Unread generations past the backlog bound are dropped, oldest first, and
// the analysis starts over from the generations kept.
func TestLiveTraceBacklog(t *testing.T) {
	stream := recordStream(t, 3500*time.Millisecond, 0)
	lt := NewStream(2 << 10)
	defer stopReplay(lt)
	replay(lt, stream)
	lt.mu.Lock()
	held, dropped := lt.data.Len(), lt.dropped
	lt.mu.Unlock()
	if !dropped || held >= len(stream)/2 {
		t.Fatalf("holds %d of %d bytes, dropped %v", held, len(stream), dropped)
	}
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatal(err)
	}
	w, ok := b.LiveWindow(300 * time.Millisecond)
	if !ok || w.Count() == 0 {
		t.Error("no window from the generation kept")
	}
	if len(b.live.gens) != 1 {
		t.Errorf("%d generations analysed after the drop, want the last one", len(b.live.gens))
	}
}

// When more generations wait unread than a window needs and a few more,
// the analysis starts over from the last ones rather than parse them all.
func TestLiveTraceSkipsWhatNoWindowNeeds(t *testing.T) {
	stream := recordStream(t, 2*time.Second, 100*time.Millisecond)
	gens := int(Generations(stream))
	if gens < 10 {
		t.Fatalf("%d generations", gens)
	}
	lt := NewStream(64 << 20)
	defer stopReplay(lt)
	lt.KeepFor(time.Second) // windows of up to a second: 2 generations
	replay(lt, stream)
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatal(err)
	}
	// (The stream ends with two short generations: the runtime starts one
	// as the flight recorder stops, and one as the trace does.)
	if w, ok := b.LiveWindow(time.Microsecond); !ok || w.Count() == 0 {
		t.Errorf("no window from the generations kept")
	}
	if len(b.live.gens) != 2 {
		t.Errorf("%d of %d generations analysed, want the last 2", len(b.live.gens), gens)
	}
}

// An analysis that starts over (the first, or after a drop) starts from
// the generations the window needs, however few more wait.
func TestLiveTraceStartsOverFromWhatTheWindowNeeds(t *testing.T) {
	stream := recordStream(t, time.Second, 100*time.Millisecond)
	ends := genEnds(stream)
	if len(ends) < 5 {
		t.Fatalf("%d generations", len(ends))
	}
	lt := NewStream(64 << 20)
	defer stopReplay(lt)
	lt.KeepFor(time.Second) // windows of up to a second: 2 generations
	replay(lt, stream[:16+ends[4]])
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatal(err)
	}
	b.LiveWindow(time.Microsecond) // records the last generation
	if len(b.live.gens) != 2 {
		t.Errorf("%d of 5 generations analysed from the start, want the last 2", len(b.live.gens))
	}
}

// genStarts returns when each generation of a stream begins in trace time
// (its first Sync), and when the stream ends (the parser's last Sync).
func genStarts(t *testing.T, stream []byte) []trace.Time {
	t.Helper()
	r, err := trace.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	var syncs []trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			return syncs
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind() == trace.EventSync {
			syncs = append(syncs, ev.Time())
		}
	}
}

// timedReplay feeds lt a recorded stream a generation at a time, each end
// written at the time it has in the trace, on lt's clock.
type timedReplay struct {
	lt      *Stream
	stream  []byte
	ends    []int
	starts  []trace.Time
	t0, at  time.Time
	next    int // the next generation to write
	written int // bytes of the stream written
}

func newTimedReplay(t *testing.T, lt *Stream, stream []byte) *timedReplay {
	t.Helper()
	r := &timedReplay{lt: lt, stream: stream, ends: genEnds(stream), starts: genStarts(t, stream), t0: time.Now()}
	if len(r.starts) != len(r.ends)+1 {
		t.Fatalf("%d syncs for %d generations", len(r.starts), len(r.ends))
	}
	lt.clock = func() time.Time { return r.at }
	lt.mu.Lock()
	lt.running = true
	lt.mu.Unlock()
	return r
}

// write writes the next n generations, or all those left if n < 0.
func (r *timedReplay) write(n int) {
	for ; n != 0 && r.next < len(r.ends); n-- {
		if r.written == 0 {
			r.at = r.t0 // the header: the stream's start
			r.lt.Write(r.stream[:16])
			r.written = 16
		}
		r.at = r.t0.Add(time.Duration(r.starts[r.next+1] - r.starts[0]))
		end := 16 + r.ends[r.next]
		r.lt.Write(r.stream[r.written:end])
		r.written, r.next = end, r.next+1
	}
}

func replayTimed(t *testing.T, lt *Stream, stream []byte) {
	t.Helper()
	newTimedReplay(t, lt, stream).write(-1)
}

// An analysis that starts over starts from the fewest last generations
// that cover the window, by when their ends were written: fewer than the
// window's seconds and one when generations last a second or more, more
// when snapshots of the flight recorder cut them short. Its window is made
// of the generations an analysis of the whole stream takes. While the
// parser waits, the stream holds no more than those.
func TestLiveTraceStartsOverFromWhatCoversTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name          string
		record, every time.Duration // the stream recorded, a generation forced every
		window        time.Duration
		fewer, more   bool // than the window's seconds and one
	}{
		{"long generations", 4700 * time.Millisecond, 0, 1400 * time.Millisecond, true, false},
		{"short generations", 2500 * time.Millisecond, 250 * time.Millisecond, 900 * time.Millisecond, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := recordStream(t, tc.record, tc.every)
			windowOf := func(keep time.Duration) (*Window, int) {
				lt := NewStream(64 << 20)
				defer stopReplay(lt)
				lt.KeepFor(keep)
				replayTimed(t, lt, stream)
				lt.mu.Lock()
				held := len(lt.ends)
				lt.mu.Unlock()
				b, err := lt.CatchUp()
				if err != nil {
					t.Fatal(err)
				}
				w, ok := b.LiveWindow(tc.window)
				if !ok {
					t.Fatalf("no window of %v from %d generations", tc.window, len(b.live.gens))
				}
				// The parser waits for the first catch-up: the stream lets go
				// of what no window needs as it comes.
				if len(b.live.gens) != held {
					t.Errorf("%d generations held before the catch-up, %d analysed", held, len(b.live.gens))
				}
				return w, len(b.live.gens)
			}
			w, n := windowOf(tc.window)
			need := int((tc.window+time.Second-1)/time.Second) + 1
			if tc.fewer && n >= need || tc.more && n <= need {
				t.Errorf("%d generations analysed for a window of %v (the window's seconds and one: %d)", n, tc.window, need)
			}
			whole, all := windowOf(time.Hour) // no window covered: every generation
			// The same generations: a builder that starts with a generation
			// dates it from its first event, not from the Sync, and a
			// generation's first batches may be stamped before its Sync
			// (10 ms seen on a loaded machine). Generations here last 250 ms
			// or more, but for those the recorder cut to a few ms.
			if d := w.Start - whole.Start; w.End != whole.End || d < -int64(50*time.Millisecond) || d > int64(50*time.Millisecond) {
				t.Errorf("the window from %d generations spans %v..%v, from all %d %v..%v",
					n, w.Start, w.End, all, whole.Start, whole.End)
			}
		})
	}
}

// A parser told that the next catch-up is further away than the
// generations it would parse with its builder lets the analysis go: the
// parser ends, the stream then holds only the generations that cover the
// window, and the next catch-up starts over from them. Told of a nearer
// one, it keeps its builder.
func TestLiveTraceIdleLetsTheAnalysisGo(t *testing.T) {
	stream := recordStream(t, 4700*time.Millisecond, 0)
	lt := NewStream(64 << 20)
	defer stopReplay(lt)
	const window = 1400 * time.Millisecond // need: 3 generations
	lt.KeepFor(window)
	r := newTimedReplay(t, lt, stream)
	r.write(2)
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatal(err)
	}
	lt.Release(false)

	lt.Idle(6 * time.Second) // need+3 generations come in 6s or more
	lt.mu.Lock()
	kept, done := lt.b == b, lt.done
	lt.mu.Unlock()
	if !kept {
		t.Fatal("the builder was let go for a catch-up 6s away")
	}
	lt.Idle(time.Minute)
	lt.mu.Lock()
	kept = lt.b != nil
	lt.mu.Unlock()
	if kept {
		t.Fatal("the builder is kept for a catch-up a minute away")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the parser did not end")
	}

	r.write(-1)
	lt.mu.Lock()
	held, _ := lt.covering(window)
	n := len(lt.ends)
	lt.mu.Unlock()
	if n != held {
		t.Errorf("%d generations held, %d cover the window", n, held)
	}
	if b, err = lt.CatchUp(); err != nil {
		t.Fatal(err)
	}
	if w, ok := b.LiveWindow(window); !ok || w.Count() == 0 || len(b.live.gens) != held {
		t.Errorf("after the analysis was let go: window %v from %d generations, want %d", ok, len(b.live.gens), held)
	}
}

// A stream that is not a Go 1.26+ trace, or whose framing breaks, is
// refused with an error that says so; one the parser rejects stops the
// analysis with the parser's error, and the next catch-up starts over with
// the generations that follow.
func TestLiveTraceBadStream(t *testing.T) {
	stream := recordStream(t, 2500*time.Millisecond, 0)

	lt := NewStream(64 << 20)
	replay(lt, []byte("go 1.21 trace\x00\x00\x00junk"))
	if _, err := lt.CatchUp(); !errors.Is(err, ErrStreamFormat) || !strings.Contains(err.Error(), "want a Go 1.26 or later trace") {
		t.Errorf("old header: %v", err)
	}

	lt = NewStream(64 << 20)
	bad := bytes.Clone(stream)
	bad[16] = 0x77 // the first batch's type
	replay(lt, bad)
	if _, err := lt.CatchUp(); !errors.Is(err, ErrStreamFormat) || !strings.Contains(err.Error(), "unexpected batch type 119 at offset 0") {
		t.Errorf("bad framing: %v", err)
	}

	// Garbage in the first generation's batches, framing intact.
	lt = NewStream(64 << 20)
	defer stopReplay(lt)
	ends := genEnds(stream)
	bad = bytes.Clone(stream[:16+ends[0]]) // only the first generation
	payload, size := firstBatch(t, bad[16:])
	for i := payload; i < payload+size; i += 3 {
		bad[16+i] = 0xfe
	}
	replay(lt, bad)
	_, err := lt.CatchUp()
	if err == nil || !strings.Contains(err.Error(), "live trace analysis") {
		t.Fatalf("corrupt generation: %v", err)
	}
	lt.Write(stream[16+ends[0]:])
	b, err := lt.CatchUp()
	if err != nil {
		t.Fatalf("after the corrupt generation: %v", err)
	}
	if w, ok := b.LiveWindow(time.Second); !ok || w.Count() == 0 {
		t.Error("no window after the corrupt generation")
	}
	if len(b.live.gens) != len(ends)-1 {
		t.Errorf("%d generations analysed after the corrupt one, want %d", len(b.live.gens), len(ends)-1)
	}
}

// firstBatch returns where the first batch's events start in a stream
// (after the header) and their size.
func firstBatch(t *testing.T, b []byte) (int, int) {
	t.Helper()
	if b[0] != evEventBatch {
		t.Fatalf("the stream starts with a batch of type %d", b[0])
	}
	p := 1
	var size uint64
	for range 4 {
		v, n := binary.Uvarint(b[p:])
		size, p = v, p+n
	}
	return p, int(size)
}

// genEnds returns the offsets (after the header) where a stream's
// generations end.
func genEnds(stream []byte) []int {
	lt := NewStream(1 << 30)
	lt.KeepFor(time.Hour) // windows that need every generation: none is dropped
	lt.running = true
	lt.Write(stream)
	out := make([]int, len(lt.ends))
	for i, e := range lt.ends {
		out[i] = int(e.off)
	}
	return out
}

// The live stream never panics, hangs or fails in its own analysis,
// whatever bytes it is given and however they are cut and held; the
// windows it composes hold together.
func FuzzLiveStream(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "traces", "small.trace"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data, uint16(3000), uint16(0))
	f.Add(data[:len(data)/2], uint16(100), uint16(61))
	f.Add(data[:100], uint16(7), uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, chunk, held uint16) {
		lt := NewStream(1 << 20)
		if held > 0 {
			lt.data = newChunkBuf(int(held)) // the stream held in chunks of held bytes
		}
		defer stopReplay(lt)
		lt.running = true
		n := max(int(chunk), 1)
		for i := 0; i < len(b); i += n {
			lt.Write(b[i:min(i+n, len(b))])
			if i == 0 || i/n%5 == 4 {
				catchUpAndCompose(t, lt)
			}
		}
		catchUpAndCompose(t, lt)
	})
}

func catchUpAndCompose(t *testing.T, lt *Stream) {
	bl, err := lt.CatchUp()
	if errors.Is(err, errAnalysis) {
		t.Fatal(err)
	}
	if err != nil {
		return
	}
	for _, d := range []time.Duration{time.Microsecond, 10 * time.Millisecond, time.Second} {
		if w, ok := bl.LiveWindow(d); ok {
			checkWindow(t, w)
		}
	}
}

// A parser fed as the stream comes stops being fed once the unread bytes
// pass the backlog bound, so that they can be dropped.
func TestLiveTraceEagerBacklog(t *testing.T) {
	stream := recordStream(t, 2500*time.Millisecond, 0)
	ends := genEnds(stream)
	lt := NewStream(2 << 10)
	defer stopReplay(lt)
	replay(lt, stream[:16+ends[0]])
	if _, err := lt.CatchUp(); err != nil {
		t.Fatal(err)
	}
	lt.Release(true)
	lt.Write(stream[16+ends[0]:])
	lt.mu.Lock()
	eager := !lt.eagerUntil.IsZero()
	lt.mu.Unlock()
	if eager {
		t.Error("still eager past the backlog bound")
	}
	if _, err := lt.CatchUp(); err != nil {
		t.Fatal(err)
	}
}

// A parser that never parks again fails the catch-up after catchUpLimit,
// rather than hold it (and every snapshot) forever; the next one starts over.
func TestLiveTraceStalledParser(t *testing.T) {
	defer func(d time.Duration) { catchUpLimit = d }(catchUpLimit)
	catchUpLimit = 200 * time.Millisecond
	lt := NewStream(64 << 20)
	defer stopReplay(lt)
	lt.mu.Lock()
	lt.running = true
	lt.b = newLiveBuilder() // a parser that never reads: none runs
	lt.mu.Unlock()
	began := time.Now()
	_, err := lt.CatchUp()
	if err == nil || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("catch-up with a stalled parser: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the catch-up gave up after %v", d)
	}
	replay(lt, recordStream(t, 1200*time.Millisecond, 0))
	if _, err := lt.CatchUp(); err != nil {
		t.Errorf("the next catch-up: %v", err)
	}
}
