package main

import (
	"context"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/recording"
	"github.com/inspectd/inspectd/internal/source/file"
)

// openDump reads a goroutine dump file. A cut or partly corrupt dump still
// gives the goroutines read, with a note.
func openDump(path string) (*file.DumpFile, error) {
	d, err := file.OpenDumpFile(path)
	if err != nil && recording.IsRecording(path) {
		return nil, failf(2, "%s is a recording of the task table (inspect-cli record): it holds no stacks; play it with inspect-cli top --replay %s", path, path)
	}
	if err != nil {
		return nil, failf(2, "%v", err)
	}
	return d, nil
}

// readDump parses a goroutine dump file: its goroutines, and notes on its
// problems.
func readDump(path string) ([]dump.Goroutine, []string, error) {
	d, err := openDump(path)
	if err != nil {
		return nil, nil, err
	}
	gs, notes := d.Goroutines()
	return gs, notes, nil
}

// dumpSnapshot builds the model a dump gives: tasks without window numbers.
func dumpSnapshot(path string) (*api.Snapshot, error) {
	if recording.IsRecording(path) {
		return recordingSnapshot(path)
	}
	d, err := openDump(path)
	if err != nil {
		return nil, err
	}
	return d.Snapshot(context.Background(), 0)
}
