package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/format"
)

type diagnoseOptions struct {
	wait, window time.Duration
	failFast     bool
	cfg          diagnose.Config
	thresholds   []string
}

func newDiagnoseCmd(e *env) *cobra.Command {
	var o diagnoseOptions
	cmd := &cobra.Command{
		Use:   "diagnose [target]",
		Short: "Say what is wrong with the target's goroutines: leaks, deadlocks, contention, ...; exit 1 on a warning",
		Long: `diagnose watches the target for --wait and prints the findings of the
diagnosis rules: each names the bug, the file:line behind it, the evidence
(goroutines, sites, figures) and what to change.

Against inspectd or a program embedding its agent, the rules run in the
target and diagnose reads its findings. Against a program that only serves
net/http/pprof, a gops agent or a dump file, they run here on the model
computed here, one snapshot per --window: rules that need growth or
persistence need a few snapshots, so give --wait several windows.

A saved execution trace file is diagnosed one --window after another from its
start to its end, as the program would have been while it was traced (--wait
does not apply): a rule that waits for goroutines stuck for N (deadlock,
goroutine-leak: 3s) needs a trace longer than N. A trace has no labels, heap
or mutex profile: the rules that need them say what is missing.

A live target is given a bounded time: diagnose ends within --wait, plus
--window, plus a margin of 30s, however many goroutines the target has and
however slowly it answers. Each snapshot (or, against inspectd, each read of
its findings) may take its window and 30s; one that fails or takes longer is
dropped, and the run goes on: the findings of the others are printed, with a
"partial input:" line that says which snapshots were missed and why.

Exit status: 0 when no finding is a warning or critical, 1 when one is (for
scripts and CI), 2 when the target cannot be reached or read (not one
snapshot could be had).

Rules: ` + strings.Join(diagnose.Rules(), ", ") + `.
--allow and --deny pick rules by id, --threshold sets one (rule.name=value;
the README lists them). Against inspectd, thresholds are the daemon's own
(inspectd --diagnose-threshold); --allow and --deny filter what it reports.`,
		Example: `  inspect-cli diagnose
  inspect-cli diagnose 127.0.0.1:7777 --wait 10s
  inspect-cli diagnose http://service:6060 --wait 20s --window 2s --deny busy-poll
  inspect-cli diagnose http://service:6060 --threshold goroutine-leak.stuck_for=10s
  inspect-cli diagnose goroutines.txt --output json
  inspect-cli diagnose run.trace --window 1s                 # a saved execution trace`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, kv := range o.thresholds {
				if err := o.cfg.SetThreshold(kv); err != nil {
					return failf(2, "--threshold %v", err)
				}
			}
			if err := o.cfg.Validate(); err != nil {
				return failf(2, "%v", err)
			}
			if o.wait < 0 {
				return failf(2, "--wait %v: want 0 or more", o.wait)
			}
			d := newDiagnosis(o, e.stderr)
			// The whole run, asking what the target is included, ends by
			// d.end: a target that hangs costs its snapshots, not more.
			ctx, cancel := context.WithDeadline(cmd.Context(), d.end())
			defer cancel()
			t, err := e.resolve(ctx, args, 0)
			if err != nil {
				return err
			}
			if t.findings == nil {
				return t.lacks("diagnose", needModel)
			}
			if isTerminal(e.stderr) && o.wait > 0 && !t.saved {
				fmt.Fprintf(e.stderr, "diagnosing %s for %s...\n", t.name, o.wait)
			}
			if t.saved {
				// A file is read to its end, however long that takes.
				ctx = cmd.Context()
			}
			source, err := t.findings.diagnose(ctx, d)
			if err != nil {
				return err
			}
			d.partial = append(d.partial, d.missedLines()...)
			fs := sortFindings(d.seen)
			if e.output == "json" {
				if err := writeJSON(e.stdout, api.FindingList{Time: time.Now(), Findings: fs, Partial: d.partial}); err != nil {
					return err
				}
			} else {
				over := o.wait.String()
				if t.saved {
					over = "" // a file is read as it is, not watched
				}
				writeFindings(e.stdout, t.name, source, over, fs, d.partial)
			}
			for _, f := range fs {
				if diagnose.AtLeastWarning(f) {
					return &cliError{code: 1} // the findings say why
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.wait, "wait", 10*time.Second, "how long to watch the target; findings seen at any time count")
	f.BoolVar(&o.failFast, "fail-fast", false, "stop at the first warning instead of watching for all of --wait")
	f.DurationVar(&o.window, "window", 2*time.Second, "trace window of each snapshot (a remote target is traced this long per snapshot)")
	f.StringSliceVar(&o.cfg.Allow, "allow", nil, "run (or report) only these rules")
	f.StringSliceVar(&o.cfg.Deny, "deny", nil, "never run (or report) these rules")
	f.StringArrayVar(&o.thresholds, "threshold", nil, "set a rule threshold as rule.name=value (repeatable)")
	return cmd
}

// diagnosis is one run of diagnose: its options, and the findings seen
// so far (the latest form of each, those that cleared included).
type diagnosis struct {
	o     diagnoseOptions
	began time.Time
	// missed are the snapshots that failed or took too long, by why.
	missed     map[string][]int
	missedWhys []string // in the order first seen
	lastWhy    string
	stderr     io.Writer // progress, on a terminal
	seen       map[string]api.Finding
	deadline   time.Time // the end of --wait (now, after --fail-fast's warning)
	// partial are the inputs cut short or corrupt, and how: the findings
	// are of what could be read.
	partial []string
}

func newDiagnosis(o diagnoseOptions, stderr io.Writer) *diagnosis {
	now := time.Now()
	return &diagnosis{o: o, stderr: stderr, seen: map[string]api.Finding{}, deadline: now.Add(o.wait), began: now, missed: map[string][]int{}}
}

// diagnoseMargin is what a snapshot of a live target may take beyond its
// window (the requests, the dump, the parsing here, the rules), and what
// the run may take beyond --wait and one window: the target's goroutine
// count and speed change how many snapshots fit, not when the run ends.
const diagnoseMargin = 30 * time.Second

// end is when the run ends, whatever the target does.
func (d *diagnosis) end() time.Time { return d.began.Add(d.o.wait + d.o.window + diagnoseMargin) }

// snapshotEnd is the deadline of a snapshot that starts now.
func (d *diagnosis) snapshotEnd() time.Time {
	return minTime(time.Now().Add(d.o.window+diagnoseMargin), d.end())
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// miss records that snapshot n was not had, and why.
func (d *diagnosis) miss(n int, why string) {
	d.lastWhy = why
	if _, ok := d.missed[why]; !ok {
		d.missedWhys = append(d.missedWhys, why)
	}
	d.missed[why] = append(d.missed[why], n)
}

// missedLines say which snapshots were missed, one line per reason.
func (d *diagnosis) missedLines() []string {
	var out []string
	for _, why := range d.missedWhys {
		ns := d.missed[why]
		ids := make([]string, len(ns))
		for i, n := range ns {
			ids[i] = fmt.Sprint(n)
		}
		what := "snapshot " + ids[0]
		if len(ns) > 1 {
			what = "snapshots " + strings.Join(ids, ", ")
		}
		out = append(out, fmt.Sprintf("%s missed: %s; the findings are of the others", what, why))
	}
	return out
}

// isTimeout says err is a want of time: the snapshot's deadline, or a
// target that took the request and did not answer in time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || api.IsAnswerTimeout(err) || errors.As(err, &ne) && ne.Timeout()
}

// missWhy says why a snapshot that took up to bound failed; stuck is
// what it waited on then ("" if nothing: it was parsing); fail is the
// target's one line for other errors.
func (d *diagnosis) missWhy(err error, bound time.Duration, stuck string, fail func(error) error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		if stuck == "" {
			stuck = "no request under way: reading what came"
		}
		if bound >= d.o.window+diagnoseMargin {
			return fmt.Sprintf("not done within %s (its %s window and %s): %s", format.Duration(bound), format.Duration(d.o.window), format.Duration(diagnoseMargin), stuck)
		}
		return fmt.Sprintf("cut at the run's end (--wait %s, --window %s and %s) after %s: %s", d.o.wait, d.o.window, format.Duration(diagnoseMargin), format.Duration(bound), stuck)
	}
	var ce *cliError
	if errors.As(fail(err), &ce) {
		return ce.msg
	}
	return oneLine(err)
}

// nothing is the error of a run that had not one snapshot: err is why the
// last one was missed.
func (d *diagnosis) nothing(t *target, err error, fail func(error) error) error {
	if err == nil {
		return failf(2, "%s: no snapshot within %s", t.name, format.Duration(time.Since(d.began)))
	}
	if isTimeout(err) {
		return failf(2, "%s gave no snapshot in %s: %s", t.name, format.Duration(time.Since(d.began).Round(time.Second)), d.lastWhy)
	}
	return fail(err)
}

// within runs f under deadline, and stops waiting for it then, whatever
// it is stuck in (a request, a parse, the rules on a huge snapshot): it
// costs that snapshot, not the run. late, if not nil, runs at the deadline
// while f's requests still wait (to say which). f must only touch what is
// safe to touch after within returned.
func within[T any](ctx context.Context, deadline time.Time, f func(context.Context) (T, error), late func()) (T, error) {
	// f's own deadline comes a little later, so that what it waits on is
	// still there for late to see.
	fctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Second))
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(fctx)
		done <- result{v, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var zero T
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if late != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			late() // the run's end
		}
		return zero, ctx.Err()
	case <-timer.C:
		if late != nil {
			late()
		}
		return zero, context.DeadlineExceeded
	}
}

