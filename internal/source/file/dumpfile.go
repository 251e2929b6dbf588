package file

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
)

// DumpNote is the note of models built from a goroutine dump.
const DumpNote = "from a goroutine dump: no trace window, so TOTAL, BUSY, SCHED, IDLE and POLLS are unknown (-)"

// DumpFile is a saved goroutine dump as a source: its goroutines as tasks,
// with their stacks, labels and wait minutes, and no window numbers.
type DumpFile struct {
	path  string
	gs    []dump.Goroutine
	notes []string
	snap  *api.Snapshot
}

// OpenDumpFile reads the goroutine dump at path. A cut or partly corrupt
// dump still gives the goroutines read, with a note; one without any
// goroutine is an error.
func OpenDumpFile(path string) (*DumpFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gs, err := dump.ParseDump(f)
	if len(gs) == 0 {
		return nil, fmt.Errorf("%s: not a goroutine dump: %w", path, err)
	}
	d := &DumpFile{path: path, gs: gs}
	if err != nil {
		d.notes = append(d.notes, fmt.Sprintf("the dump has problems, shown as far as read: %v", err))
	}
	s := &api.Snapshot{Target: path, Source: "goroutine dump", Notes: append([]string{DumpNote}, d.notes...)}
	if len(d.notes) > 0 {
		s.Partial = d.notes[0] // the dump's problems
	}
	// When the dump was taken, as near as the file tells: the diagnosis
	// takes a snapshot without a time for one it has seen already.
	s.Time = time.Now()
	if fi, err := os.Stat(path); err == nil && !fi.ModTime().IsZero() {
		s.Time = fi.ModTime()
	}
	s.Process = api.Process{Goroutines: int64(len(gs)), Leaked: -1, ByState: map[string]int64{}}
	s.Tasks = make([]api.Task, 0, len(gs))
	for i := range gs {
		s.Tasks = append(s.Tasks, model.DumpTask(&gs[i], true))
		s.Process.ByState[s.Tasks[i].State]++
	}
	slices.SortFunc(s.Tasks, func(a, b api.Task) int { return int(a.ID - b.ID) })
	s.Findings = []api.Finding{}
	d.snap = s
	return d, nil
}

// Goroutines returns the dump's goroutines, and notes on its problems.
func (d *DumpFile) Goroutines() ([]dump.Goroutine, []string) { return d.gs, d.notes }

// Snapshot returns the dump's model, whatever the window: a dump has none.
func (d *DumpFile) Snapshot(context.Context, time.Duration) (*api.Snapshot, error) {
	return d.snap, nil
}

// Task returns one goroutine of the dump, with its stack.
func (d *DumpFile) Task(_ context.Context, id int64, _ time.Duration) (*api.Task, error) {
	i, ok := slices.BinarySearchFunc(d.snap.Tasks, id, func(t api.Task, id int64) int { return int(t.ID - id) })
	if !ok {
		return nil, fmt.Errorf("goroutine %d: %w", id, api.ErrNoTask)
	}
	t := d.snap.Tasks[i]
	return &t, nil
}

// StackOf returns goroutine id's stack in the dump.
func (d *DumpFile) StackOf(id int64) []api.Frame {
	if t, err := d.Task(context.Background(), id, 0); err == nil {
		return t.Stack()
	}
	return nil
}

// StretchStackOf: a dump has no window, so no stretch on CPU.
func (d *DumpFile) StretchStackOf(int64) []api.Frame { return nil }

// Profile: a dump file holds no pprof profiles.
func (d *DumpFile) Profile(context.Context, string) (*profile.Profile, error) {
	return nil, fmt.Errorf("a goroutine dump holds no pprof profiles: %w", source.ErrUnsupported)
}
