package tracewin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strconv"
	"time"
)

// Leaving out the generations before the window.
//
// A trace is a header and then generations, each a self-contained run of
// batches (its own string and stack tables, a sync batch with a clock
// snapshot taken as it began, and a status event for every goroutine) that
// ends, since Go 1.26, with an end-of-generation byte. A flight recorder
// snapshot holds every generation of the last MinAge (10s by default) while
// a window usually wants the last few seconds, and the parser spends most of
// its time on the status events every generation repeats. genSkipper hands
// the parser the header and the generations from the one before the last
// that began at or before WindowOptions.Since. The status events give every
// goroutine's state at the window's start, as the earlier generations would
// have; the generation before tells why the goroutines waiting then wait: a
// goroutine woken before it ran in a generation has a status event without
// a stack, but it blocked in the generation before, or has a status event
// with its stack there. What is lost is the creation (CreatedBy, ParentID)
// of goroutines created before those two generations. It reads the batch
// framing only (a few bytes per batch of up to 64 KB). Anything it does not
// understand (older formats, a cut or corrupt trace) it passes through
// unchanged for the parser to judge.

// Event types of the trace format (golang.org/x/exp/trace/internal/tracev2).
const (
	evEventBatch        = 1
	evFrequency         = 8
	evExperimentalBatch = 49
	evSync              = 50
	evClockSnapshot     = 51
	evEndOfGeneration   = 52
	maxBatchSize        = 64 << 10
)

type genSkipper struct {
	src     *bufio.Reader
	since   time.Time
	started bool
	out     [][]byte // ready to hand out, in order
	pass    bool     // once out is drained, the rest comes from src unchanged
	err     error    // src's error, returned once out is drained
	hdr     []byte
	pending []byte // the last whole generation that began at or before since
	prev    []byte // and the one before it
	cur     []byte // the generation being read
	curWall time.Time
}

// newGenSkipper returns a reader of r's trace without the generations that
// ended before since; with a zero since, r itself. A *bytes.Buffer is cut
// in place, without copying.
func newGenSkipper(r io.Reader, since time.Time) io.Reader {
	if since.IsZero() {
		return r
	}
	if bb, ok := r.(*bytes.Buffer); ok {
		data := bb.Bytes()
		bb.Next(len(data)) // read, as far as the buffer's owner is concerned
		if off := skipInPlace(data, since); off > 16 {
			return io.MultiReader(bytes.NewReader(data[:16]), bytes.NewReader(data[off:]))
		}
		return bytes.NewReader(data)
	}
	return &genSkipper{src: bufio.NewReaderSize(r, 64<<10), since: since}
}

// skipInPlace is genSkipper on a whole trace in memory: it returns the
// offset of the first generation to keep, or 0 to keep everything.
func skipInPlace(data []byte, since time.Time) int {
	const hdrLen = 16
	if len(data) < hdrLen || !bytes.HasPrefix(data, []byte("go 1.")) || !bytes.HasSuffix(data[:hdrLen], []byte(traceHeaderSuffix)) {
		return 0
	}
	if v, err := strconv.Atoi(string(data[len("go 1.") : hdrLen-len(traceHeaderSuffix)])); err != nil || v < 26 {
		return 0
	}
	// prev and kept are the offsets of the two generations kept so far,
	// cur that of the one being read.
	prev, kept, cur := hdrLen, hdrLen, hdrLen
	var wall time.Time
	for p := hdrLen; p < len(data); {
		typ := data[p]
		p++
		switch typ {
		case evEndOfGeneration:
			if wall.IsZero() || wall.After(since) {
				return prev
			}
			prev, kept, cur = kept, cur, p
			wall = time.Time{}
			continue
		case evEventBatch:
		case evExperimentalBatch:
			p++
		default:
			return prev
		}
		var size uint64
		for range 4 { // gen, M, timestamp, size
			if p >= len(data) {
				return prev
			}
			v, n := binary.Uvarint(data[p:])
			if n <= 0 {
				return prev
			}
			size, p = v, p+n
		}
		if size > maxBatchSize || uint64(len(data)-p) < size {
			return prev
		}
		if typ == evEventBatch && size > 0 && data[p] == evSync {
			if w, ok := syncWall(data[p+1 : p+int(size)]); ok {
				wall = w
			}
		}
		p += int(size)
	}
	return prev
}

func (s *genSkipper) Read(p []byte) (int, error) {
	for len(s.out) > 0 && len(s.out[0]) == 0 {
		s.out = s.out[1:]
	}
	if len(s.out) > 0 {
		n := copy(p, s.out[0])
		s.out[0] = s.out[0][n:]
		return n, nil
	}
	if s.pass {
		if s.err != nil {
			return 0, s.err
		}
		return s.src.Read(p)
	}
	for !s.pass {
		s.step()
	}
	return s.Read(p)
}

const traceHeaderSuffix = " trace\x00\x00\x00"

