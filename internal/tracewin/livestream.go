package tracewin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/trace"
	"strconv"
	"sync"
	"time"

	xtrace "golang.org/x/exp/trace"
)

// Stream streams this process' execution trace into memory
// (runtime/trace.Start: it runs beside the flight recorder) and keeps a live
// builder (see live.go) analysed up to the last whole generation. The bytes
// wait in memory until a snapshot asks, or, for a few seconds after one
// (Release with eager), until their generation is complete; so the
// analysis costs nothing while nobody watches.
//
// The parser is one goroutine reading the stream through a liveReader,
// which hands it whole generations only when they are allowed, and parks
// it in between. From CatchUp to Release, the builder is the caller's to
// read and nothing more is allowed.
type Stream struct {
	// maxBacklog bounds the bytes kept unread: past it the oldest whole
	// generations are dropped and the analysis starts over.
	maxBacklog int
	tee        io.Writer        // a copy of the stream (tests)
	clock      func() time.Time // when a generation's end is written (tests; nil: time.Now)

	mu      sync.Mutex
	cond    *sync.Cond
	running bool // trace.Start writes to us
	hdr     []byte
	data    chunkBuf // stream bytes not yet handed to the parser
	base    int64    // stream offset (after the header) of the first byte held
	scanned int64    // stream offset up to which data is framed into batches
	ends    []genEnd // the ends of the whole generations past base
	// heldSince is when the first generation held began: the end of the
	// one before, or the stream's start.
	heldSince time.Time
	ferr      error // the stream could not be framed
	dropped   bool  // generations were dropped unread: the analysis must start over

	b       *WindowBuilder
	pid     int   // the running parser's id; a parser with another stops
	allowed int64 // stream offset up to which the parser may read
	hdrOut  int   // header bytes handed to the parser
	parked  bool  // the parser waits for bytes past allowed
	perr    error // the parser stopped on this
	done    chan struct{}
	window  time.Duration // the longest window asked for

	// Until eagerUntil, the parser analyses each generation as soon as it
	// is complete rather than when a snapshot asks, except while a window
	// is composed (composing), which reads the builder.
	eagerUntil time.Time
	composing  bool
	// busy is the time the parser spent analysing (from each wake-up to
	// the next park), for the analysis' cost per second of trace.
	busy     time.Duration
	unparked time.Time
}

// genEnd is where a generation ends in the stream, and when the runtime
// wrote that end.
type genEnd struct {
	off int64
	at  time.Time
}

func NewStream(maxBacklog int) *Stream {
	lt := &Stream{maxBacklog: maxBacklog, data: newChunkBuf(defaultChunk)}
	lt.cond = sync.NewCond(&lt.mu)
	return lt
}

// KeepFor has the builder keep generations for windows of d.
func (lt *Stream) KeepFor(d time.Duration) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.window = max(lt.window, d)
}

// keep is how much of the stream the builder keeps: the longest window
// asked for and 2s more, and at least defaultLiveKeep.
func (lt *Stream) keep() time.Duration {
	return max(defaultLiveKeep, lt.window+2*time.Second)
}

// ErrStreamFormat is wrapped when the stream is not a Go 1.26+ trace, whose
// generations end with a mark: older runtimes' streams cannot be cut into
// generations here.
var ErrStreamFormat = errors.New("live trace stream")

// Start has the runtime stream its trace to lt. It fails while another
// runtime/trace.Start runs.
func (lt *Stream) Start() error {
	lt.mu.Lock()
	if lt.running {
		lt.mu.Unlock()
		return nil
	}
	lt.running = true
	lt.mu.Unlock()
	if err := trace.Start(lt); err != nil {
		lt.mu.Lock()
		lt.running = false
		lt.mu.Unlock()
		return err
	}
	return nil
}