// add records findings seen, as --allow and --deny pick them.
func (d *diagnosis) add(fs []api.Finding) {
	for _, f := range fs {
		if (len(d.o.cfg.Allow) == 0 || slices.Contains(d.o.cfg.Allow, f.Rule)) && !slices.Contains(d.o.cfg.Deny, f.Rule) {
			id := f.ID
			if id == "" { // an inspectd from before findings had one
				id = f.Rule + "|" + f.FirstSeen.String()
			}
			d.seen[id] = f
			if d.o.failFast && diagnose.AtLeastWarning(f) {
				d.deadline = time.Now() // seen enough
			}
		}
	}
}

// note records that s was built from partial input.
func (d *diagnosis) note(s *api.Snapshot) {
	if s.Partial != "" && !slices.Contains(d.partial, s.Partial) {
		d.partial = append(d.partial, s.Partial)
	}
}

// watching says whether the wait goes on.
func (d *diagnosis) watching() bool { return time.Now().Before(d.deadline) }

// left is what remains of the wait.
func (d *diagnosis) left() time.Duration { return time.Until(d.deadline) }

// stopped says whether --fail-fast has seen enough (or waited all it may).
func (d *diagnosis) stopped() bool { return d.o.failFast && !d.watching() }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func sortFindings(m map[string]api.Finding) []api.Finding {
	fs := make([]api.Finding, 0, len(m))
	for _, f := range m {
		fs = append(fs, f)
	}
	rank := map[string]int{diagnose.Critical: 0, diagnose.Warning: 1, diagnose.Info: 2}
	slices.SortFunc(fs, func(a, b api.Finding) int {
		return cmp.Or(cmp.Compare(rank[a.Severity], rank[b.Severity]), a.FirstSeen.Compare(b.FirstSeen), strings.Compare(a.Rule, b.Rule))
	})
	return fs
}

