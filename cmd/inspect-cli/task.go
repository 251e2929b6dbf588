package main

import (
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source/file"
	"github.com/inspectd/inspectd/internal/tui"
)

func newTaskCmd(e *env) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "task <id> [target]",
		Short: "Print one task: its numbers, run-time and scheduling-delay histograms, and full stack",
		Long: `task prints one goroutine in detail: its state and wait (reason, minutes and
site), labels, where it was created and by which goroutine, its numbers over the
trace window with their share of the total, the histograms of its run times (how
long it ran each time it was scheduled) and of its scheduling delays (how long it
waited for a thread once runnable), as p50/p90/p99/max and a bar chart of
power-of-two buckets, and its full stack.

From a goroutine dump file it prints what a dump holds: state, wait, labels,
creator and stack. From a recording (inspect-cli record) it prints the task at
the last update: its numbers, without histograms or stack.`,
		Example: `  inspect-cli task 42
  inspect-cli task 42 127.0.0.1:7777 --window 10s
  inspect-cli task 42 --output json
  inspect-cli task 19 goroutines.txt`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return failf(2, "task id %q: want a goroutine id (a positive integer)", args[0])
			}
			t, err := e.resolveTarget(args, 1)
			if err != nil {
				return err
			}
			if t.isRecording() {
				return recordedTask(cmd, e, t.file, id)
			}
			task, noWindow, err := taskOf(cmd, t, id, window)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return writeJSON(cmd.OutOrStdout(), task)
			}
			if t.trace != nil {
				window = 0 // the whole trace
			}
			writeTask(cmd.OutOrStdout(), task, noWindow, window)
			return nil
		},
	}
	addWindowFlag(cmd, &window)
	return cmd
}

// taskOf reads one task; noWindow says it came from a dump.
func taskOf(cmd *cobra.Command, t *target, id int64, window time.Duration) (*api.Task, bool, error) {
	if t.file != "" {
		snap, err := dumpSnapshot(t.file)
		if err != nil {
			return nil, true, err
		}
		for i := range snap.Tasks {
			if snap.Tasks[i].ID == id {
				return &snap.Tasks[i], true, nil
			}
		}
		return nil, true, failf(1, "%s has no goroutine %d", t.file, id)
	}
	if t.src != nil {
		task, err := t.remoteTask(cmd, id, window)
		return task, false, err
	}
	task, err := t.client.Task(cmd.Context(), id, window)
	if t.switchRemote(cmd.Context(), err, false) {
		task, err := t.remoteTask(cmd, id, window)
		return task, false, err
	}
	if err != nil {
		return nil, false, t.fail(err)
	}
	return task, false, nil
}

func writeTask(w io.Writer, t *api.Task, noWindow bool, window time.Duration) {
	note := ""
	if noWindow {
		note = file.DumpNote
	}
	tui.WriteTask(w, t, note, window)
}
