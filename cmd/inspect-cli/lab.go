package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

type labOptions struct {
	yes           bool
	detect, clear time.Duration
	stopAfter     time.Duration // how long a lesson whose bug shows after a stop runs first
	rows          int
}

func newLabCmd(e *env) *cobra.Command {
	o := labOptions{stopAfter: 3 * time.Second}
	cmd := &cobra.Command{
		Use:   "lab [LESSON] [target]",
		Short: "Walk through the lab's lessons: each bug, the finding that names it, its fix, the finding gone",
		Long: `lab walks through the lessons of an inspectd daemon's lab, one broken workload
at a time. For each it says what the lesson teaches, starts the broken form,
waits for the finding of the rule that names the bug and shows it with the rows
of top that matter (the goroutines of the workload, those the finding names
marked !) and the workload's numbers (operations per second, and the figures it
reports, such as a service's requests per second and p99). Then it waits for a
key, applies the fix (the parameter fix: true, the corrected code of the
lesson), waits for the finding to clear, shows the rows and numbers again, and
stops the workload (one that ran before the walk is started again as it ran).

LESSON is a broken workload (leak, web-lock, ...) or a lesson of the talk by
its name (tokio_select, tokio_blocking, ...), which walks through each of its
broken workloads; without it, lab walks through them all. A bug that shows only
once its workload stops (ignored-cancel) is stopped before the finding is
awaited; a leak that cannot be reclaimed (leak, deadlock) keeps its finding
after the fix, and lab shows that it stops growing instead.

Keys: any key goes on, q quits (the lesson's workload is stopped). --yes goes
on by itself (for scripts and tests); --output json prints, at the end, what
each lesson showed: the finding, when it came and cleared, the numbers before
and after. Progress goes to stderr.

Exit status: 0 when every lesson went as it should (its finding came, then
cleared, or stayed for a leak kept for good), 1 when one did not, 2 when the
target is not an inspectd daemon or the lesson is unknown.`,
		Example: `  inspect-cli lab                       # every lesson, a key between steps
  inspect-cli lab web-lock
  inspect-cli lab tokio_select 127.0.0.1:7777
  inspect-cli lab busy-poll --yes --output json`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lesson, targetArgs := splitLabArgs(args)
			if o.detect <= 0 || o.clear <= 0 {
				return failf(2, "--detect and --clear: want durations above 0")
			}
			t, err := e.resolve(cmd.Context(), targetArgs, 0)
			if err != nil {
				return err
			}
			if t.lab == nil || t.model == nil {
				return t.lacks("lab", needLab)
			}
			return runLab(cmd.Context(), e, t, lesson, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.yes, "yes", false, "go on without waiting for keys")
	f.DurationVar(&o.detect, "detect", 60*time.Second, "how long to wait for a lesson's finding")
	f.DurationVar(&o.clear, "clear", 60*time.Second, "how long to wait for the finding to clear after the fix")
	f.IntVar(&o.rows, "rows", 8, "rows of top to show per lesson")
	return cmd
}

// splitLabArgs tells the lesson from the target: a target has a colon or
// a slash (host:port, a URL, a file path) or is a pid; a lesson has none.
func splitLabArgs(args []string) (lesson string, target []string) {
	switch len(args) {
	case 2:
		return args[0], args[1:]
	case 1:
		if _, err := strconv.Atoi(args[0]); err == nil || strings.ContainsAny(args[0], ":/") {
			return "", args
		}
		return args[0], nil
	}
	return "", nil
}

// labLesson is what one lesson showed, as --output json prints it.
type labLesson struct {
	Name   string `json:"name"`
	Lesson string `json:"lesson"`
	Rule   string `json:"rule"`
	Fix    string `json:"fix"`
	// Found: the rule's finding came, FoundAfter seconds after the start.
	Found      bool         `json:"found"`
	FoundAfter float64      `json:"found_after_seconds,omitempty"`
	Finding    *api.Finding `json:"finding,omitempty"`
	Before     *labNumbers  `json:"before,omitempty"`
	// Cleared: the finding was gone ClearedAfter seconds after the fix.
	// Stays: it is of goroutines leaked for good, and stayed, as it must.
	Cleared      bool         `json:"cleared"`
	ClearedAfter float64      `json:"cleared_after_seconds,omitempty"`
	Stays        bool         `json:"stays,omitempty"`
	FindingAfter *api.Finding `json:"finding_after,omitempty"`
	After        *labNumbers  `json:"after,omitempty"`
	// OK: the lesson went as it should; Error says why not.
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// labNumbers are a workload's numbers at one moment.
type labNumbers struct {
	Goroutines   int                `json:"goroutines"`
	OpsPerSecond float64            `json:"operations_per_second"`
	Figures      map[string]float64 `json:"figures,omitempty"`
	Rows         []api.Task         `json:"rows,omitempty"`
}

// labRun is one walk: where it writes, what it asks, and what it saw.
type labRun struct {
	e    *env
	t    *target
	o    labOptions
	out  io.Writer // the lessons' text: stdout, or nowhere with --output json
	prog *labProgress
	keys *bufio.Reader
}

// errLabQuit is the learner's q.
var errLabQuit = errors.New("quit")

func runLab(ctx context.Context, e *env, t *target, name string, o labOptions) error {
	all, err := t.lab.Workloads(ctx)
	if err != nil {
		return t.fail(err)
	}
	lessons := pickLessons(all, name)
	if len(lessons) == 0 {
		var names []string
		for _, w := range all {
			if w.Kind == "broken" {
				names = append(names, w.Name)
			}
		}
		return failf(2, "no lesson %q: give a broken workload (%s) or a lesson of the talk by its name", name, strings.Join(names, ", "))
	}
	r := &labRun{e: e, t: t, o: o, out: e.stdout, prog: &labProgress{w: e.stderr, tty: isTerminal(e.stderr)}}
	if e.output == "json" {
		r.out = io.Discard
	}
	if e.stdin != nil {
		r.keys = bufio.NewReader(e.stdin)
	}
	var done []labLesson
	failed := false
	for i, w := range lessons {
		res, err := r.lesson(ctx, i, len(lessons), w)
		done = append(done, res)
		failed = failed || !res.OK
		if errors.Is(err, errLabQuit) {
			break
		}
		if err != nil {
			return err
		}
		if i < len(lessons)-1 {
			if err := r.pause("Press any key for the next lesson, q to quit."); err != nil {
				break
			}
		}
	}
	if e.output == "json" {
		if err := writeJSON(e.stdout, struct {
			Target  string      `json:"target"`
			Lessons []labLesson `json:"lessons"`
		}{t.name, done}); err != nil {
			return err
		}
	}
	if failed {
		return &cliError{code: 1} // the lessons said what went wrong
	}
	return nil
}

// pickLessons returns the broken workloads that name is (a workload, or a
// lesson of the talk they cite), all of them for "".
func pickLessons(all []api.Workload, name string) []api.Workload {
	var out []api.Workload
	for _, w := range all {
		if w.Kind != "broken" {
			continue
		}
		match := name == "" || w.Name == name
		for _, l := range strings.Split(w.Lesson, ",") {
			match = match || strings.EqualFold(strings.TrimSpace(l), name)
		}
		if match {
			out = append(out, w)
		}
	}
	return out
}

// lesson walks through one broken workload.
func (r *labRun) lesson(ctx context.Context, i, n int, w api.Workload) (res labLesson, err error) {
	res = labLesson{Name: w.Name, Lesson: w.Lesson, Rule: w.Rule, Fix: w.Fix}
	out, lab := r.out, r.t.lab
	fmt.Fprintf(out, "\n━━ Lesson %d of %d: %s (the talk: %s) ━━\n", i+1, n, w.Name, w.Lesson)
	wrap(out, w.Description, "  ")
	if w.Caps != "" {
		wrap(out, "Caps: "+w.Caps, "  ")
	}
	fmt.Fprintf(out, "  The finding that names the bug: %s.\n", w.Rule)

	before := w // as it was before the walk, to put it back
	defer func() {
		// Stop it (with a context of its own: an interrupt must not leave
		// the broken form running), and put back what ran before.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cur, gerr := lab.Workload(cctx, w.Name); gerr == nil && cur.Running {
			if st, serr := lab.StopWorkload(cctx, w.Name); serr == nil {
				fmt.Fprintf(out, "\n▶ stopped %s (it ran with %s)\n", w.Name, ranString(st.Params))
			}
		}
		if before.Running {
			if _, serr := lab.StartWorkload(cctx, w.Name, paramValues(before.Params)); serr == nil {
				fmt.Fprintf(out, "▶ started %s again as it ran before the lesson (%s)\n", w.Name, paramString(before.Params))
			}
		}
	}()

	// The broken form.
	fmt.Fprintf(out, "\n▶ starting %s with fix=false\n", w.Name)
	if w.Running {
		_, err = lab.ChangeParams(ctx, w.Name, map[string]any{"fix": false})
	} else {
		_, err = lab.StartWorkload(ctx, w.Name, map[string]any{"fix": false})
	}
	if err != nil {
		return res, r.t.fail(err)
	}
	started := time.Now()
	if w.ShowsAfterStop {
		fmt.Fprintf(out, "  its bug shows once it stops: letting it run %s, then stopping it\n", format.Duration(r.o.stopAfter))
		if !r.prog.sleep(ctx, r.o.stopAfter, "running "+w.Name) {
			return res, failf(exitInterrupted, "interrupted")
		}
		if _, err := lab.StopWorkload(ctx, w.Name); err != nil {
			return res, r.t.fail(err)
		}
		started = time.Now()
	}
	f, err := r.waitFinding(ctx, w, started)
	if err != nil {
		return res, err
	}
	if f == nil {
		res.Error = fmt.Sprintf("no %s finding within %s", w.Rule, format.Duration(r.o.detect))
		fmt.Fprintf(out, "  %s: the lesson cannot go on (a loaded machine? try --detect 2m)\n", res.Error)
		return res, nil
	}
	res.Found, res.FoundAfter, res.Finding = true, seconds(time.Since(started)), f
	res.Before, err = r.numbers(ctx, w, f)
	if err != nil {
		return res, err
	}
	fmt.Fprintln(out)
	writeFindings(out, r.t.name, "the target's own rules", "", []api.Finding{*f}, nil)
	r.writeNumbers(w, res.Before, nil, "")
	if err := r.pause("Look around (inspect-cli top, in another terminal). Press any key to apply the fix, q to quit."); err != nil {
		return res, err
	}

	// The fix.
	fmt.Fprintf(out, "\n▶ the fix: %s\n", w.Fix)
	fmt.Fprintf(out, "  POST /api/v1/workloads/%s/params {\"params\": {\"fix\": true}}\n", w.Name)
	if w.ShowsAfterStop {
		// It is stopped: start the fixed form, and stop it as the broken
		// one was, to show that nothing outlives it now.
		if _, err := lab.StartWorkload(ctx, w.Name, map[string]any{"fix": true}); err != nil {
			return res, r.t.fail(err)
		}
		if !r.prog.sleep(ctx, r.o.stopAfter, "running the fixed "+w.Name) {
			return res, failf(exitInterrupted, "interrupted")
		}
		if _, err := lab.StopWorkload(ctx, w.Name); err != nil {
			return res, r.t.fail(err)
		}
	} else if _, err := lab.ChangeParams(ctx, w.Name, map[string]any{"fix": true}); err != nil {
		return res, r.t.fail(err)
	}
	fixed := time.Now()
	if w.LeaksForGood {
		after, grew, err := r.watchStays(ctx, f)
		if err != nil {
			return res, err
		}
		res.FindingAfter = after
		res.Stays = after != nil && !grew
		if res.Stays {
			fmt.Fprintf(out, "  the finding stays, as it must: the goroutines leaked before the fix can never be reclaimed "+
				"(restart the process to free them); %d goroutines when it was found, %d now, and no more since the fix\n",
				f.TaskCount(), after.TaskCount())
		} else {
			res.Error = "the finding of goroutines leaked for good went on growing after the fix, or went away"
			fmt.Fprintf(out, "  %s\n", res.Error)
		}
	} else {
		gone, err := r.waitCleared(ctx, f, fixed)
		if err != nil {
			return res, err
		}
		if gone {
			res.Cleared, res.ClearedAfter = true, seconds(time.Since(fixed))
		} else {
			res.Error = fmt.Sprintf("the %s finding did not clear within %s of the fix", w.Rule, format.Duration(r.o.clear))
			fmt.Fprintf(out, "  %s\n", res.Error)
		}
	}
	res.After, err = r.numbers(ctx, w, f)
	if err != nil {
		return res, err
	}
	r.writeNumbers(w, res.After, res.Before, "now ")
	res.OK = res.Error == ""
	return res, nil
}

// waitFinding waits up to --detect for a finding of w's rule and returns
// the one that names w's goroutines (or the rule's only one); nil if none.
func (r *labRun) waitFinding(ctx context.Context, w api.Workload, since time.Time) (*api.Finding, error) {
	what := fmt.Sprintf("waiting for the finding %s", w.Rule)
	defer r.prog.done()
	for deadline := since.Add(r.o.detect); ; {
		fl, err := r.t.lab.Findings(ctx)
		if err != nil {
			return nil, r.t.fail(err)
		}
		var ofRule []api.Finding
		for _, f := range fl.Findings {
			if f.Rule == w.Rule {
				ofRule = append(ofRule, f)
			}
		}
		if len(ofRule) > 0 {
			f, err := r.ofWorkload(ctx, w.Name, ofRule)
			if err != nil {
				return nil, err
			}
			if f != nil {
				r.prog.finish(fmt.Sprintf("%s: seen after %s", what, format.Duration(time.Since(since))))
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			r.prog.finish(fmt.Sprintf("%s: none after %s", what, format.Duration(time.Since(since))))
			return nil, nil
		}
		if !r.prog.sleep(ctx, time.Second, fmt.Sprintf("%s (%s)", what, format.Duration(time.Since(since)))) {
			return nil, failf(exitInterrupted, "interrupted")
		}
	}
}

// ofWorkload picks, of the findings of one rule, the one that names
// goroutines of workload name; a finding that names no goroutine (heap
// growth, threads) counts when it is the rule's only one.
func (r *labRun) ofWorkload(ctx context.Context, name string, fs []api.Finding) (*api.Finding, error) {
	s, err := r.t.model.snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	mine := map[int64]bool{}
	for _, t := range s.Tasks {
		if t.Labels["workload"] == name {
			mine[t.ID] = true
		}
	}
	for i := range fs {
		for _, id := range fs[i].Evidence.Tasks {
			if mine[id] {
				return &fs[i], nil
			}
		}
	}
	if len(fs) == 1 && len(fs[0].Evidence.Tasks) == 0 {
		return &fs[0], nil
	}
	return nil, nil
}

// waitCleared waits up to --clear for finding f to be gone.
func (r *labRun) waitCleared(ctx context.Context, f *api.Finding, since time.Time) (bool, error) {
	what := "waiting for the finding to clear"
	defer r.prog.done()
	for deadline := since.Add(r.o.clear); ; {
		fl, err := r.t.lab.Findings(ctx)
		if err != nil {
			return false, r.t.fail(err)
		}
		if !slices.ContainsFunc(fl.Findings, func(g api.Finding) bool { return sameFinding(g, *f) }) {
			r.prog.finish(fmt.Sprintf("%s: cleared after %s", what, format.Duration(time.Since(since))))
			return true, nil
		}
		if time.Now().After(deadline) {
			r.prog.finish(fmt.Sprintf("%s: still there after %s", what, format.Duration(time.Since(since))))
			return false, nil
		}
		if !r.prog.sleep(ctx, time.Second, fmt.Sprintf("%s (%s)", what, format.Duration(time.Since(since)))) {
			return false, failf(exitInterrupted, "interrupted")
		}
	}
}

// watchStays watches a finding of goroutines leaked for good after the
// fix: 5s on, once the goroutines stuck just before the fix count too, and
// 10s later. It returns the finding then, and whether it grew meanwhile
// (nil if it went away).
func (r *labRun) watchStays(ctx context.Context, f *api.Finding) (*api.Finding, bool, error) {
	defer r.prog.done()
	find := func() (*api.Finding, error) {
		fl, err := r.t.lab.Findings(ctx)
		if err != nil {
			return nil, r.t.fail(err)
		}
		for _, g := range fl.Findings {
			if sameFinding(g, *f) {
				return &g, nil
			}
		}
		return nil, nil
	}
	var first *api.Finding
	for _, wait := range []time.Duration{5 * time.Second, 10 * time.Second} {
		if !r.prog.sleep(ctx, wait, "watching the finding after the fix") {
			return nil, false, failf(exitInterrupted, "interrupted")
		}
		g, err := find()
		if err != nil || g == nil {
			r.prog.finish("watching the finding after the fix: it went away")
			return nil, false, err
		}
		if first == nil {
			first = g
			continue
		}
		grew := g.TaskCount() > first.TaskCount()
		r.prog.finish(fmt.Sprintf("watching the finding after the fix: it stays, %d goroutines, %d %s before",
			g.TaskCount(), first.TaskCount(), format.Duration(wait)))
		return g, grew, nil
	}
	return first, false, nil
}

func sameFinding(a, b api.Finding) bool {
	if a.ID != "" || b.ID != "" {
		return a.ID == b.ID
	}
	return a.Rule == b.Rule && a.FirstSeen.Equal(b.FirstSeen)
}

// numbers measures w now: its operations per second over two seconds, its
// figures, and its goroutines as top shows them (those f names first).
func (r *labRun) numbers(ctx context.Context, w api.Workload, f *api.Finding) (*labNumbers, error) {
	lab := r.t.lab
	s, err := r.t.model.snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	first, err := lab.Workload(ctx, w.Name)
	if err != nil {
		return nil, r.t.fail(err)
	}
	began := time.Now()
	if !r.prog.sleep(ctx, 2*time.Second, "measuring "+w.Name) {
		return nil, failf(exitInterrupted, "interrupted")
	}
	r.prog.done()
	cur, err := lab.Workload(ctx, w.Name)
	if err != nil {
		return nil, r.t.fail(err)
	}
	n := &labNumbers{Figures: cur.Figures}
	if cur.Operations >= first.Operations {
		n.OpsPerSecond = float64(cur.Operations-first.Operations) / time.Since(began).Seconds()
	}
	// The snapshot's tasks carry the rules of the findings that name them,
	// as top's Warn column shows them.
	named := func(t *api.Task) bool { return len(t.Warnings()) > 0 || slices.Contains(f.Evidence.Tasks, t.ID) }
	var rows []api.Task
	for _, t := range s.Tasks {
		if t.Labels["workload"] == w.Name {
			rows = append(rows, t)
		}
	}
	n.Goroutines = len(rows)
	stateRank := map[string]int{"running": 0, "runnable": 1, "syscall": 2, "waiting": 3}
	slices.SortStableFunc(rows, func(a, b api.Task) int {
		if na, nb := named(&a), named(&b); na != nb {
			if na {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Stats.BusyNS+b.Stats.SchedNS, a.Stats.BusyNS+a.Stats.SchedNS),
			cmp.Compare(stateRank[a.State], stateRank[b.State]), cmp.Compare(a.ID, b.ID))
	})
	n.Rows = rows[:min(len(rows), r.o.rows)]
	for i := range n.Rows {
		if t := &n.Rows[i]; named(t) && len(t.Warnings()) == 0 {
			t.SetDetail(func(d *api.TaskDetail) { d.Warnings = []string{f.Rule} })
		}
	}
	return n, nil
}

// writeNumbers prints the rows of top and the numbers, beside those of
// before when given.
func (r *labRun) writeNumbers(w api.Workload, n, before *labNumbers, now string) {
	out := r.out
	fmt.Fprintf(out, "\nThe rows of top %sfor %s (! marks the goroutines a finding names; %d goroutines):\n", now, w.Name, n.Goroutines)
	tw := table(out)
	fmt.Fprintln(tw, "\tID\tSTATE\tNAME\tBUSY\tSCHED\tIDLE\tPOLLS\tWAIT\tLOCATION")
	for i := range n.Rows {
		t := &n.Rows[i]
		mark := ""
		if len(t.Warnings()) > 0 {
			mark = "!"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", mark, t.ID, t.State, clip(t.Name, 30),
			format.Nanos(t.Stats.BusyNS), format.Nanos(t.Stats.SchedNS), format.Nanos(t.Stats.IdleNS), t.Stats.Polls,
			waitString(t), clip(format.Frame(t.Location), 60))
	}
	tw.Flush()
	if more := n.Goroutines - len(n.Rows); more > 0 {
		fmt.Fprintf(out, "  ... and %d more\n", more)
	}
	parts := []string{fmt.Sprintf("%d goroutines", n.Goroutines), fmt.Sprintf("%s operations/s", figure(n.OpsPerSecond))}
	if before != nil {
		parts = []string{fmt.Sprintf("%d goroutines (was %d)", n.Goroutines, before.Goroutines),
			fmt.Sprintf("%s operations/s (was %s)", figure(n.OpsPerSecond), figure(before.OpsPerSecond))}
	}
	for _, k := range slices.Sorted(maps.Keys(n.Figures)) {
		p := fmt.Sprintf("%s %s", k, figureOf(k, n.Figures[k]))
		if before != nil {
			if b, ok := before.Figures[k]; ok {
				p += fmt.Sprintf(" (was %s)", figureOf(k, b))
			}
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(out, "Numbers %s%s\n", now, strings.Join(parts, ", "))
}

// pause waits for a key unless --yes: q (or ctrl+c) quits.
func (r *labRun) pause(prompt string) error {
	if r.o.yes {
		return nil
	}
	fmt.Fprintf(r.e.stderr, "\n%s ", prompt)
	defer fmt.Fprintln(r.e.stderr)
	if f, ok := r.e.stdin.(*os.File); ok && term.IsTerminal(f.Fd()) {
		st, err := term.MakeRaw(f.Fd())
		if err == nil {
			defer term.Restore(f.Fd(), st)
			var b [1]byte
			if _, err := f.Read(b[:]); err != nil || b[0] == 'q' || b[0] == 'Q' || b[0] == 3 {
				return errLabQuit
			}
			return nil
		}
	}
	if r.keys == nil {
		return nil
	}
	line, err := r.keys.ReadString('\n')
	if strings.TrimSpace(line) == "q" {
		return errLabQuit
	}
	if err != nil && line == "" {
		r.o.yes = true // nothing more to read: go on by itself
	}
	return nil
}

// labProgress shows what a walk waits for on stderr: a line that updates
// in place on a terminal, its outcome otherwise.
type labProgress struct {
	w       io.Writer
	tty     bool
	showing bool
}

func (p *labProgress) show(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K  %s…", s)
		p.showing = true
	}
}

// finish replaces the progress line with its outcome.
func (p *labProgress) finish(s string) {
	p.done()
	fmt.Fprintf(p.w, "  %s\n", s)
}

// done clears the progress line.
func (p *labProgress) done() {
	if p.showing {
		fmt.Fprint(p.w, "\r\033[K")
		p.showing = false
	}
}

// sleep shows s while it sleeps d; false when ctx ended first.
func (p *labProgress) sleep(ctx context.Context, d time.Duration, s string) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		p.show(s)
		if !sleepCtx(ctx, min(left, 250*time.Millisecond)) {
			p.done()
			return false
		}
	}
}

func seconds(d time.Duration) float64 { return d.Round(100 * time.Millisecond).Seconds() }

// wrap writes text in lines of at most 100 columns, each after indent.
func wrap(w io.Writer, text, indent string) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > 100 {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		fmt.Fprintln(w, line)
	}
}

// paramValues are the values in force of ps, to start a workload with.
func paramValues(ps []api.Param) map[string]any {
	m := make(map[string]any, len(ps))
	for _, p := range ps {
		m[p.Name] = p.Value
	}
	return m
}