// writeFindings prints findings for a reader: what, where, why, what to do.
// writeFindings prints fs; over says how long the target was watched ("" for a file).
func writeFindings(w io.Writer, target, source, over string, fs []api.Finding, partial []string) {
	if over != "" {
		over = " over " + over
	}
	if len(fs) == 0 {
		fmt.Fprintf(w, "no findings for %s%s (%s)\n", target, over, source)
	} else {
		fmt.Fprintf(w, "%s for %s%s (%s)\n", plural(len(fs), "finding"), target, over, source)
	}
	for _, p := range partial {
		fmt.Fprintf(w, "partial input: %s\n", p)
	}
	for _, f := range fs {
		fmt.Fprintf(w, "\n%s  %s  %s\n", strings.ToUpper(f.Severity), f.Rule, f.Title)
		if f.Message != "" {
			fmt.Fprintf(w, "  %s\n", f.Message)
		}
		for _, s := range f.Evidence.Sites {
			fmt.Fprintf(w, "  at %s\n", format.Frame(s))
		}
		if n := len(f.Evidence.Tasks); n > 0 {
			ids := make([]string, 0, 10)
			for _, id := range f.Evidence.Tasks[:min(n, 10)] {
				ids = append(ids, fmt.Sprint(id))
			}
			more := ""
			if all := f.TaskCount(); all > 10 {
				more = fmt.Sprintf(" and %d more", all-10)
			}
			fmt.Fprintf(w, "  goroutines: %s%s\n", strings.Join(ids, ", "), more)
		}
		for _, m := range f.Evidence.Missing {
			fmt.Fprintf(w, "  missing: %s\n", m)
		}
		if f.Advice != "" {
			fmt.Fprintf(w, "  advice: %s\n", f.Advice)
		}
		if f.Lesson != "" {
			fmt.Fprintf(w, "  lesson: %s (inspectd workloads)\n", f.Lesson)
		}
		fmt.Fprintf(w, "  seen: %s to %s\n", f.FirstSeen.Local().Format("15:04:05"), f.LastSeen.Local().Format("15:04:05"))
	}
}

// plural is "1 window", "2 windows".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
