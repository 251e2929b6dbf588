package probes

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// KindTraceFile is the RemoteFetcher.Kind of a saved execution trace.
const KindTraceFile = "trace file"

// TraceFile serves a saved execution trace (from go test -trace,
// runtime/trace, /debug/pprof/trace, inspect-cli trace or a flight
// recorder's WriteTo) to a Remote, which builds its task model as for a
// live target, without dumps, profiles or labels: a trace has none.
//
// By default each snapshot covers the whole trace. After Step, each one
// covers the next window of the trace instead, until the trace ends
// (errors.Is(err, io.EOF)): the diagnosis rules then see the trace as they
// would have seen the program, one window after another.
type TraceFile struct {
	path string
	data []byte

	stepping bool
	// The windows of Step: n of length step from start; next is the
	// index of the next one.
	start      time.Time
	step       time.Duration
	n, next    int
	boundsRead bool
}

// IsTraceFile reports whether the file at path starts like an execution
// trace ("go 1.NN trace").
func IsTraceFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var hdr [16]byte
	n, _ := io.ReadFull(f, hdr[:])
	_, ok := traceGoVersion(hdr[:n])
	return ok
}

// OpenTraceFile reads the execution trace at path.
func OpenTraceFile(path string) (*TraceFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, ok := traceGoVersion(data[:min(len(data), 16)]); !ok {
		return nil, fmt.Errorf("%s: not an execution trace (it does not start with \"go 1.NN trace\")", path)
	}
	return &TraceFile{path: path, data: data}, nil
}

// Step makes each following snapshot cover the next window of the trace,
// from its start: windows of about window each (the trace's length split
// evenly, so that no window is a short remainder whose rates mislead).
func (f *TraceFile) Step() { f.stepping, f.next, f.boundsRead = true, 0, false }

// Windows is how many windows Step has handed out.
func (f *TraceFile) Windows() int { return f.next }

// Size is the trace's size in bytes.
func (f *TraceFile) Size() int64 { return int64(len(f.data)) }

// Target is the file's path.
func (f *TraceFile) Target() string { return f.path }

// Kind is KindTraceFile.
func (f *TraceFile) Kind() string { return KindTraceFile }

// GoroutineProfile: a trace has none.
func (f *TraceFile) GoroutineProfile(context.Context) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: a trace file has no goroutine profile", ErrUnsupported)
}

// Stats: a trace file tells nothing cheaply.
func (f *TraceFile) Stats(context.Context) (RemoteStats, error) { return RemoteStats{}, nil }

// Dump: a trace file has no goroutine dump.
func (f *TraceFile) Dump(context.Context) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: a trace file has no goroutine dump", ErrUnsupported)
}

// LeakProfile: a trace file has no goroutineleak profile.
func (f *TraceFile) LeakProfile(context.Context) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: a trace file has no goroutineleak profile", ErrUnsupported)
}

// Trace returns the trace, whole; the Remote cuts the window it covers
// (span). Once Step's windows have all been read, it fails with io.EOF.
func (f *TraceFile) Trace(context.Context, time.Duration) (io.ReadCloser, time.Duration, error) {
	if f.stepping && f.boundsRead && f.next >= f.n {
		return nil, 0, fmt.Errorf("%s: %w: every window of the trace was read", f.path, io.EOF)
	}
	return io.NopCloser(bytes.NewReader(f.data)), 0, nil
}

// span is the part of the trace the next window covers, as WindowOptions
// Since and For; zero for the rest of the trace (or all of it).
func (f *TraceFile) span(window time.Duration) (since time.Time, d time.Duration) {
	if !f.stepping {
		return time.Time{}, 0
	}
	if !f.boundsRead {
		// The trace's bounds on the wall clock: one parse without sites.
		f.boundsRead = true
		w, _ := AnalyzeTrace(bytes.NewBuffer(f.data), WindowOptions{Parallel: true})
		f.n = 1
		if !w.WallStart.IsZero() { // else no clock to step by: one window
			total := w.WallEnd.Sub(w.WallStart)
			f.n = max(1, int((total+window/2)/window))
			f.start, f.step = w.WallStart, total/time.Duration(f.n)
		}
	}
	if f.n == 1 {
		return time.Time{}, 0
	}
	if f.next > 0 { // the first window starts at the first event
		since = f.start.Add(time.Duration(f.next) * f.step)
	}
	if f.next < f.n-1 {
		d = f.step
	}
	return since, d
}

