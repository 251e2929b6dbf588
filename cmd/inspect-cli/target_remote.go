package main

// Targets whose model is computed here: a program that serves
// net/http/pprof but not the inspection API, a gops agent (package remote),
// and a saved execution trace (package file). The diagnosis rules run on
// each snapshot, as the daemon runs them on its own.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/source/file"
	"github.com/inspectd/inspectd/internal/source/remote"
	"github.com/inspectd/inspectd/internal/tui"
)

// computed is the task model of a source, computed here.
type computed struct {
	t    *target
	src  source.Source
	diag *diagnose.Inspector // src with the rules run on its snapshots
	// waiting says on a terminal what a snapshot of window waits for.
	waiting func(window time.Duration)
}

// inspector is the source with the diagnosis rules run on each of its
// snapshots (default rules and thresholds unless cfg, on first use, says
// otherwise).
func (c *computed) inspector(cfg diagnose.Config) (*diagnose.Inspector, error) {
	if c.diag == nil {
		eng, err := diagnose.New(cfg)
		if err != nil {
			return nil, failf(2, "%v", err)
		}
		c.diag = diagnose.NewInspector(c.src, eng)
	}
	return c.diag, nil
}

// checkRemoteWindow bounds --window as the inspection API does.
func checkRemoteWindow(window time.Duration) error {
	if window < 100*time.Millisecond || window > time.Minute {
		return failf(2, "--window %s: want 100ms to 60s", window)
	}
	return nil
}

func (c *computed) snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	c.waiting(window)
	p, err := c.inspector(diagnose.Config{})
	if err != nil {
		return nil, err
	}
	s, err := p.Snapshot(ctx, window)
	if err != nil {
		return nil, c.t.failRemote(err)
	}
	s.Target = c.t.name
	return s, nil
}

func (c *computed) task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	c.waiting(window)
	task, err := c.src.Task(ctx, id, window)
	if errors.Is(err, api.ErrNoTask) {
		return nil, failf(1, "%s has no goroutine %d: it has exited, or never existed", c.t.name, id)
	}
	if err != nil {
		return nil, c.t.failRemote(err)
	}
	return task, nil
}

// sites are those of a snapshot, with its notes.
func (c *computed) sites(ctx context.Context, window time.Duration) (*siteList, error) {
	s, err := c.snapshot(ctx, window)
	if err != nil {
		return nil, err
	}
	return &siteList{target: c.t.name, notes: s.Notes, SiteList: api.SiteList{Time: s.Time, WindowNS: s.WindowNS, Sites: s.Sites}}, nil
}

// remoteModel is a program read from outside: its net/http/pprof or its
// gops agent.
type remoteModel struct {
	computed
	r          *remote.Remote
	dumpBudget float64
}

// remoteOptions are the options of the sources computed here.
func (e *env) remoteOptions() remote.Options {
	b := e.dumpBudget
	if b == 0 {
		b = -1 // never
	}
	return remote.Options{DumpBudget: b, Limits: e.limits}
}

func (e *env) remoteModel(t *target, f remote.Fetcher) *remoteModel {
	r := remote.New(f, e.remoteOptions())
	m := &remoteModel{computed: computed{t: t, src: r}, r: r, dumpBudget: e.dumpBudget}
	m.waiting = func(window time.Duration) {
		if !isTerminal(e.stderr) {
			return
		}
		if f.Kind() == remote.KindGops {
			window = 5 * time.Second
		}
		fmt.Fprintf(e.stderr, "tracing %s for %s (%s: the model is computed here)...\n", t.name, window, f.Kind())
	}
	return m
}

// pprofTarget is a program at c that serves no inspection API (se is its
// answer to the probe): its net/http/pprof, read here.
func (e *env) pprofTarget(name string, c *api.Client, se *api.StatusError) *target {
	t := &target{name: name, is: fmt.Sprintf("%s, which does not serve the inspection API (%s: 404: %s)", name, probePath, se.Message), http: c}
	m := e.remoteModel(t, remote.NewPprofFetcher(c.Base, c.Token))
	t.model, t.sites, t.watch, t.findings = m, m, m, m
	t.dump = &httpDump{t: t, c: c, lim: e.limits}
	return t
}

// gopsTarget is the gops agent at addr, read here; is says what it is.
func (e *env) gopsTarget(name, addr, is string) *target {
	t := &target{name: name, is: is}
	m := e.remoteModel(t, remote.NewGopsFetcher(addr))
	t.model, t.sites, t.watch, t.findings, t.dump = m, m, m, m, m
	return t
}