// step reads the header or one batch, and decides what to hand out.
func (s *genSkipper) step() {
	if !s.started {
		// The header: "go 1.26 trace\x00\x00\x00". Older formats have no
		// end-of-generation mark: pass them through.
		s.started = true
		hdr := make([]byte, 16)
		n, err := io.ReadFull(s.src, hdr)
		s.hdr = hdr[:n]
		if err != nil || !bytes.HasPrefix(hdr, []byte("go 1.")) || !bytes.HasSuffix(hdr, []byte(traceHeaderSuffix)) {
			s.passThrough(err)
			return
		}
		if v, err := strconv.Atoi(string(hdr[len("go 1.") : len(hdr)-len(traceHeaderSuffix)])); err != nil || v < 26 {
			s.passThrough(nil)
		}
		return
	}
	typ, err := s.src.ReadByte()
	if err != nil {
		s.passThrough(err)
		return
	}
	s.cur = append(s.cur, typ)
	switch typ {
	case evEndOfGeneration:
		s.endOfGeneration()
		return
	case evEventBatch:
	case evExperimentalBatch:
		e, err := s.src.ReadByte()
		if err != nil {
			s.passThrough(err)
			return
		}
		s.cur = append(s.cur, e)
	default:
		s.passThrough(nil)
		return
	}
	// gen, M, timestamp, size.
	var size uint64
	for range 4 {
		if size, err = s.uvarint(); err != nil {
			s.passThrough(err)
			return
		}
	}
	if size > maxBatchSize {
		s.passThrough(nil)
		return
	}
	at := len(s.cur)
	s.cur = slices.Grow(s.cur, int(size))[:at+int(size)]
	if n, err := io.ReadFull(s.src, s.cur[at:]); err != nil {
		s.cur = s.cur[:at+n]
		s.passThrough(err)
		return
	}
	if typ == evEventBatch && size > 0 && s.cur[at] == evSync {
		if w, ok := syncWall(s.cur[at+1:]); ok {
			s.curWall = w
		}
	}
}

// uvarint reads a varint of a batch header, keeping its bytes.
func (s *genSkipper) uvarint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := s.src.ReadByte()
		if err != nil {
			return 0, err
		}
		s.cur = append(s.cur, c)
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint overflow")
}

// endOfGeneration decides on the generation just read: keep it for now if
// it began at or before since (it replaces the one kept before, which ended
// when this one began, before since), else hand out the one kept and this
// one, and pass the rest through.
func (s *genSkipper) endOfGeneration() {
	if s.curWall.IsZero() || s.curWall.After(s.since) {
		s.passThrough(nil)
		return
	}
	s.prev, s.pending, s.cur = s.pending, s.cur, s.prev[:0]
	s.curWall = time.Time{}
}

// passThrough hands out the header, the generation kept and what was read
// of the current one, then the rest of src; err, if any and not io.EOF,
// ends the stream after them.
func (s *genSkipper) passThrough(err error) {
	s.out = [][]byte{s.hdr, s.prev, s.pending, s.cur}
	s.pass = true
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		s.err = err
	}
}

// syncWall reads the wall clock of a sync batch's clock snapshot (the
// batch's events after its EvSync byte).
func syncWall(b []byte) (time.Time, bool) {
	for len(b) > 0 {
		typ := b[0]
		b = b[1:]
		var args int
		switch typ {
		case evFrequency:
			args = 1
		case evClockSnapshot:
			args = 4 // dt, mono, sec, nsec
		default:
			return time.Time{}, false
		}
		var v [4]uint64
		for i := range args {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return time.Time{}, false
			}
			v[i], b = x, b[n:]
		}
		if typ == evClockSnapshot {
			return time.Unix(int64(v[2]), int64(v[3])), true
		}
	}
	return time.Time{}, false
}

// Generations counts the generations of a Go 1.26+ trace (their
// end-of-generation marks).
func Generations(data []byte) int64 {
	s := &genSkipper{src: bufio.NewReader(bytes.NewReader(data)), since: time.Unix(1<<40, 0)}
	var n int64
	for {
		s.step()
		if s.pass {
			return n
		}
		if len(s.cur) == 0 && len(s.pending) > 0 {
			n++ // a generation was just kept
		}
	}
}

// SkipGenerations reads the trace r without the generations that ended
// before the one before since (see WindowOptions.Since): what AnalyzeTrace
// reads of a window that starts at since.
func SkipGenerations(r io.Reader, since time.Time) io.Reader {
	return newGenSkipper(r, since)
}

// GoVersion reads "go 1.26 trace" off a trace header as "go1.26": the
// format's version, the oldest Go that writes it.
func GoVersion(head []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(head, []byte("go 1."))
	if !ok {
		return "", false
	}
	minor, _, ok := bytes.Cut(rest, []byte(" trace"))
	if !ok {
		return "", false
	}
	if _, err := strconv.Atoi(string(minor)); err != nil {
		return "", false
	}
	return "go1." + string(minor), true
}