// Stop ends the stream and forgets it; start begins a new one.
func (lt *Stream) Stop() {
	lt.mu.Lock()
	if !lt.running {
		lt.mu.Unlock()
		return
	}
	lt.running = false
	lt.mu.Unlock()
	trace.Stop() // flushes the stream to Write, which now drops it
	lt.mu.Lock()
	lt.pid++
	lt.b, lt.hdr, lt.ends = nil, nil, nil
	lt.data.Reset()
	lt.base, lt.scanned, lt.allowed, lt.heldSince = 0, 0, 0, time.Time{}
	lt.ferr, lt.perr, lt.dropped = nil, nil, false
	lt.eagerUntil, lt.composing, lt.busy, lt.unparked = time.Time{}, false, 0, time.Time{}
	done := lt.done
	lt.done = nil
	lt.cond.Broadcast()
	lt.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Write takes the runtime's stream.
func (lt *Stream) Write(p []byte) (int, error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if !lt.running || lt.ferr != nil {
		return len(p), nil
	}
	if lt.tee != nil {
		lt.tee.Write(p)
	}
	lt.data.Write(p)
	n := len(lt.ends)
	lt.frame()
	if len(lt.ends) > n && !lt.composing && lt.allowed <= lt.base && !time.Now().Before(lt.eagerUntil) {
		// A generation ended while the parser waits for a snapshot: let
		// go now of what the next catch-up would skip.
		lt.skipUnneeded(false)
	}
	if lt.data.Len() > lt.maxBacklog {
		// The parser falls behind the stream: stop feeding it, so that
		// what it does not reach can be dropped.
		lt.eagerUntil = time.Time{}
		if lt.allowed <= lt.base {
			lt.trim()
		}
	}
	lt.feed()
	return len(p), nil
}

// frame reads the batch framing of the new bytes: a header, then batches,
// and after each generation's, an end-of-generation byte.
func (lt *Stream) frame() {
	if lt.hdr == nil {
		const hdrLen = 16
		if lt.data.Len() < hdrLen {
			return
		}
		var hb [hdrLen]byte
		h := hb[:lt.data.Peek(hb[:], 0)]
		v, err := strconv.Atoi(string(bytes.TrimSuffix(bytes.TrimPrefix(h, []byte("go 1.")), []byte(traceHeaderSuffix))))
		if !bytes.HasPrefix(h, []byte("go 1.")) || !bytes.HasSuffix(h, []byte(traceHeaderSuffix)) || err != nil || v < 26 {
			lt.ferr = fmt.Errorf("%w: header %q: want a Go 1.26 or later trace", ErrStreamFormat, h)
			return
		}
		lt.hdr = bytes.Clone(h)
		lt.data.Discard(hdrLen)
		lt.heldSince = lt.now()
	}
	for {
		p := int(lt.scanned - lt.base)
		if p >= lt.data.Len() {
			return
		}
		typ := lt.data.At(p)
		q := p + 1
		switch typ {
		case evEndOfGeneration:
			lt.scanned++
			lt.ends = append(lt.ends, genEnd{off: lt.scanned, at: lt.now()})
			continue
		case evEventBatch:
		case evExperimentalBatch:
			q++
		default:
			lt.ferr = fmt.Errorf("%w: unexpected batch type %d at offset %d", ErrStreamFormat, typ, lt.scanned)
			return
		}
		var size uint64
		for range 4 { // gen, M, timestamp, size
			if q >= lt.data.Len() {
				return
			}
			v, n := lt.data.Uvarint(q)
			if n == 0 {
				return // not all written yet
			}
			if n < 0 {
				lt.ferr = fmt.Errorf("%w: bad batch header at offset %d", ErrStreamFormat, lt.scanned)
				return
			}
			size, q = v, q+n
		}
		if size > maxBatchSize {
			lt.ferr = fmt.Errorf("%w: batch of %d bytes at offset %d", ErrStreamFormat, size, lt.scanned)
			return
		}
		if uint64(lt.data.Len()-q) < size {
			return
		}
		lt.scanned = lt.base + int64(q) + int64(size)
	}
}

// feed, in eager mode, lets the parser analyse every whole generation
// now, unless a window is being composed or the analysis must start over
// (CatchUp does that).
func (lt *Stream) feed() {
	if lt.composing || lt.startsOver() || len(lt.ends) == 0 || !time.Now().Before(lt.eagerUntil) {
		return
	}
	if end := lt.ends[len(lt.ends)-1].off; end > lt.allowed {
		lt.allowed = end
		lt.cond.Broadcast()
	}
}

// trim drops the oldest whole generations, leaving the fewest that keep
// the backlog under half its bound, and at least the last whole one.
func (lt *Stream) trim() {
	n := len(lt.ends)
	if n < 2 {
		return
	}
	j := 0
	for j < n-2 && lt.scanned-lt.ends[j].off > int64(lt.maxBacklog/2) {
		j++
	}
	lt.skipTo(j + 1)
}

// skipTo drops the first k unread generations: the analysis must start
// over.
func (lt *Stream) skipTo(k int) {
	cut := lt.ends[k-1].off
	lt.data.Discard(int(cut - lt.base))
	lt.base, lt.allowed = cut, cut
	lt.dropEnds()
	lt.dropped = true
}

func (lt *Stream) now() time.Time {
	if lt.clock != nil {
		return lt.clock()
	}
	return time.Now()
}

// dropEnds forgets the ends of the generations no longer held.
func (lt *Stream) dropEnds() {
	k := 0
	for k < len(lt.ends) && lt.ends[k].off <= lt.base {
		k++
	}
	if k > 0 {
		lt.heldSince = lt.ends[k-1].at
		lt.ends = lt.ends[k:]
	}
}

// skipUnneeded drops the whole generations unread that no window will be
// composed from. Generations pile up unread while snapshots are far apart
// (the CPU budget spaces them by their cost over the budget, 4x it by
// default: at a million goroutines, 15s and more). Past a few more than a
// window needs, starting over from those that cover it costs less than
// parsing them all; an analysis that starts over anyway starts from those.
// Where no span covers the window (a stream younger than the window, or
// generations written all at once), a catch-up takes the window's length in
// seconds, rounded up, and one more (the runtime begins a generation a
// second, or later, and the window may start in the one before); otherwise
// it waits for the generations to come.
func (lt *Stream) skipUnneeded(catchUp bool) {
	over := lt.startsOver()
	window, need := lt.need()
	k, ok := lt.covering(window)
	if !ok {
		if !catchUp {
			return
		}
		k = need
	}
	if n := len(lt.ends); n > k && (over || n > need+3) {
		lt.skipTo(n - k)
	}
}

// startsOver reports whether the next catch-up starts a new analysis: none
// runs, generations were dropped unread, or the parser failed.
func (lt *Stream) startsOver() bool {
	return lt.b == nil || lt.dropped || lt.perr != nil
}

// need is the window the next catch-up prepares for, and its length in
// seconds, rounded up, and one more.
func (lt *Stream) need() (time.Duration, int) {
	window := lt.window
	if window == 0 { // none asked yet: as long as kept
		window = lt.keep() - 2*time.Second
	}
	return window, int((window+time.Second-1)/time.Second) + 1
}

// Idle tells lt that the next catch-up comes no sooner than d from now
// (the CPU budget spaces builds out). When the parser waits that long, more
// generations come than a catch-up parses with the builder it has, so the
// analysis will start over anyway: its builder and x/exp/trace's reader go
// now (some 250 MB at a million goroutines), and with them all but the
// generations that cover the window.
func (lt *Stream) Idle(d time.Duration) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.b == nil || lt.composing || time.Now().Before(lt.eagerUntil) {
		return
	}
	// The runtime begins at most a generation a second, besides those a
	// flight recorder snapshot forces; a wrong guess costs a restart where
	// the builder could have gone on.
	if _, need := lt.need(); d <= time.Duration(need+3)*time.Second {
		return
	}
	lt.pid++ // the parser's next read ends it
	lt.b = nil
	lt.cond.Broadcast()
	lt.skipUnneeded(false)
}

