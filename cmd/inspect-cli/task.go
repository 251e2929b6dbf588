package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
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
			t, err := e.resolve(cmd.Context(), args, 1)
			if err != nil {
				return err
			}
			if t.model == nil {
				return t.lacks("task", needModel)
			}
			task, err := t.model.task(cmd.Context(), id, window)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return writeJSON(cmd.OutOrStdout(), task)
			}
			t.model.writeTask(cmd.OutOrStdout(), task, window)
			return nil
		},
	}
	addWindowFlag(cmd, &window)
	return cmd
}
