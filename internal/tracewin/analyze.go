package tracewin

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/exp/trace"
)

// ErrTraceTruncated is wrapped by AnalyzeTrace's error when the trace ended
// in the middle of a generation or could not be read on.
var ErrTraceTruncated = errors.New("execution trace truncated or corrupt")

// errAnalysis is wrapped by AnalyzeTrace's error when the analysis itself
// failed on an event the parser accepted: a bug of ours (the fuzz test looks
// for it).
var errAnalysis = errors.New("internal error analysing the trace")

// AnalyzeTrace reads a whole execution trace and analyses it as one window.
// On a cut or corrupt trace it returns the window of the events read before
// the problem (Truncated set) and an error wrapping ErrTraceTruncated; it
// never panics. When MaxEvents stops it, it returns the partial window and
// no error. The window is never nil.
//
// With opts.Parallel, no MaxEvents, GOMAXPROCS above 1 and a trace that
// may be larger than a megabyte, it parses on a second goroutine while it
// analyses on the calling one: on an idle second core the analysis then
// runs at about 0.85x the speed of the bare parse instead of 0.75x, for
// some 10% more CPU time. Either way it returns only once it has stopped
// reading r.
func AnalyzeTrace(r io.Reader, opts WindowOptions) (w *Window, err error) {
	b := NewWindowBuilder(opts)
	if err, panicked := b.readAll(r); panicked {
		return b.safeFinalize(), err
	} else {
		return b.Finalize(), err
	}
}

// AnalyzeSlice reads a whole execution trace as AnalyzeTrace does (with
// Sites), and keeps it as a Slice to compose windows from, sharing stacks
// and strings through in. It never makes the numbers of a goroutine that
// waited all of it (most of a large program's): the Slice keeps 24 bytes
// of each. pace, if not nil, is WindowOptions.Pace; maxEvents, if above
// 0, is WindowOptions.MaxEvents: the slice then ends at its last event read.
// prev, if not nil, is the slice traced just before: goroutines waiting
// since then that the trace tells nothing of are placed where prev left
// them (WindowOptions.WaitingAt).
func AnalyzeSlice(r io.Reader, in *Interner, prev *Slice, pace func(), maxEvents int64) (s *Slice, err error) {
	opts := WindowOptions{Sites: true, Pace: pace, MaxEvents: maxEvents}
	if prev != nil {
		opts.WaitingAt = prev.WaitingAt
	}
	b := NewWindowBuilder(opts)
	err, panicked := b.readAll(r)
	if panicked {
		return NewSlice(b.safeFinalize(), in), err
	}
	defer func() {
		if p := recover(); p != nil {
			s = NewSlice(b.safeFinalize(), in)
			err = fmt.Errorf("event %d: %w: %v", b.events, errAnalysis, p)
		}
	}()
	return b.slice(in), err
}

// readAll feeds b the events of r until it ends, cut short or not, and
// says how: an error wrapping ErrTraceTruncated for a cut or corrupt trace,
// and panicked when the parser or the analysis panicked (b is then in no
// state to finalize but safely).
func (b *WindowBuilder) readAll(r io.Reader) (err error, panicked bool) {
	inEvent := false
	defer func() {
		// The parser panics on some corrupt input. Keep what was analysed.
		if p := recover(); p != nil {
			b.truncated, panicked = true, true
			if inEvent {
				err = fmt.Errorf("event %d: %w: %v", b.events, errAnalysis, p)
			} else {
				err = fmt.Errorf("reading trace after %d events: %w: %v", b.events, ErrTraceTruncated, p)
			}
		}
	}()
	opts := b.opts
	pipelined := opts.Parallel && opts.MaxEvents <= 0 && runtime.GOMAXPROCS(0) > 1 && !small(r)
	tr, err := trace.NewReader(newGenSkipper(r, opts.Since))
	if err != nil {
		b.truncated = true
		return fmt.Errorf("reading trace header: %w: %w", ErrTraceTruncated, err), false
	}
	var rerr error
	if pipelined {
		rerr = b.readPipelined(tr, &inEvent)
	} else {
		rerr = b.readSequential(tr, &inEvent)
	}
	switch {
	case rerr == nil: // MaxEvents or For
		b.truncated = b.truncated || !b.more
		return nil, false
	case rerr != io.EOF:
		b.truncated = true
		return fmt.Errorf("reading trace after %d events: %w: %w", b.events, ErrTraceTruncated, rerr), false
	case b.syncs < 2:
		// Every generation opens with a sync and the trace closes with one:
		// this one holds no generation.
		b.truncated = true
		return fmt.Errorf("reading trace: %w: no generation after the header", ErrTraceTruncated), false
	}
	return nil, false
}

