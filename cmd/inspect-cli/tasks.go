package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

type tasksOptions struct {
	sort    string
	reverse bool
	filter  string
	state   string
	limit   int
	window  time.Duration
}

// taskStates are the states of a task, as --state takes them.
var taskStates = api.States

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
	f.StringVar(&o.sort, "sort", "id", "sort by "+strings.Join(api.SortNames(), ", ")+" (numbers largest first)")
	f.BoolVar(&o.reverse, "reverse", false, "reverse the order")
	f.StringVar(&o.filter, "filter", "", "keep tasks whose name, labels, location or wait reason contain TEXT, or with label key=value")
	f.StringVar(&o.state, "state", "", "keep tasks in this state: running, runnable, waiting or syscall")
	f.IntVar(&o.limit, "limit", 50, "print at most N tasks (0: all)")
	addWindowFlag(cmd, &o.window)
	return cmd
}

func runTasks(cmd *cobra.Command, e *env, args []string, o tasksOptions) error {
	q := api.Query{Sort: o.sort, Reverse: o.reverse, Filter: o.filter, State: o.state, Limit: o.limit}
	if err := q.Validate(); err != nil {
		return failf(2, "%s", strings.Replace(strings.Replace(err.Error(), "query parameter ", "--", 1), "=", " ", 1))
	}
	t, err := e.resolve(cmd.Context(), args, 0)
	if err != nil {
		return err
	}
	if t.model == nil {
		return t.lacks("tasks", needModel)
	}
	view, err := selectTasks(cmd.Context(), t.model, o.window, q)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if e.output == "json" {
		return writeJSON(w, view)
	}
	writeHeader(w, view)
	// A dump or a poll without a trace has no window.
	writeTaskTable(w, view.Tasks, view.WindowNS == 0)
	if view.Matched > len(view.Tasks) {
		fmt.Fprintf(w, "... %d more of %d matching (--limit 0 shows all)\n", view.Matched-len(view.Tasks), view.Matched)
	} else if view.Matched == 0 {
		fmt.Fprintf(w, "no task matches (of %d)\n", view.TaskCount)
	}
	return nil
}

// selectTasks is the view of the target's tasks that q selects: the
// target selects them when it serves the inspection API (only they travel),
// else they are selected here.
func selectTasks(ctx context.Context, m modeler, window time.Duration, q api.Query) (*api.Snapshot, error) {
	if s, ok := m.(querier); ok {
		return s.query(ctx, window, q)
	}
	snap, err := m.snapshot(ctx, window)
	if err != nil {
		return nil, err
	}
	return q.Select(snap), nil
}

// writeHeader prints the target line and the notes; s is a view
// (api.Query.Select), whose counts are of all its tasks.
func writeHeader(w io.Writer, s *api.Snapshot) {
	var parts []string
	parts = append(parts, "target "+s.Target)
	if s.Process.GoVersion != "" {
		parts = append(parts, s.Process.GoVersion)
	}
	if s.Process.GOMAXPROCS > 0 {
		parts = append(parts, "GOMAXPROCS "+strconv.Itoa(s.Process.GOMAXPROCS))
	}
	var st []string
	for _, k := range append(taskStates, "unknown") {
		if s.ByState[k] > 0 {
			st = append(st, fmt.Sprintf("%s %d", k, s.ByState[k]))
		}
	}
	parts = append(parts, fmt.Sprintf("goroutines %d (%s)", s.TaskCount, strings.Join(st, ", ")))
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