func (m *remoteModel) writeTask(w io.Writer, task *api.Task, window time.Duration) {
	tui.WriteTask(w, task, "", window)
}

// watch takes snapshots one after the other (each lasts its trace).
func (m *remoteModel) watch(ctx context.Context, interval, window time.Duration, page *api.Query) (*feed, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	f := m.r.Fetcher()
	if f.Kind() == remote.KindPprof {
		// Once, before the screen: a server that is not what it should be
		// fails here as it does for the other commands, not on every
		// update of a screen that never fills.
		rc, err := f.GoroutineProfile(ctx)
		if err != nil {
			return nil, m.t.failRemote(err)
		}
		rc.Close()
	}
	d, err := m.inspector(diagnose.Config{})
	if err != nil {
		return nil, err
	}
	p := tui.NewPoll(d.Snapshot, interval, window)
	go p.Run(ctx)
	dumps := "no dumps"
	if m.dumpBudget > 0 {
		dumps = fmt.Sprintf("dumps ≤%g%% of the time", m.dumpBudget*100)
	}
	return &feed{updates: p.C, fetch: d.Task, fail: m.t.failRemote,
		name: fmt.Sprintf("%s (%s, computed in inspect-cli, %s)", m.t.name, f.Kind(), dumps)}, nil
}

// diagnose runs the rules here on one snapshot after the other over the wait.
func (m *remoteModel) diagnose(ctx context.Context, d *diagnosis) (string, error) {
	if err := checkRemoteWindow(d.o.window); err != nil {
		return "", err
	}
	p, err := m.inspector(d.o.cfg)
	if err != nil {
		return "", err
	}
	progress := isTerminal(d.stderr) && d.o.wait > 0
	n, tries, window := 0, 0, d.o.window
	var lastErr error
	for first := true; first || d.watching(); first = false {
		if ctx.Err() != nil {
			break
		}
		tries++
		began, deadline := time.Now(), d.snapshotEnd()
		stuck := ""
		s, err := within(ctx, deadline, func(ctx context.Context) (*api.Snapshot, error) { return p.Snapshot(ctx, d.o.window) }, func() {
			if what, since, ok := m.r.Pending(); ok {
				stuck = fmt.Sprintf("%s unanswered after %s", what, format.Duration(since.Round(100*time.Millisecond)))
			}
		})
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return "", failf(exitInterrupted, "interrupted")
			}
			if n == 0 && !isTimeout(err) {
				// Nothing had yet, and not for want of time: the target is
				// not what it should be, or out of reach.
				return "", m.t.failRemote(err)
			}
			lastErr = err
			why := d.missWhy(err, deadline.Sub(began), stuck, m.t.failRemote)
			d.miss(tries, why)
			if progress {
				fmt.Fprintf(d.stderr, "  snapshot %d missed: %s\n", tries, why)
			}
			sleepCtx(ctx, min(time.Second, d.left()))
			continue
		}
		n++
		if s.WindowNS > 0 {
			// What the target traced: a gops agent's trace lasts 5s.
			window = time.Duration(s.WindowNS).Round(100 * time.Millisecond)
		}
		d.note(s)
		d.add(s.Findings)
		if progress {
			fmt.Fprintf(d.stderr, "  snapshot %d: %d findings\n", tries, len(s.Findings))
		}
	}
	if n == 0 {
		return "", d.nothing(m.t, lastErr, m.t.failRemote)
	}
	return fmt.Sprintf("rules run here on %s of %s (%s)", plural(n, "snapshot"), format.Duration(window), m.r.Fetcher().Kind()), nil
}

// goroutines reads a full dump from a gops agent after checking its cost
// from the agent's goroutine count, as httpDump does over HTTP.
func (m *remoteModel) goroutines(ctx context.Context, force bool) ([]dump.Goroutine, []string, error) {
	t, f := m.t, m.r.Fetcher()
	st, err := f.Stats(ctx)
	if err != nil {
		return nil, nil, t.failRemote(err)
	}
	if st.Goroutines > maxStacksGoroutines && !force {
		return nil, nil, failf(2, "%s has %d goroutines: a full dump would stop its world for ~%s; pass --force to dump anyway",
			t.name, st.Goroutines, format.Duration(time.Duration(st.Goroutines)*6*time.Microsecond))
	}
	began := time.Now()
	rc, err := f.Dump(ctx)
	if err != nil {
		return nil, nil, t.failRemote(err)
	}
	defer rc.Close()
	body := remote.Limit(rc, m.r.Limits().Dump, remote.CapDump, "the gops agent's stack dump", remote.ParseLines)
	gs, err := dump.ParseDump(body)
	if le, ok := remote.Exceeded(body); ok {
		return nil, nil, failLimit(t.name, le)
	}
	if len(gs) == 0 {
		return nil, nil, failf(2, "%s: the gops agent's stack dump gave no goroutine: %v", t.name, err)
	}
	notes := []string{fmt.Sprintf("the gops stack dump (debug=2) stops the target's world for ~6µs per goroutine (~%s here); fetched in %s",
		format.Duration(time.Duration(len(gs))*6*time.Microsecond), format.Duration(time.Since(began)))}
	if err != nil {
		notes = append(notes, fmt.Sprintf("the dump has problems, shown as far as read: %v", err))
	}
	return gs, notes, nil
}

