package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/tui"
)

type tasksOptions struct {
	sort    string
	reverse bool
	filter  string
	state   string
	limit   int
	window  time.Duration
}

// taskSorts are the --sort keys: each compares two tasks, ties broken by id.
var taskSorts = map[string]func(a, b *api.Task) int{
	"id":    func(a, b *api.Task) int { return 0 },
	"name":  func(a, b *api.Task) int { return strings.Compare(a.Name, b.Name) },
	"state": func(a, b *api.Task) int { return strings.Compare(a.State, b.State) },
	// Numbers sort largest first, as in tokio-console.
	"total": func(a, b *api.Task) int { return cmp.Compare(b.Stats.TotalNS, a.Stats.TotalNS) },
	"busy":  func(a, b *api.Task) int { return cmp.Compare(b.Stats.BusyNS, a.Stats.BusyNS) },
	"sched": func(a, b *api.Task) int { return cmp.Compare(b.Stats.SchedNS, a.Stats.SchedNS) },
	"idle":  func(a, b *api.Task) int { return cmp.Compare(b.Stats.IdleNS, a.Stats.IdleNS) },
	"polls": func(a, b *api.Task) int { return cmp.Compare(b.Stats.Polls, a.Stats.Polls) },
}

var taskStates = []string{"running", "runnable", "waiting", "syscall"}

func newTasksCmd(e *env) *cobra.Command {
	var o tasksOptions
	cmd := &cobra.Command{
		Use:   "tasks [target]",
		Short: "Print the task table once: every goroutine with its state, times and wait",
		Long: `tasks prints every goroutine of the target as a task, once: its state, name,
how its time in the trace window split into BUSY (running), SCHED (runnable,
waiting for a thread) and IDLE (waiting), how often it was scheduled (POLLS),
what it waits on and for how many minutes (WAIT), where it is (LOCATION: the top
frame in user code) and its pprof labels.

The header line names the target, its Go version, GOMAXPROCS, the goroutines by
state, the window and the source the model was built from, then notes on what
is approximate. From a goroutine dump file there is no window: the times and
polls are unknown. From a program that serves only net/http/pprof, or a gops
agent, the model is computed here: the command waits while the target traces
for --window (a gops agent's trace lasts 5s), and the notes say what the dump
budget (--dump-budget) allowed.

--filter TEXT keeps tasks whose name, labels, location or wait reason contain
TEXT (case-insensitive); --filter key=value keeps tasks with that label.`,
		Example: `  inspect-cli tasks
  inspect-cli tasks 127.0.0.1:7777 --sort busy --limit 10
  inspect-cli tasks --filter workload=blocking-lock --state waiting
  inspect-cli tasks --filter mutex --output json
  inspect-cli tasks goroutines.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(cmd, e, args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.sort, "sort", "id", "sort by id, name, state, total, busy, sched, idle or polls (numbers largest first)")
	f.BoolVar(&o.reverse, "reverse", false, "reverse the order")
	f.StringVar(&o.filter, "filter", "", "keep tasks whose name, labels, location or wait reason contain TEXT, or with label key=value")
	f.StringVar(&o.state, "state", "", "keep tasks in this state: running, runnable, waiting or syscall")
	f.IntVar(&o.limit, "limit", 50, "print at most N tasks (0: all)")
	addWindowFlag(cmd, &o.window)
	return cmd
}

func runTasks(cmd *cobra.Command, e *env, args []string, o tasksOptions) error {
	less, ok := taskSorts[o.sort]
	if !ok {
		return failf(2, "--sort %q: want one of %s", o.sort, strings.Join(slices.Sorted(maps.Keys(taskSorts)), ", "))
	}
	if o.state != "" && !slices.Contains(taskStates, o.state) {
		return failf(2, "--state %q: want one of %s", o.state, strings.Join(taskStates, ", "))
	}
	if o.limit < 0 {
		return failf(2, "--limit %d: want 0 (all) or more", o.limit)
	}
	t, err := e.resolve(cmd.Context(), args, 0)
	if err != nil {
		return err
	}
	if t.model == nil {
		return t.lacks("tasks", needModel)
	}
	snap, err := t.model.snapshot(cmd.Context(), o.window)
	if err != nil {
		return err
	}
	all := snap.Tasks
	tasks := make([]api.Task, 0, len(all))
	for i := range all {
		if (o.state == "" || all[i].State == o.state) && matchTask(&all[i], o.filter) {
			tasks = append(tasks, all[i])
		}
	}
	slices.SortStableFunc(tasks, func(a, b api.Task) int {
		c := less(&a, &b)
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		if o.reverse {
			return -c
		}
		return c
	})
	matched := len(tasks)
	if o.limit > 0 && len(tasks) > o.limit {
		tasks = tasks[:o.limit]
	}
	w := cmd.OutOrStdout()
	if e.output == "json" {
		out := *snap
		out.Tasks = tasks
		return writeJSON(w, out)
	}
	writeHeader(w, snap, all)
	// A dump or a poll without a trace has no window.
	writeTaskTable(w, tasks, snap.WindowNS == 0)
	if matched > len(tasks) {
		fmt.Fprintf(w, "... %d more of %d matching (--limit 0 shows all)\n", matched-len(tasks), matched)
	} else if matched == 0 {
		fmt.Fprintf(w, "no task matches (of %d)\n", len(all))
	}
	return nil
}

// matchTask applies --filter.
var matchTask = tui.MatchTask

// writeHeader prints the target line and the notes.
func writeHeader(w io.Writer, s *api.Snapshot, tasks []api.Task) {
	var parts []string
	parts = append(parts, "target "+s.Target)
	if s.Process.GoVersion != "" {
		parts = append(parts, s.Process.GoVersion)
	}
	if s.Process.GOMAXPROCS > 0 {
		parts = append(parts, "GOMAXPROCS "+strconv.Itoa(s.Process.GOMAXPROCS))
	}
	byState := map[string]int{}
	for i := range tasks {
		byState[tasks[i].State]++
	}
	var st []string
	for _, k := range append(taskStates, "unknown") {
		if byState[k] > 0 {
			st = append(st, fmt.Sprintf("%s %d", k, byState[k]))
		}
	}
	parts = append(parts, fmt.Sprintf("goroutines %d (%s)", len(tasks), strings.Join(st, ", ")))
	if s.Process.Leaked > 0 {
		parts = append(parts, fmt.Sprintf("leaked %d", s.Process.Leaked))
	}
	if s.WindowNS > 0 {
		parts = append(parts, "window "+format.Nanos(s.WindowNS))
	}
	parts = append(parts, "source "+s.Source)
	fmt.Fprintln(w, strings.Join(parts, "  "))
	for _, n := range s.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func writeTaskTable(w io.Writer, tasks []api.Task, noWindow bool) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSTATE\tNAME\tTOTAL\tBUSY\tSCHED\tIDLE\tPOLLS\tWAIT\tLOCATION\tLABELS")
	for i := range tasks {
		t := &tasks[i]
		total, busy, sched, idle, polls := format.Nanos(t.Stats.TotalNS), format.Nanos(t.Stats.BusyNS), format.Nanos(t.Stats.SchedNS), format.Nanos(t.Stats.IdleNS), strconv.FormatInt(t.Stats.Polls, 10)
		if noWindow {
			total, busy, sched, idle, polls = "-", "-", "-", "-", "-"
		}
		state := t.State
		if t.Leaked {
			state += "(leaked)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, state, clip(t.Name, 40),
			total, busy, sched, idle, polls, waitString(t), clip(format.Frame(t.Location), 60), clip(labelString(t.Labels), 60))
	}
	tw.Flush()
}
