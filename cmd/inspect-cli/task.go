package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
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
creator and stack.`,
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
			task, noWindow, err := taskOf(cmd, t, id, window)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return writeJSON(cmd.OutOrStdout(), task)
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
	task, err := t.client.Task(cmd.Context(), id, window)
	if err != nil {
		return nil, false, t.fail(err)
	}
	return task, false, nil
}

func writeTask(w io.Writer, t *api.Task, noWindow bool, window time.Duration) {
	state := t.State
	if t.Leaked {
		state += ", leaked (the goroutineleak profile proved it can never wake)"
	}
	if t.Locked {
		state += ", locked to thread"
	}
	fmt.Fprintf(w, "task %d  %s  %s\n", t.ID, t.Name, state)
	kv := table(w)
	if t.WaitReason != "" {
		wait := t.WaitReason
		if t.WaitMinutes > 0 {
			wait += fmt.Sprintf(" for %d minutes", t.WaitMinutes)
		}
		fmt.Fprintf(kv, "wait\t%s\n", wait)
		if site := waitSite(t.Stack); site.Function != "" {
			fmt.Fprintf(kv, "wait site\t%s\n", shortFrame(site))
		}
	}
	fmt.Fprintf(kv, "location\t%s\n", shortFrame(t.Location))
	if t.CreatedBy.Function != "" {
		created := shortFrame(t.CreatedBy)
		if t.ParentID != 0 {
			created += fmt.Sprintf("  in goroutine %d (parent)", t.ParentID)
		}
		fmt.Fprintf(kv, "created by\t%s\n", created)
	}
	if len(t.Labels) > 0 {
		l := labelString(t.Labels)
		if t.LabelsStale {
			l += "  (inherited from its creator: may be stale)"
		}
		fmt.Fprintf(kv, "labels\t%s\n", l)
	}
	if len(t.Warnings) > 0 {
		fmt.Fprintf(kv, "findings\t%s\n", strings.Join(t.Warnings, ", "))
	}
	kv.Flush()

	if noWindow {
		fmt.Fprintln(w, "\nnote:", dumpNote)
	} else {
		s := t.Stats
		fmt.Fprintf(w, "\nover the trace window (--window %s; a young target's flight recorder may hold less):\n", window)
		tw := table(w)
		fmt.Fprintf(tw, "  total\t%s\t\n", dur(s.TotalNS))
		fmt.Fprintf(tw, "  busy\t%s\t%s\n", dur(s.BusyNS), pct(s.BusyNS, s.TotalNS))
		fmt.Fprintf(tw, "  sched\t%s\t%s\n", dur(s.SchedNS), pct(s.SchedNS, s.TotalNS))
		fmt.Fprintf(tw, "  idle\t%s\t%s\n", dur(s.IdleNS), pct(s.IdleNS, s.TotalNS))
		for _, r := range slices.Sorted(maps.Keys(s.IdleByReason)) {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", r, dur(s.IdleByReason[r]), pct(s.IdleByReason[r], s.TotalNS))
		}
		fmt.Fprintf(tw, "  syscall\t%s\t%s\n", dur(s.SyscallNS), pct(s.SyscallNS, s.TotalNS))
		fmt.Fprintf(tw, "  polls\t%d\t\n", s.Polls)
		fmt.Fprintf(tw, "  longest run\t%s\t\n", dur(s.LongestRunNS))
		tw.Flush()
		writeHistogram(w, "run times", t.RunTimes)
		writeHistogram(w, "sched delays", t.SchedDelay)
	}
	if len(t.Stack) > 0 {
		fmt.Fprintln(w, "\nstack:")
		writeStack(w, t.Stack, "  ")
	}
}

// waitSite is the call that blocks: the first frame below the runtime's and
// sync's wait machinery (runtime.gopark, sync.(*Mutex).Lock, ...).
func waitSite(stack []api.Frame) api.Frame {
	for _, f := range stack {
		fn := f.Function
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "time.Sleep") {
			continue
		}
		return f
	}
	return api.Frame{}
}

// writeHistogram prints percentiles and a bar chart of the non-empty range
// of power-of-two buckets.
func writeHistogram(w io.Writer, name string, h *api.Histogram) {
	if h == nil || h.Count == 0 {
		fmt.Fprintf(w, "\n%s: none in the window\n", name)
		return
	}
	fmt.Fprintf(w, "\n%s: n=%d  p50 %s  p90 %s  p99 %s  max %s\n", name, h.Count, dur(h.P50NS), dur(h.P90NS), dur(h.P99NS), dur(h.MaxNS))
	first, last := -1, -1
	var peak int64
	for i, c := range h.Buckets {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
			peak = max(peak, c)
		}
	}
	if first < 0 {
		return
	}
	const width = 30
	tw := table(w)
	for i := first; i <= last; i++ {
		c := h.Buckets[i]
		n := int(c * width / peak)
		if c > 0 && n == 0 {
			n = 1
		}
		fmt.Fprintf(tw, "  %s .. %s\t%s\t%d\n", dur(int64(1)<<i), dur(int64(1)<<(i+1)), strings.Repeat("█", n), c)
	}
	tw.Flush()
}