// covering is the fewest last whole generations whose span, by when the
// runtime wrote their ends, is d or more; false when all of them span less.
func (lt *Stream) covering(d time.Duration) (int, bool) {
	n := len(lt.ends)
	for k := 1; k <= n; k++ {
		begin := lt.heldSince
		if k < n {
			begin = lt.ends[n-1-k].at
		}
		if !begin.IsZero() && lt.ends[n-1].at.Sub(begin) >= d {
			return k, true
		}
	}
	return 0, false
}

// CatchUp has the parser analyse every whole generation written so far and
// returns its builder, parked: the caller may read it until the next call.
func (lt *Stream) CatchUp() (*WindowBuilder, error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if !lt.running {
		return nil, errors.New("live trace stream not running")
	}
	if lt.ferr != nil {
		return nil, lt.ferr
	}
	over := lt.startsOver()
	lt.skipUnneeded(true)
	if over || lt.dropped {
		lt.restart()
	}
	if n := len(lt.ends); n > 0 {
		lt.allowed = max(lt.allowed, lt.ends[n-1].off)
	}
	lt.cond.Broadcast()
	// A parser that never parks again must not hold every snapshot: past
	// catchUpLimit, it is abandoned and the snapshot reads the flight
	// recorder; the next catch-up starts over.
	deadline := time.Now().Add(catchUpLimit)
	wake := time.AfterFunc(catchUpLimit, func() {
		lt.mu.Lock()
		lt.cond.Broadcast()
		lt.mu.Unlock()
	})
	defer wake.Stop()
	for (lt.allowed > lt.base || !lt.parked) && lt.perr == nil {
		if !time.Now().Before(deadline) {
			lt.perr = fmt.Errorf("stalled: the parser did not reach the end of the stream in %v", catchUpLimit)
			lt.pid++      // abandoned: its next read ends it
			lt.done = nil // and stop does not wait for it
			break
		}
		lt.cond.Wait()
	}
	if lt.perr != nil {
		return nil, fmt.Errorf("live trace analysis: %w", lt.perr)
	}
	lt.b.live.keep = max(lt.b.live.keep, xtrace.Time(lt.keep()))
	lt.composing = true
	return lt.b, nil
}