// small reports whether r is known to hold less than a megabyte (a
// bytes.Reader, a bytes.Buffer, a strings.Reader): not worth a second
// goroutine.
func small(r io.Reader) bool {
	l, ok := r.(interface{ Len() int })
	return ok && l.Len() < 1<<20
}

// readSequential feeds b the events of tr until the reader fails (io.EOF at
// the end) or MaxEvents or For is reached (nil).
func (b *WindowBuilder) readSequential(tr *trace.Reader, inEvent *bool) error {
	for (b.opts.MaxEvents <= 0 || b.events < b.opts.MaxEvents) && !b.more {
		ev, err := tr.ReadEvent()
		if err != nil {
			return err
		}
		*inEvent = true
		b.Event(&ev)
		*inEvent = false
		if b.opts.Pace != nil && b.events%paceEvents == 0 {
			b.opts.Pace()
		}
	}
	return nil
}

// eventBatch carries events from the parsing goroutine to the analysing one;
// err is the reader's error after the last event (io.EOF at the end).
type eventBatch struct {
	evs    []trace.Event
	sts    []trace.StateTransition // evs[i]'s, for state transitions, with withST
	withST bool
	err    error
}

const (
	pipeBatch   = 512 // events per batch: ~50 KB, amortises the hand-offs
	pipeBatches = 4   // batches in flight
)

// readPipelined is readSequential with the parsing on a second goroutine,
// handing batches of events over; it returns after that goroutine ended.
func (b *WindowBuilder) readPipelined(tr *trace.Reader, inEvent *bool) error {
	full := make(chan *eventBatch, pipeBatches)
	free := make(chan *eventBatch, pipeBatches)
	for range pipeBatches {
		free <- &eventBatch{evs: make([]trace.Event, 0, pipeBatch), sts: make([]trace.StateTransition, pipeBatch)}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var bt *eventBatch
		defer func() {
			// The parser panics on some corrupt input: hand it over as an error.
			if p := recover(); p != nil {
				bt.err = fmt.Errorf("parser panic: %v", p)
				select {
				case full <- bt:
				case <-stop:
				}
			}
		}()
		for {
			// No batch free: the analysis is behind, so take the state
			// transitions out of this batch's events here.
			behind := len(free) == 0
			select {
			case bt = <-free:
			case <-stop:
				return
			}
			bt.evs = bt.evs[:0]
			bt.withST = behind
			for len(bt.evs) < pipeBatch {
				ev, err := tr.ReadEvent()
				if err != nil {
					bt.err = err
					break
				}
				if behind && ev.Kind() == trace.EventStateTransition {
					bt.sts[len(bt.evs)] = ev.StateTransition()
				}
				bt.evs = append(bt.evs, ev)
			}
			select {
			case full <- bt:
			case <-stop:
				return
			}
			if bt.err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done // never return (or panic) while r is still being read
	}()
	for bt := range full {
		*inEvent = true
		for i := range bt.evs {
			var st *trace.StateTransition
			if bt.withST && bt.evs[i].Kind() == trace.EventStateTransition {
				st = &bt.sts[i]
			}
			b.event(&bt.evs[i], st)
		}
		*inEvent = false
		if b.more {
			return nil
		}
		if bt.err != nil {
			return bt.err
		}
		free <- bt
	}
	return io.ErrUnexpectedEOF // not reached: the reader always ends with an error
}

// safeFinalize finalizes after a panic; a second panic gives an empty window.
func (b *WindowBuilder) safeFinalize() (w *Window) {
	defer func() {
		if recover() != nil {
			w = &Window{Start: int64(b.start), End: int64(b.end), Goroutines: map[int64]*GoStats{}, Events: b.events, Truncated: true}
		}
	}()
	return b.Finalize()
}