// advance moves past the window span gave.
func (f *TraceFile) advance() {
	if f.stepping {
		f.next++
	}
}

// fileModel finishes the snapshot of a window of a trace file: the trace's
// own model, stamped with the time the window ended, and notes that say
// what a trace cannot tell.
func (r *Remote) fileModel(tf *TraceFile, window time.Duration, win *Window, traceErr error, notes []string) (*remoteBuilt, error) {
	if win == nil {
		return nil, fmt.Errorf("not a readable execution trace: %w", traceErr)
	}
	snap := r.model(win, nil)
	snap.Time = win.WallEnd
	if snap.Time.IsZero() {
		// Traces before Go 1.25 carry no wall clock: the file's time stands in.
		if fi, err := os.Stat(tf.path); err == nil {
			snap.Time = fi.ModTime()
		} else {
			snap.Time = time.Now()
		}
	}
	snap.Target = tf.path
	snap.Source = "trace (computed in inspect-cli from a trace file)"
	snap.Process = r.process(RemoteStats{}, -1, snap.Tasks)
	span := fmt.Sprintf("%s of trace", time.Duration(win.Duration()).Round(time.Millisecond))
	if !win.WallStart.IsZero() {
		span += fmt.Sprintf(" from %s to %s", win.WallStart.Format("2006-01-02 15:04:05.000"), win.WallEnd.Format("15:04:05.000"))
	}
	what := "the whole trace"
	if tf.stepping {
		what = fmt.Sprintf("window %d of %d of the trace", tf.next, tf.n)
	}
	head := []string{
		fmt.Sprintf("model computed in inspect-cli from the saved execution trace %s (%s): %s, %s", tf.path, byteSize(tf.Size()), what, span),
		"a trace holds no pprof labels, wait minutes, leak marks, heap or GC figures: tasks are named by their start function",
	}
	snap.Notes = append(append(head, notes...), snap.Notes...)
	snap.Partial = partialOf(snap.Notes)
	snap.Findings = []api.Finding{}
	r.last = &remoteBuilt{at: time.Now(), window: window, snap: snap, win: win}
	return r.last, nil
}

// TraceGoroutines returns the goroutines alive at the end of the last
// snapshot's window (built first if there is none) as a dump would list
// them, with the latest stack the trace recorded for each: where it waits,
// or where it last blocked, yielded or woke. Only the state, wait reason,
// creator and stack are known. partial says how the trace was cut short
// or corrupt, if it was (Snapshot.Partial).
func (r *Remote) TraceGoroutines(ctx context.Context, window time.Duration) (gs []Goroutine, partial string, err error) {
	b, err := r.build(ctx, window, max(2*window, 10*time.Second))
	if err != nil {
		return nil, "", err
	}
	if b.win == nil {
		return nil, "", fmt.Errorf("%s: no trace window", r.f.Target())
	}
	gs = make([]Goroutine, 0, len(b.win.Goroutines))
	for _, g := range b.win.Goroutines {
		if g.Exited {
			continue
		}
		d := Goroutine{ID: g.ID, ParentID: g.ParentID, State: g.State, WaitReason: g.WaitReason,
			Status: g.WaitReason, Frames: g.Stack, CreatedBy: g.CreatedBy}
		if d.Status == "" {
			d.Status = g.State.String()
		}
		gs = append(gs, d)
	}
	slices.SortFunc(gs, func(a, b Goroutine) int { return cmp.Compare(a.ID, b.ID) })
	return gs, b.snap.Partial, nil
}
