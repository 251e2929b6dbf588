package recording

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// DefaultKeyframeEvery is how often, in updates, a writer makes a full
// update when the stream sends changes only.
const DefaultKeyframeEvery = 30

// A writer also makes a full update as soon as the tasks changed since the
// last one outnumber the tasks (and minKeyframeTasks): seeking then decodes
// at most about two full updates' worth of tasks, and the keyframes at most
// double the file.
const minKeyframeTasks = 1000

// Writer writes a recording, one line per call, each in one Write.
type Writer struct {
	w        io.Writer
	keyEvery int

	lines, updates int64
	bytes          int64
	err            error
	closed         bool

	// state is the target's state as the updates so far make it, to write
	// keyframes; sinceKey counts the updates since the last full one.
	state    api.Snapshot
	sinceKey int
	changed  int // tasks sent changed or removed since the last full update
	haveFull bool

	buf bytes.Buffer
	zw  *gzip.Writer
}

// NewWriter writes h (Format and Version filled in, Started defaulting to
// now) as line 1. With h.KeyframeEvery 0, DefaultKeyframeEvery is used; a
// negative value writes no keyframes.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Format, h.Version = Format, Version
	if h.Started.IsZero() {
		h.Started = time.Now()
	}
	switch {
	case h.KeyframeEvery == 0:
		h.KeyframeEvery = DefaultKeyframeEvery
	case h.KeyframeEvery < 0:
		h.KeyframeEvery = 0
	}
	zw, err := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	rw := &Writer{w: w, keyEvery: h.KeyframeEvery, zw: zw}
	if err := rw.line(Meta{Kind: KindHeader, Time: h.Started}, h); err != nil {
		return nil, err
	}
	return rw, nil
}

// Update writes u, received at now. It writes an update full, from the state
// the updates make, every KeyframeEvery updates, or sooner when the tasks
// changed since the last full one outnumber the tasks.
func (w *Writer) Update(now time.Time, u api.Update) error {
	if w.keyEvery > 0 {
		api.Apply(&w.state, u)
		w.sinceKey++
		w.changed += len(u.Tasks) + len(u.Removed)
		switch {
		case u.Full:
			w.sinceKey, w.changed, w.haveFull = 0, 0, true
		case w.haveFull && (w.sinceKey >= w.keyEvery || w.changed >= max(len(w.state.Tasks), minKeyframeTasks)):
			w.sinceKey, w.changed = 0, 0
			u.Full, u.Tasks, u.Removed = true, w.state.Tasks, nil
		}
	}
	if u.Tasks == nil {
		u.Tasks = []api.Task{}
	}
	err := w.line(Meta{Kind: KindUpdate, Time: now, Full: u.Full, Tasks: len(u.Tasks)},
		Entry{Kind: KindUpdate, Time: now, Update: &u})
	if err == nil {
		w.updates++
	}
	return err
}

// Conn writes a change of the connection.
func (w *Writer) Conn(now time.Time, c Conn) error {
	return w.line(Meta{Kind: KindConn, Time: now}, Entry{Kind: KindConn, Time: now, Conn: &c})
}

// Close writes the end line. It does not close the underlying writer.
func (w *Writer) Close(now time.Time, reason string) error {
	if w.closed {
		return w.err
	}
	err := w.line(Meta{Kind: KindEnd, Time: now}, Entry{Kind: KindEnd, Time: now, End: &End{Updates: w.updates, Reason: reason}})
	w.closed = true
	return err
}

// Updates is the number of updates written; Bytes the size written; Lines
// the lines written, the header included.
func (w *Writer) Updates() int64 { return w.updates }
func (w *Writer) Bytes() int64   { return w.bytes }
func (w *Writer) Lines() int64   { return w.lines }

// Offsets of the "IL" subfield's data in a member: the fixed header (10
// bytes), XLEN (2), then SI1 SI2 LEN (4).
const (
	fixedHeader = 10
	lenAt       = fixedHeader + 2 + 4
)

// line writes v as one gzip member with the index field of m.
func (w *Writer) line(m Meta, v any) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("recording: write after Close")
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("recording: encoding line %d: %w", w.lines+1, err)
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return err
	}
	extra := make([]byte, 0, 16+len(mj))
	extra = append(extra, 'I', 'L', 8, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	extra = append(extra, 'I', 'M', byte(len(mj)), byte(len(mj)>>8))
	extra = append(extra, mj...)

	w.buf.Reset()
	w.zw.Reset(&w.buf)
	w.zw.Header = gzip.Header{Extra: extra, OS: 255}
	if !m.Time.IsZero() && m.Time.Unix() > 0 {
		w.zw.ModTime = m.Time
	}
	body = append(body, '\n')
	if _, err := w.zw.Write(body); err != nil {
		return err
	}
	if err := w.zw.Close(); err != nil {
		return err
	}
	b := w.buf.Bytes()
	binary.LittleEndian.PutUint64(b[lenAt:lenAt+8], uint64(len(b)))
	n, err := w.w.Write(b)
	w.bytes += int64(n)
	if err != nil {
		w.err = fmt.Errorf("recording: writing line %d: %w", w.lines+1, err)
		return w.err
	}
	w.lines++
	return nil
}
