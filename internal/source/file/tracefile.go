// Package file reads saved inputs as sources of task models: an execution
// trace file (from go test -trace, runtime/trace, /debug/pprof/trace,
// inspect-cli trace or a flight recorder's WriteTo) and a goroutine dump
// file (debug=2 text, a panic's or SIGQUIT's output). They give the model
// that the live sources give, as far as the file tells: a trace has no
// labels, wait minutes, leak marks or heap figures; a dump has no window.
package file

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// KindTraceFile names a saved execution trace as a target, in notes.
const KindTraceFile = "trace file"

// TraceFile is a saved execution trace as a source.
//
// By default each snapshot covers the whole trace. After Step, each one
// covers the next window of the trace instead, until the trace ends
// (errors.Is(err, io.EOF)): the diagnosis rules then see the trace as they
// would have seen the program, one window after another.
type TraceFile struct {
	path string
	data []byte
	m    *model.Model

	mu       sync.Mutex // one build at a time; guards everything below
	stepping bool
	// The windows of Step: n of length step from start; next is the
	// index of the next one.
	start      time.Time
	step       time.Duration
	n, next    int
	boundsRead bool
	last       *built
}

type built struct {
	snap *api.Snapshot
	win  *tracewin.Window
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
	_, ok := tracewin.GoVersion(hdr[:n])
	return ok
}

// OpenTraceFile reads the execution trace at path.
func OpenTraceFile(path string) (*TraceFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, ok := tracewin.GoVersion(data[:min(len(data), 16)]); !ok {
		return nil, fmt.Errorf("%s: not an execution trace (it does not start with \"go 1.NN trace\")", path)
	}
	return &TraceFile{path: path, data: data, m: model.New()}, nil
}

// Step makes each following snapshot cover the next window of the trace,
// from its start: windows of about window each (the trace's length split
// evenly, so that no window is a short remainder whose rates mislead).
func (f *TraceFile) Step() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stepping, f.next, f.boundsRead, f.last = true, 0, false, nil
}

// Windows is how many windows Step has handed out.
func (f *TraceFile) Windows() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// Size is the trace's size in bytes.
func (f *TraceFile) Size() int64 { return int64(len(f.data)) }

// Path is the file's path.
func (f *TraceFile) Path() string { return f.path }

// Snapshot builds the model of the whole trace (read once: it does not
// change) or, after Step, of its next window of about window.
func (f *TraceFile) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	b, err := f.build(ctx, window)
	if err != nil {
		return nil, err
	}
	return b.snap, nil
}

// Task returns one task of the last snapshot (built first if there is
// none) with its histograms and stack.
func (f *TraceFile) Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	b, err := f.lastOrBuild(ctx, window)
	if err != nil {
		return nil, err
	}
	return f.m.Task(b.snap, b.win, id)
}

// StackOf returns goroutine id's latest stack in the last snapshot's window.
func (f *TraceFile) StackOf(id int64) []api.Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil {
		return nil
	}
	return f.last.win.StackOf(id, false)
}

// StretchStackOf returns where goroutine id computed during its longest
// stretch on CPU in the last snapshot's window.
func (f *TraceFile) StretchStackOf(id int64) []api.Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil {
		return nil
	}
	return f.last.win.StackOf(id, true)
}

// Profile: a trace file holds no pprof profiles.
func (f *TraceFile) Profile(context.Context, string) (*profile.Profile, error) {
	return nil, fmt.Errorf("a trace file holds no pprof profiles: %w", source.ErrUnsupported)
}

func (f *TraceFile) lastOrBuild(ctx context.Context, window time.Duration) (*built, error) {
	f.mu.Lock()
	b := f.last
	f.mu.Unlock()
	if b != nil {
		return b, nil
	}
	return f.build(ctx, window)
}