// traceModel is a saved execution trace: tasks, task, sites, stacks and top
// show it whole, as one window; diagnose reads it one window after another.
type traceModel struct {
	computed
	f      *file.TraceFile
	stderr io.Writer
}

func (e *env) traceTarget(path string, f *file.TraceFile) *target {
	t := &target{name: path, is: "the trace file " + path, saved: true}
	m := &traceModel{computed: computed{t: t, src: f}, f: f, stderr: e.stderr}
	m.waiting = func(time.Duration) { m.reading() }
	t.model, t.sites, t.watch, t.findings, t.dump = m, m, m, m, m
	return t
}

// reading says on a terminal that the command reads the file.
func (m *traceModel) reading() {
	if isTerminal(m.stderr) {
		fmt.Fprintf(m.stderr, "reading the trace file %s (%s)...\n", m.t.name, format.Bytes(m.f.Size()))
	}
}

// writeTask prints the task over the whole trace.
func (m *traceModel) writeTask(w io.Writer, task *api.Task, _ time.Duration) {
	tui.WriteTask(w, task, "", 0)
}

// watch shows the whole trace in top, as one window.
func (m *traceModel) watch(ctx context.Context, interval, window time.Duration, page *api.Query) (*feed, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	d, err := m.inspector(diagnose.Config{})
	if err != nil {
		return nil, err
	}
	p := tui.NewPoll(d.Snapshot, interval, window)
	go p.Run(ctx)
	// Details of the whole trace: a window of 0 says so (tui.WriteTask).
	whole := func(ctx context.Context, id int64, _ time.Duration) (*api.Task, error) {
		return d.Task(ctx, id, window)
	}
	return &feed{updates: p.C, fetch: whole, whole: true, fail: m.t.failRemote,
		name: fmt.Sprintf("%s (the whole trace, computed in inspect-cli)", m.t.name)}, nil
}

// diagnose runs the rules on the successive windows of the trace, as they
// would have run on the program while it was traced (--wait does not apply).
func (m *traceModel) diagnose(ctx context.Context, d *diagnosis) (string, error) {
	if err := checkRemoteWindow(d.o.window); err != nil {
		return "", err
	}
	p, err := m.inspector(d.o.cfg)
	if err != nil {
		return "", err
	}
	m.f.Step()
	progress := isTerminal(d.stderr)
	if progress {
		fmt.Fprintf(d.stderr, "diagnosing the trace file %s (%s), one %s window after another...\n", m.t.name, format.Bytes(m.f.Size()), d.o.window)
	}
	var covered time.Duration
	for !d.stopped() {
		s, err := p.Snapshot(ctx, d.o.window)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", m.t.failRemote(err)
		}
		covered += time.Duration(s.WindowNS)
		d.note(s)
		d.add(s.Findings)
		if progress {
			fmt.Fprintf(d.stderr, "  window %d (%s of trace): %d findings\n", m.f.Windows(), format.Duration(covered), len(s.Findings))
		}
	}
	return fmt.Sprintf("rules run here on %s of the trace file, %s of trace", plural(m.f.Windows(), "window"), format.Duration(covered)), nil
}

// goroutines lists the goroutines alive at the end of the trace.
func (m *traceModel) goroutines(ctx context.Context, _ bool) ([]dump.Goroutine, []string, error) {
	m.reading()
	gs, partial, err := m.f.Goroutines(ctx, time.Second)
	if err != nil {
		return nil, nil, m.t.failRemote(err)
	}
	notes := []string{"from an execution trace: each goroutine's latest stack in it (where it waits, or where it last blocked, yielded or woke); no labels or wait minutes"}
	if partial != "" {
		notes = append(notes, partial)
	}
	return gs, notes, nil
}