// Release ends what CatchUp began: the builder is the parser's again. With
// eager, the parser goes on with each generation as it completes, for
// eagerFor: a client that watches asks again before that.
func (lt *Stream) Release(eager bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.composing = false
	lt.eagerUntil = time.Time{}
	if eager {
		lt.eagerUntil = time.Now().Add(eagerFor)
	}
	lt.feed()
}

// eagerFor is how long after a snapshot the stream is analysed as it
// comes: longer than a watching client's interval, short enough that the
// analysis stops soon after the last client left.
const eagerFor = 5 * time.Second

// ParseTime is the parser's time analysing since the stream (or the
// analysis) started over.
func (lt *Stream) ParseTime() time.Duration {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.busy
}

// Cost is the parser's analysis time per second of trace it analysed, of
// builder b, which the caller holds (between CatchUp and release); 0 until
// it has analysed a generation.
func (lt *Stream) Cost(b *WindowBuilder) float64 {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if b.live.analysed <= 0 {
		return 0
	}
	return float64(lt.busy) / float64(b.live.analysed)
}

// catchUpLimit bounds a catch-up: at a million goroutines, the most a
// catch-up parses (a window's generations and 3 more) takes some 8s on a
// slow machine.
var catchUpLimit = 30 * time.Second

// restart starts a parser on a new builder, from the next generation.
func (lt *Stream) restart() {
	lt.pid++
	if lt.allowed > lt.base {
		// The last parser stopped within what it was allowed: go on after it,
		// where a generation ends.
		lt.data.Discard(int(lt.allowed - lt.base))
		lt.base = lt.allowed
		lt.dropEnds()
	}
	lt.allowed = lt.base
	lt.perr, lt.dropped, lt.parked, lt.hdrOut = nil, false, false, 0
	lt.busy, lt.unparked = 0, time.Time{}
	lt.b = newLiveBuilder()
	done := make(chan struct{})
	lt.done = done
	go lt.parse(lt.pid, lt.b, done)
}

// parse runs a parser until its stream ends or fails.
func (lt *Stream) parse(id int, b *WindowBuilder, done chan struct{}) {
	defer close(done)
	inEvent := false
	err := func() (err error) {
		defer func() {
			// The parser panics on some corrupt input.
			if p := recover(); p != nil {
				if inEvent {
					err = fmt.Errorf("event %d: %w: %v", b.events, errAnalysis, p)
				} else {
					err = fmt.Errorf("parser panic: %v", p)
				}
			}
		}()
		tr, err := xtrace.NewReader(&liveReader{lt: lt, id: id})
		if err != nil {
			return err
		}
		for {
			ev, err := tr.ReadEvent()
			if err != nil {
				return err
			}
			inEvent = true
			b.Event(&ev)
			inEvent = false
		}
	}()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.pid == id {
		lt.perr = err
		lt.cond.Broadcast()
	}
}

// liveReader is a parser's view of the stream.
type liveReader struct {
	lt *Stream
	id int
}

func (r *liveReader) Read(p []byte) (int, error) {
	lt := r.lt
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for {
		if r.id != lt.pid {
			return 0, io.EOF
		}
		if lt.hdrOut < len(lt.hdr) {
			n := copy(p, lt.hdr[lt.hdrOut:])
			lt.hdrOut += n
			return n, nil
		}
		if lt.allowed > lt.base {
			n := lt.data.Read(p[:min(int64(len(p)), lt.allowed-lt.base)])
			lt.base += int64(n)
			lt.dropEnds()
			return n, nil
		}
		if !lt.unparked.IsZero() {
			lt.busy += time.Since(lt.unparked)
		}
		lt.parked = true
		lt.cond.Broadcast()
		lt.cond.Wait()
		if r.id != lt.pid {
			// A parser started since: parked is its to say.
			return 0, io.EOF
		}
		lt.parked = false
		lt.unparked = time.Now()
	}
}

// Events is the number of events the builder analysed.
func (b *WindowBuilder) Events() int64 { return b.events }

// StreamStatus is what a Stream is doing, for tests and benchmarks.
type StreamStatus struct {
	Running bool          // the runtime streams its trace to it
	Kept    bool          // a builder is kept: the analysis goes on
	Parser  int           // which parser runs: it changes when the analysis starts over
	Busy    time.Duration // the parser's time analysing since it started
}

// Status says what lt is doing.
func (lt *Stream) Status() StreamStatus {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return StreamStatus{Running: lt.running, Kept: lt.b != nil, Parser: lt.pid, Busy: lt.busy}
}