func (f *TraceFile) build(ctx context.Context, window time.Duration) (*built, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stepping && f.last != nil {
		return f.last, nil // the whole trace: it does not change
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.stepping && f.boundsRead && f.next >= f.n {
		return nil, fmt.Errorf("%s: %w: every window of the trace was read", f.path, io.EOF)
	}
	// A file is all there: no target spins while it is read, so no bound
	// on the events.
	wo := tracewin.WindowOptions{Sites: true, Parallel: true}
	wo.Since, wo.For = f.span(window)
	win, err := tracewin.AnalyzeTrace(bytes.NewBuffer(f.data), wo) // cut in place by Since
	if f.stepping {
		f.next++
	}
	if err != nil && len(win.Goroutines) == 0 {
		return nil, fmt.Errorf("not a readable execution trace: %w", err)
	}
	var notes []string
	if err != nil {
		notes = append(notes, model.PartialTrace+err.Error())
	}
	snap := f.m.Snapshot(win, win.WallEnd)
	snap.Time = win.WallEnd
	if snap.Time.IsZero() {
		// Traces before Go 1.25 carry no wall clock: the file's time stands in.
		if fi, err := os.Stat(f.path); err == nil {
			snap.Time = fi.ModTime()
		} else {
			snap.Time = time.Now()
		}
	}
	snap.Target = f.path
	snap.Source = "trace (computed in inspect-cli from a trace file)"
	snap.Process = api.Process{Goroutines: int64(len(snap.Tasks)), ByState: map[string]int64{}, Leaked: -1}
	if v, ok := tracewin.GoVersion(f.data[:min(len(f.data), 16)]); ok {
		snap.Process.GoVersion = v + "+"
	}
	for i := range snap.Tasks {
		snap.Process.ByState[snap.Tasks[i].State]++
	}
	span := fmt.Sprintf("%s of trace", format.Nanos(win.Duration()))
	if !win.WallStart.IsZero() {
		span += fmt.Sprintf(" from %s to %s", win.WallStart.Format("2006-01-02 15:04:05.000"), win.WallEnd.Format("15:04:05.000"))
	}
	what := "the whole trace"
	if f.stepping {
		what = fmt.Sprintf("window %d of %d of the trace", f.next, f.n)
	}
	head := []string{
		fmt.Sprintf("model computed in inspect-cli from the saved execution trace %s (%s): %s, %s", f.path, format.Bytes(f.Size()), what, span),
		"a trace holds no pprof labels, wait minutes, leak marks, heap or GC figures: tasks are named by their start function",
	}
	snap.Notes = append(append(head, notes...), snap.Notes...)
	snap.Partial = model.PartialOf(snap.Notes)
	f.last = &built{snap: snap, win: win}
	return f.last, nil
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
		w, _ := tracewin.AnalyzeTrace(bytes.NewBuffer(f.data), tracewin.WindowOptions{Parallel: true})
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

// Goroutines returns the goroutines alive at the end of the last
// snapshot's window (built first if there is none) as a dump would list
// them, with the latest stack the trace recorded for each: where it waits,
// or where it last blocked, yielded or woke. Only the state, wait reason,
// creator and stack are known. partial says how the trace was cut short
// or corrupt, if it was (Snapshot.Partial).
func (f *TraceFile) Goroutines(ctx context.Context, window time.Duration) (gs []dump.Goroutine, partial string, err error) {
	b, err := f.lastOrBuild(ctx, window)
	if err != nil {
		return nil, "", err
	}
	gs = make([]dump.Goroutine, 0, len(b.win.Goroutines))
	for _, g := range b.win.Goroutines {
		if g.Exited {
			continue
		}
		d := dump.Goroutine{ID: g.ID, ParentID: g.ParentID, State: g.State, WaitReason: g.WaitReason,
			Status: g.WaitReason, Frames: g.Stack, CreatedBy: g.CreatedBy}
		if d.Status == "" {
			d.Status = g.State.String()
		}
		gs = append(gs, d)
	}
	slices.SortFunc(gs, func(a, b dump.Goroutine) int { return cmp.Compare(a.ID, b.ID) })
	return gs, b.snap.Partial, nil
}
