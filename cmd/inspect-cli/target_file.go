package main

// Targets that are files: a goroutine dump, which gives tasks without window
// numbers and its stacks, and a recording made by inspect-cli record, which
// gives the task table and wait sites of its last update. (A saved
// execution trace is computed here, as a program is: see target_remote.go.)

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/recording"
	"github.com/inspectd/inspectd/internal/source/file"
	"github.com/inspectd/inspectd/internal/tui"
)

// dumpFile is a saved goroutine dump, read at first use.
type dumpFile struct {
	t    *target
	path string
	d    *file.DumpFile
}

func dumpTarget(path string) *target {
	t := &target{name: path, is: "the file " + path, saved: true}
	d := &dumpFile{t: t, path: path}
	t.model, t.dump, t.findings = d, d, d
	return t
}

// open reads the dump. A cut or partly corrupt dump still gives the
// goroutines read, with a note.
func (d *dumpFile) open() (*file.DumpFile, error) {
	if d.d == nil {
		f, err := file.OpenDumpFile(d.path)
		if err != nil {
			return nil, failf(2, "%v", err)
		}
		d.d = f
	}
	return d.d, nil
}

// snapshot is the model a dump gives: tasks without window numbers.
func (d *dumpFile) snapshot(ctx context.Context, _ time.Duration) (*api.Snapshot, error) {
	f, err := d.open()
	if err != nil {
		return nil, err
	}
	return f.Snapshot(ctx, 0)
}

func (d *dumpFile) task(ctx context.Context, id int64, _ time.Duration) (*api.Task, error) {
	f, err := d.open()
	if err != nil {
		return nil, err
	}
	task, err := f.Task(ctx, id, 0)
	if errors.Is(err, api.ErrNoTask) {
		return nil, failf(1, "%s has no goroutine %d", d.path, id)
	}
	return task, err
}

// writeTask prints what a dump holds of a task: no window numbers.
func (d *dumpFile) writeTask(w io.Writer, task *api.Task, window time.Duration) {
	tui.WriteTask(w, task, file.DumpNote, window)
}

func (d *dumpFile) goroutines(context.Context, bool) ([]dump.Goroutine, []string, error) {
	f, err := d.open()
	if err != nil {
		return nil, nil, err
	}
	gs, notes := f.Goroutines()
	return gs, notes, nil
}

func (d *dumpFile) diagnose(ctx context.Context, run *diagnosis) (string, error) {
	return "one goroutine dump: only what a dump shows (stuck goroutines, leak marks)", diagnoseOnce(ctx, run, d)
}

// diagnoseOnce runs the rules here on the one snapshot of a file.
func diagnoseOnce(ctx context.Context, d *diagnosis, m modeler) error {
	s, err := m.snapshot(ctx, d.o.window)
	if err != nil {
		return err
	}
	eng, err := diagnose.New(d.o.cfg)
	if err != nil {
		return failf(2, "%v", err)
	}
	d.note(s)
	d.add(eng.Observe(diagnose.Input{Snapshot: s}))
	return nil
}

// recordingFile is a recording made by inspect-cli record: its last
// update, read at first use. top --replay plays it all (runReplay).
type recordingFile struct {
	t    *target
	path string
	last *api.Snapshot
}

func recordingTarget(path string) *target {
	t := &target{name: path, is: "the recording " + path, saved: true, recording: true}
	r := &recordingFile{t: t, path: path}
	t.model, t.sites, t.findings = r, r, r
	return t
}

// snapshot is the state at the last update of the recording.
func (r *recordingFile) snapshot(context.Context, time.Duration) (*api.Snapshot, error) {
	if r.last != nil {
		return r.last, nil
	}
	rec, err := recording.Open(r.path)
	if err != nil {
		return nil, failf(2, "%v", err)
	}
	defer rec.Close()
	p := recording.NewPlayer(rec)
	var s *api.Snapshot
	for p.Len() > 0 && s == nil {
		// A corrupt line shortens the usable part: try again before it.
		s, _ = p.At(p.Len() - 1)
	}
	if s == nil {
		if p.Err != nil {
			return nil, failf(2, "%s: no update to show: %v", r.path, p.Err)
		}
		return nil, failf(2, "%s: a recording without updates", r.path)
	}
	s.Target = fmt.Sprintf("%s (recording %s)", rec.Header.Target, r.path)
	s.Notes = append([]string{fmt.Sprintf("the last update (%d) of the recording %s, at %s; inspect-cli top --replay %s plays it all",
		p.Len(), r.path, s.Time.Format("2006-01-02 15:04:05"), r.path)}, s.Notes...)
	if p.Err != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("the recording is damaged at %v: shown up to there", p.Err))
	} else if err := rec.Check(); err != nil {
		s.Partial = fmt.Sprintf("the recording is damaged at %v: its last update, read from a full one past the damage, is shown; top --replay plays up to the damage", err)
		s.Notes = append(s.Notes, s.Partial)
	}
	r.last = s
	return s, nil
}

// task is the task at the last update, without what a recording does not
// keep.
func (r *recordingFile) task(ctx context.Context, id int64, _ time.Duration) (*api.Task, error) {
	s, err := r.snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	for i := range s.Tasks {
		if s.Tasks[i].ID == id {
			return &s.Tasks[i], nil
		}
	}
	return nil, failf(1, "%s has no goroutine %d at its last update", r.path, id)
}

// writeTask prints the task's numbers at the last update, over the window
// recorded.
func (r *recordingFile) writeTask(w io.Writer, task *api.Task, _ time.Duration) {
	tui.WriteRecordedTask(w, task, r.last.Notes[0], time.Duration(r.last.WindowNS))
}

// sites are the wait sites at the last update.
func (r *recordingFile) sites(ctx context.Context, _ time.Duration) (*siteList, error) {
	s, err := r.snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	return &siteList{target: s.Target, notes: s.Notes, SiteList: api.SiteList{Time: s.Time, WindowNS: s.WindowNS, Sites: s.Sites}}, nil
}

func (r *recordingFile) diagnose(ctx context.Context, d *diagnosis) (string, error) {
	return "the last update of a recording: the rules run here once", diagnoseOnce(ctx, d, r)
}
