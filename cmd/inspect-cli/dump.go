package main

import (
	"fmt"
	"os"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/probes"
	"github.com/inspectd/inspectd/internal/recording"
)

// dumpNote is the note line of models built from a goroutine dump.
const dumpNote = "from a goroutine dump: no trace window, so TOTAL, BUSY, SCHED, IDLE and POLLS are unknown (-)"

// readDump parses a goroutine dump file. A cut or partly corrupt dump still
// gives the goroutines read, with a note.
func readDump(file string) ([]probes.Goroutine, []string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, failf(2, "%v", err)
	}
	defer f.Close()
	gs, err := probes.ParseDump(f)
	if len(gs) == 0 && recording.IsRecording(file) {
		return nil, nil, failf(2, "%s is a recording of the task table (inspect-cli record): it holds no stacks; play it with inspect-cli top --replay %s", file, file)
	}
	if len(gs) == 0 {
		return nil, nil, failf(2, "%s: not a goroutine dump: %v", file, err)
	}
	var notes []string
	if err != nil {
		notes = append(notes, fmt.Sprintf("the dump has problems, shown as far as read: %v", err))
	}
	return gs, notes, nil
}

// dumpSnapshot builds the model a dump gives: tasks without window numbers.
func dumpSnapshot(file string) (*api.Snapshot, error) {
	if recording.IsRecording(file) {
		return recordingSnapshot(file)
	}
	gs, notes, err := readDump(file)
	if err != nil {
		return nil, err
	}
	s := &api.Snapshot{Target: file, Source: "goroutine dump", Notes: append([]string{dumpNote}, notes...)}
	if len(notes) > 0 {
		s.Partial = notes[0] // the dump's problems
	}
	// When the dump was taken, as near as the file tells: the diagnosis
	// takes a snapshot without a time for one it has seen already.
	s.Time = time.Now()
	if fi, err := os.Stat(file); err == nil && !fi.ModTime().IsZero() {
		s.Time = fi.ModTime()
	}
	s.Process.Goroutines = int64(len(gs))
	s.Process.Leaked = -1
	for i := range gs {
		s.Tasks = append(s.Tasks, dumpTask(&gs[i]))
	}
	return s, nil
}

func apiFrame(f probes.Frame) api.Frame {
	return api.Frame{Function: f.Func, File: f.File, Line: f.Line}
}

// dumpTask is a goroutine of a dump as a task, with its stack.
func dumpTask(g *probes.Goroutine) api.Task {
	t := api.Task{
		ID: g.ID, Labels: g.Labels, State: g.State.String(), WaitReason: g.WaitReason,
		WaitMinutes: g.WaitMinutes, Leaked: g.Leaked, Locked: g.Locked,
		CreatedBy: apiFrame(g.CreatedBy), ParentID: g.ParentID, Location: apiFrame(g.Location()),
	}
	for _, f := range g.Frames {
		t.Stack = append(t.Stack, apiFrame(f))
	}
	// The name as the daemon gives it: label "task", else workload/role,
	// else the function the goroutine started in (its bottom frame).
	switch w, r := g.Labels["workload"], g.Labels["role"]; {
	case g.Labels["task"] != "":
		t.Name = g.Labels["task"]
	case w != "" || r != "":
		t.Name = w + "/" + r
		if w == "" || r == "" {
			t.Name = w + r
		}
	case len(g.Frames) > 0 && !g.Elided:
		t.Name = g.Frames[len(g.Frames)-1].Func
	default:
		t.Name = g.CreatedBy.Func
	}
	return t
}
