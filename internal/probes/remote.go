package probes

// Remote targets: a program that serves only net/http/pprof, or a gops
// agent. Nothing runs in the target but what it already serves: the client
// (inspect-cli) builds the task model itself, from, per snapshot and in this
// order:
//
//  1. the goroutine profile in proto form (/debug/pprof/goroutine?debug=0):
//     the goroutine count and the labels by stack, built concurrently in the
//     target (no long stop-the-world). A gops agent has no such profile: its
//     stats (goroutines, threads, GOMAXPROCS) give the count.
//  2. an execution trace of the window (/debug/pprof/trace?seconds=N, or the
//     gops agent's fixed 5s trace), parsed here with AnalyzeTrace.
//  3. the goroutineleak profile, where the target has it (Go 1.27), at most
//     every 30s: it forces a full GC in the target.
//  4. a full goroutine dump (debug=2), which stops the target's world for
//     about 6us per goroutine, only within a share of the wall time since
//     attaching (RemoteOptions.DumpBudget, default 1%). The cost of the next
//     dump is estimated from the goroutine count, and from the measured
//     duration of the last one.
//
// The model is joined as the in-process Collector joins it: the trace gives
// every goroutine's numbers, state and stack; the last dump gives labels,
// wait minutes, leak marks and creators by goroutine id; goroutines the dump
// did not see are labelled from the goroutine profile by stack, or else
// inherit their creator's labels. Notes say what came from where.
//
//	r := probes.NewRemote(probes.NewPprofFetcher("http://127.0.0.1:6060", ""), probes.RemoteOptions{})
//	snap, err := r.Snapshot(ctx, 5*time.Second) // takes the 5s of the trace

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// ErrUnsupported is wrapped by a RemoteFetcher's error for a source the
// target does not serve (a gops agent has no goroutine profile; Go before
// 1.27 has no goroutineleak profile).
var ErrUnsupported = errors.New("not served by the target")

// RemoteFetcher reads the raw sources of a remote target. The readers it
// returns must be closed.
type RemoteFetcher interface {
	// Target names the target (a URL, gops://host:port) and Kind says what
	// it is ("net/http/pprof", "gops agent"), for notes.
	Target() string
	Kind() string
	// GoroutineProfile is the goroutine profile in proto form (debug=0).
	GoroutineProfile(ctx context.Context) (io.ReadCloser, error)
	// Stats are the cheap numbers the target tells of itself.
	Stats(ctx context.Context) (RemoteStats, error)
	// Dump is a full goroutine dump (debug=2). It stops the target's world.
	Dump(ctx context.Context) (io.ReadCloser, error)
	// Trace is an execution trace of about d (a gops agent traces 5s
	// whatever d), and how long it lasts.
	Trace(ctx context.Context, d time.Duration) (io.ReadCloser, time.Duration, error)
	// LeakProfile is the goroutineleak profile in proto form. It forces a
	// full GC in the target.
	LeakProfile(ctx context.Context) (io.ReadCloser, error)
}

// RemoteStats are what a target tells cheaply of itself; zero when unknown.
type RemoteStats struct {
	Goroutines int64
	Threads    int64
	GOMAXPROCS int
	GoVersion  string
}

// RemoteOptions configure a Remote. The zero value gives the defaults.
type RemoteOptions struct {
	// DumpBudget is the share of wall time since attaching that full
	// goroutine dumps may stop the target's world for (0: the default,
	// 0.01; negative: never dump).
	DumpBudget float64
	// LeakInterval is the least time between two reads of the goroutineleak
	// profile (default and minimum 30s).
	LeakInterval time.Duration
	// MaxEvents bounds the trace events analysed per snapshot (default
	// 2,000,000, about half a second of parsing; negative: no bound). A program
	// that spins writes millions of events a second: past the bound the
	// window ends early, and a note says so.
	MaxEvents int64
}

// Remote builds the task model of a remote target in the client.
type Remote struct {
	f        RemoteFetcher
	opts     RemoteOptions
	attached time.Time

	mu sync.Mutex // one build at a time; guards everything below
	// What the last dump said of each goroutine alive then.
	facts      map[int64]*dumpFacts
	inherited  map[int64]map[string]string
	dumpAt     time.Time // zero: no dump yet
	dumpCost   time.Duration
	dumpNSPerG float64
	dumps      int
	dumpTotal  time.Duration
	// The goroutineleak profile.
	leakAt     time.Time
	leaked     int
	leakStacks map[string]int64
	noLeak     bool
	// The goroutine profile: false once the target said it has none.
	noProfile bool
	goVersion string
	last      *remoteBuilt
}

type remoteBuilt struct {
	at     time.Time
	window time.Duration
	snap   *api.Snapshot
	win    *Window // nil when the trace could not be read
}

// NewRemote returns the remote source of the target f reads. The dump
// budget counts from now.
func NewRemote(f RemoteFetcher, opts RemoteOptions) *Remote {
	if opts.DumpBudget == 0 {
		opts.DumpBudget = 0.01
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 2_000_000
	}
	if opts.LeakInterval < 30*time.Second {
		opts.LeakInterval = 30 * time.Second
	}
	return &Remote{f: f, opts: opts, attached: time.Now(), facts: map[int64]*dumpFacts{},
		inherited: map[int64]map[string]string{}, leaked: -1}
}

// Fetcher returns the fetcher r reads from.
func (r *Remote) Fetcher() RemoteFetcher { return r.f }

// Snapshot builds the task model over a trace of window, which it takes now:
// it returns after about window.
func (r *Remote) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	b, err := r.build(ctx, window, 0)
	if err != nil {
		return nil, err
	}
	return b.snap, nil
}

// Task returns one task with its histograms and full stack, or an error
// wrapping api.ErrNoTask. It reads it from the last snapshot when that is
// recent (within twice the window, and at least 10s), else it builds one.
func (r *Remote) Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	b, err := r.build(ctx, window, max(2*window, 10*time.Second))
	if err != nil {
		return nil, err
	}
	return taskDetail(b.snap, b.win, &r.mu, r.facts, id)
}

// build takes a new snapshot, or returns the last one if it is younger than
// reuse and of the same window.
func (r *Remote) build(ctx context.Context, window time.Duration, reuse time.Duration) (*remoteBuilt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reuse > 0 && r.last != nil && r.last.window == window && time.Since(r.last.at) <= reuse {
		return r.last, nil
	}
	tf, _ := r.f.(*TraceFile)
	if tf != nil && !tf.stepping && r.last != nil {
		return r.last, nil // the whole trace: it does not change
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var notes []string
	parts := []string{"trace"}

	// 1. The goroutine count, and labels by stack, without stopping the world.
	var prof *stackProfile
	count := int64(-1)
	if !r.noProfile {
		p, err := r.goroutineProfile(ctx)
		switch {
		case errors.Is(err, ErrUnsupported):
			r.noProfile = true
		case err != nil:
			return nil, err
		default:
			prof, count = p, p.total
			parts = append(parts, "profile")
		}
	}
	st, stErr := r.f.Stats(ctx)
	if stErr != nil {
		if ctx.Err() != nil || prof == nil {
			return nil, stErr
		}
		notes = append(notes, "no thread count: "+stErr.Error())
	}
	if count < 0 && st.Goroutines > 0 {
		count = st.Goroutines
	}
	if st.GoVersion != "" {
		r.goVersion = st.GoVersion
	}

	// 2. The trace, parsed here.
	win, traceNotes, traceErr := r.trace(ctx, window)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	notes = append(notes, traceNotes...)
	now := time.Now()

	if tf != nil {
		return r.fileModel(tf, window, win, traceErr, notes)
	}

	// 3. Leaks, before the dump so that it shows their marks.
	if !r.noLeak && now.Sub(r.leakAt) >= r.opts.LeakInterval {
		if n := r.readLeaks(ctx, now); n != "" {
			notes = append(notes, n)
		}
	}
	switch {
	case r.noLeak && r.f.Kind() == KindGops:
		notes = append(notes, "a gops agent serves no goroutineleak profile: leaked goroutines are not detected")
	case r.noLeak:
		notes = append(notes, "the target serves no goroutineleak profile (Go 1.27 has it): leaked goroutines are not detected")
	case !r.leakAt.IsZero() && now.Sub(r.leakAt) > time.Second:
		notes = append(notes, fmt.Sprintf("the leak count is from the goroutineleak profile %s ago (it forces a GC in the target: read at most every %s)",
			now.Sub(r.leakAt).Round(time.Second), r.opts.LeakInterval))
	}

	// 4. A full dump, within the budget.
	gs, dumpNote, dumped := r.maybeDump(ctx, now, count, prof != nil)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dumped {
		parts = append(parts, "dump")
	}
	notes = append(notes, dumpNote)

	var snap *api.Snapshot
	switch {
	case win != nil:
		snap = r.model(win, prof)
	case dumped:
		snap = &api.Snapshot{Tasks: make([]api.Task, 0, len(gs))}
		for i := range gs {
			snap.Tasks = append(snap.Tasks, dumpedTask(&gs[i]))
		}
		parts[0] = "no trace"
		notes = append([]string{"no trace window: TOTAL, BUSY, SCHED, IDLE and POLLS are unknown"}, notes...)
	default:
		return nil, fmt.Errorf("%s: no execution trace (%w), and the dump budget allows no goroutine dump yet", r.f.Target(), traceErr)
	}
	snap.Time = now
	snap.Target = r.f.Target()
	snap.Source = strings.Join(parts, "+") + " (computed in inspect-cli from " + r.f.Kind() + ")"
	snap.Process = r.process(st, count, snap.Tasks)
	switch r.f.Kind() {
	case KindGops:
		notes = append(notes, "heap, scheduling latency and GC pauses are not available from a gops agent")
	default:
		notes = append(notes, "GOMAXPROCS, heap, scheduling latency and GC pauses are not available from net/http/pprof")
	}
	snap.Notes = append(notes, snap.Notes...)
	snap.Partial = partialOf(snap.Notes)
	snap.Findings = []api.Finding{}
	r.last = &remoteBuilt{at: now, window: window, snap: snap, win: win}
	return r.last, nil
}

func (r *Remote) goroutineProfile(ctx context.Context) (*stackProfile, error) {
	rc, err := r.f.GoroutineProfile(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	p, err := parseStackProfile(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: the goroutine profile (debug=0) is not a pprof profile: %w", r.f.Target(), err)
	}
	return p, nil
}

// partialTrace begins the note of a trace cut short or corrupt.
const partialTrace = "the trace was cut short or corrupt, numbers are partial: "

// partialOf is the note among notes that says the trace was cut short or
// corrupt, for Snapshot.Partial; "" if none.
func partialOf(notes []string) string {
	for _, n := range notes {
		if strings.HasPrefix(n, partialTrace) {
			return n
		}
	}
	return ""
}

// trace reads and analyses a trace of window. A trace that cannot be had
// gives a nil window and its error; a cut or corrupt one gives what was read
// and a note.
func (r *Remote) trace(ctx context.Context, window time.Duration) (*Window, []string, error) {
	start := time.Now()
	rc, traced, err := r.f.Trace(ctx, window)
	if err != nil {
		return nil, []string{"no execution trace: " + err.Error()}, err
	}
	defer rc.Close()
	wo := WindowOptions{Sites: true, Parallel: true}
	if r.opts.MaxEvents > 0 {
		wo.MaxEvents = r.opts.MaxEvents
	}
	tf, _ := r.f.(*TraceFile)
	if tf != nil {
		// A file is all there: no target spins while it is read.
		wo.MaxEvents = 0
		wo.Since, wo.For = tf.span(window)
	}
	hr := &headReader{r: rc}
	var in io.Reader = hr
	if tf != nil {
		in = bytes.NewBuffer(tf.data) // cut in place by Since (newGenSkipper)
	}
	win, err := AnalyzeTrace(in, wo)
	if tf != nil {
		tf.advance()
		if v, ok := traceGoVersion(tf.data[:min(len(tf.data), 16)]); ok && r.goVersion == "" {
			r.goVersion = v + "+"
		}
		if err != nil && len(win.Goroutines) == 0 {
			return nil, []string{"no usable execution trace: " + err.Error()}, err
		}
		var notes []string
		if err != nil {
			notes = append(notes, partialTrace+err.Error())
		}
		return win, notes, nil
	}
	parse := max(0, time.Since(start)-traced) // the part after the target stopped tracing
	var notes []string
	if v, ok := traceGoVersion(hr.head); ok && r.goVersion == "" {
		r.goVersion = v + "+"
		notes = append(notes, fmt.Sprintf("Go version from the trace format: %s or later", v))
	}
	if err != nil && len(win.Goroutines) == 0 {
		return nil, []string{"no usable execution trace: " + err.Error()}, err
	}
	notes = append(notes, fmt.Sprintf("model computed in inspect-cli from %s: a %s execution trace (%s), parsed here as it arrived (done %s after it ended)",
		r.f.Kind(), traced.Round(time.Millisecond), byteSize(hr.n), roundDuration(parse)))
	if d := traced - window; d > window/10 || -d > window/10 {
		notes = append(notes, fmt.Sprintf("the %s traces for %s whatever the window asked (%s)", r.f.Kind(), traced, window))
	}
	if err != nil {
		notes = append(notes, partialTrace+err.Error())
	} else if win.Truncated {
		notes = append(notes, fmt.Sprintf("the trace window was cut short at %d events (%s of it): numbers cover that part",
			win.Events, time.Duration(win.Duration()).Round(time.Millisecond)))
	}
	return win, notes, nil
}

// headReader counts what it reads and keeps the first bytes (the trace header).
type headReader struct {
	r    io.Reader
	head []byte
	n    int64
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if len(h.head) < 16 {
		h.head = append(h.head, p[:min(n, 16-len(h.head))]...)
	}
	h.n += int64(n)
	return n, err
}

// traceGoVersion reads "go 1.26 trace" off a trace header as "go1.26": the
// format's version, the oldest Go that writes it.
func traceGoVersion(head []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(head, []byte("go 1."))
	if !ok {
		return "", false
	}
	minor, _, ok := bytes.Cut(rest, []byte(" trace"))
	if !ok {
		return "", false
	}
	if _, err := strconv.Atoi(string(minor)); err != nil {
		return "", false
	}
	return "go1." + string(minor), true
}

// readLeaks reads the goroutineleak profile: the leak count, and the stacks
// whose goroutines leaked. It returns a note on failure.
func (r *Remote) readLeaks(ctx context.Context, now time.Time) string {
	rc, err := r.f.LeakProfile(ctx)
	if errors.Is(err, ErrUnsupported) {
		r.noLeak = true
		return ""
	}
	if err != nil {
		return "no goroutineleak profile: " + err.Error()
	}
	defer rc.Close()
	p, err := parseStackProfile(rc)
	if err != nil {
		return "the goroutineleak profile is not a pprof profile: " + err.Error()
	}
	r.leakAt, r.leaked, r.leakStacks = now, int(p.total), p.counts
	return ""
}

// dumpDue says whether a dump of count goroutines fits the budget now, what
// it would cost, and when it will fit (zero: never at this budget).
func (r *Remote) dumpDue(now time.Time, count int64) (due bool, expected time.Duration, at time.Time) {
	expected = time.Duration(count) * dumpNSPerGoroutine
	if r.dumpNSPerG > 0 {
		expected = max(expected, time.Duration(r.dumpNSPerG*float64(count)))
	}
	from := r.dumpAt
	if from.IsZero() {
		from = r.attached
	}
	need := spacing(expected, r.opts.DumpBudget)
	if need > 100*365*24*time.Hour {
		return false, expected, time.Time{}
	}
	return now.Sub(from) >= need, expected, from.Add(need)
}

// maybeDump takes a full dump if the budget allows it and returns its
// goroutines, the note that says where labels and wait minutes come from,
// and whether it dumped.
func (r *Remote) maybeDump(ctx context.Context, now time.Time, count int64, haveProfile bool) ([]Goroutine, string, bool) {
	budget := fmt.Sprintf("dumps stop the target's world for ~6µs per goroutine: they take at most %s of the time since attaching", pctString(r.opts.DumpBudget))
	between := "labels are from the goroutine profile by stack"
	if !haveProfile {
		between = "labels are unknown"
	}
	older := func(why string) string {
		if r.dumpAt.IsZero() {
			return fmt.Sprintf("no goroutine dump: %s; %s, or else inherited from the creator; wait minutes and creators of goroutines older than the trace are unknown", why, between)
		}
		return fmt.Sprintf("labels, wait minutes and leak marks are from a goroutine dump %s ago (%s; %s); goroutines it did not see: %s, or else inherited from the creator",
			now.Sub(r.dumpAt).Round(time.Second), why, budget, between)
	}
	if r.opts.DumpBudget < 0 {
		return nil, older("dumps are off (--dump-budget 0)"), false
	}
	if count < 0 {
		return nil, older("the goroutine count is unknown, so is a dump's pause"), false
	}
	due, expected, at := r.dumpDue(now, count)
	if !due {
		next := "never at this budget"
		if !at.IsZero() {
			next = "next in ~" + at.Sub(now).Round(time.Second).String()
		}
		return nil, older(fmt.Sprintf("one would stop the target's world for ~%s (%d goroutines), more than %s of the %s since attaching allows; %s",
			roundDuration(expected), count, pctString(r.opts.DumpBudget), now.Sub(r.attached).Round(time.Second), next)), false
	}
	// The target answers once the dump is written: it stopped the world
	// for part of the time the request takes.
	began := time.Now()
	rc, err := r.f.Dump(ctx)
	if err != nil {
		return nil, older("the dump failed: " + err.Error()), false
	}
	data, rerr := io.ReadAll(rc)
	rc.Close()
	cost := time.Since(began)
	// It stopped the world whatever came of it.
	r.dumpAt, r.dumps, r.dumpTotal = now, r.dumps+1, r.dumpTotal+cost
	gs, perr := ParseDumpBytes(data)
	if len(gs) == 0 {
		r.dumpCost = cost
		why := "the dump failed"
		if rerr != nil {
			why += ": " + rerr.Error()
		} else if perr != nil {
			why += ": " + perr.Error()
		}
		return nil, older(why), false
	}
	r.dumpCost = cost
	r.dumpNSPerG = float64(cost) / float64(len(gs))
	clear(r.facts)
	clear(r.inherited)
	for i := range gs {
		g := &gs[i]
		r.facts[g.ID] = newDumpFacts(g)
	}
	what := "labels, wait minutes and creators"
	if !slices.ContainsFunc(gs, func(g Goroutine) bool { return g.Labels != nil }) {
		// Before Go 1.27 dumps print no labels (unless GODEBUG=tracebacklabels=1).
		what = "wait minutes and creators"
		if haveProfile {
			what = "labels from the goroutine profile by stack (the dump has none); wait minutes and creators"
		}
	}
	note := fmt.Sprintf("%s from a goroutine dump taken now (%d goroutines: it stopped the target's world for ~%s, fetched in %s); %s: %d dumps in %s, %s in all",
		what, len(gs), roundDuration(time.Duration(len(gs))*dumpNSPerGoroutine), roundDuration(cost), budget,
		r.dumps, now.Sub(r.attached).Round(time.Second), roundDuration(r.dumpTotal))
	if rerr != nil || perr != nil {
		note += fmt.Sprintf("; the dump has problems, read as far as it goes: %v", errors.Join(rerr, perr))
	}
	return gs, note, true
}

// model joins the window with the last dump, the goroutine profile and the
// leak profile, as Collector.model does.
func (r *Remote) model(win *Window, prof *stackProfile) *api.Snapshot {
	snap := &api.Snapshot{WindowNS: win.Duration(), Tasks: make([]api.Task, 0, len(win.Goroutines))}
	ids := slices.Sorted(maps.Keys(win.Goroutines))
	// Creation order is id order, so a parent's labels are known before its children's.
	stale := 0
	spawns := newSpawnCounter(win.Duration())
	for _, id := range ids {
		g := win.Goroutines[id]
		if g.Exited {
			spawns.add(traceAPIFrame(g.CreatedBy), g)
			continue
		}
		t := api.Task{
			ID:         id,
			State:      g.State.String(),
			WaitReason: g.WaitReason,
			CreatedBy:  traceAPIFrame(g.CreatedBy),
			ParentID:   g.ParentID,
			Location:   traceAPIFrame(g.Location()),
			Stats:      g.TaskStats(),
		}
		startFunc := g.StartFunc
		var key string
		if len(g.Stack) > 0 && (prof != nil || r.leakStacks != nil) {
			key = stackKey(g.Stack)
		}
		if f := r.facts[id]; f != nil {
			t.Labels, t.WaitMinutes, t.Locked, t.Leaked = f.labels, f.waitMinutes, f.locked, f.leaked
			if t.Labels == nil {
				// Dumps before Go 1.27 carry no labels; the profile does.
				t.Labels = prof.labelsOf(key)
			}
			if t.CreatedBy.Function == "" {
				t.CreatedBy, t.ParentID = traceAPIFrame(f.createdBy), f.parentID
			}
			if startFunc == "" {
				startFunc = f.startFunc
			}
			if len(g.Stack) == 0 {
				t.Location = f.location(t.Location)
			}
			f.settleLeak(&t)
		} else if l := prof.labelsOf(key); l != nil {
			t.Labels = l
		} else if l, ok := r.inherited[id]; ok {
			t.Labels, t.LabelsStale = l, true
		} else if g.ParentID != 0 {
			// Created in the window: it started with its creator's labels.
			t.Labels = inheritLabels(r.facts, r.inherited, id, g.ParentID)
			t.LabelsStale = t.Labels != nil
		}
		// Every goroutine with this stack leaked: so did this one.
		if !t.Leaked && key != "" && prof != nil && r.leakStacks[key] > 0 && r.leakStacks[key] >= prof.counts[key] {
			t.Leaked = true
		}
		if t.LabelsStale {
			stale++
		}
		t.Name = taskName(t.Labels, startFunc, t.CreatedBy.Function)
		spawns.add(t.CreatedBy, g)
		snap.Tasks = append(snap.Tasks, t)
	}
	snap.Spawns = spawns.list()
	if stale > 0 {
		snap.Notes = append(snap.Notes, fmt.Sprintf("%d tasks were created since the last dump: their labels are their creator's and may be stale", stale))
	}
	snap.Sites = make([]api.Site, 0, len(win.Sites))
	for _, s := range win.Sites {
		snap.Sites = append(snap.Sites, s.Site())
	}
	return snap
}

// labelsOf returns the one label set of goroutines with stack key, or nil.
func (p *stackProfile) labelsOf(key string) map[string]string {
	if p == nil || key == "" {
		return nil
	}
	return p.labels[key]
}

func (r *Remote) process(st RemoteStats, count int64, tasks []api.Task) api.Process {
	p := api.Process{GoVersion: r.goVersion, GOMAXPROCS: st.GOMAXPROCS, Goroutines: count, Threads: st.Threads,
		ByState: map[string]int64{}, Leaked: -1}
	if !r.leakAt.IsZero() {
		p.Leaked = r.leaked
	}
	for i := range tasks {
		p.ByState[tasks[i].State]++
	}
	if p.Goroutines < 0 {
		p.Goroutines = int64(len(tasks))
	}
	return p
}

// dumpedTask is a goroutine of a dump as a task, when there is no trace.
func dumpedTask(g *Goroutine) api.Task {
	t := api.Task{
		ID: g.ID, Labels: g.Labels, State: g.State.String(), WaitReason: g.WaitReason,
		WaitMinutes: g.WaitMinutes, Leaked: g.Leaked, Locked: g.Locked,
		CreatedBy: traceAPIFrame(g.CreatedBy), ParentID: g.ParentID, Location: traceAPIFrame(g.Location()),
	}
	startFunc := ""
	if len(g.Frames) > 0 && !g.Elided {
		startFunc = g.Frames[len(g.Frames)-1].Func
	}
	t.Name = taskName(g.Labels, startFunc, g.CreatedBy.Func)
	return t
}

func pctString(share float64) string {
	return strconv.FormatFloat(share*100, 'g', 3, 64) + "%"
}

// roundDuration keeps three significant digits or so.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Kinds of remote targets (RemoteFetcher.Kind).
const (
	KindPprof = "net/http/pprof"
	KindGops  = "gops agent"
)

// PprofFetcher reads a program's net/http/pprof endpoints.
type PprofFetcher struct {
	c *api.Client
}

// NewPprofFetcher returns the fetcher of the program at base (host:port or
// a URL), sending token as a bearer token if not empty.
func NewPprofFetcher(base, token string) *PprofFetcher {
	c := api.NewClient(base, token)
	// Each request has its own deadline: a trace lasts its seconds.
	c.HTTP = &http.Client{}
	return &PprofFetcher{c: c}
}

// Target is the base URL.
func (p *PprofFetcher) Target() string { return p.c.Base }

// Kind is KindPprof.
func (p *PprofFetcher) Kind() string { return KindPprof }

// open GETs path within timeout; a 404 wraps ErrUnsupported when unsupported.
func (p *PprofFetcher) open(ctx context.Context, path string, timeout time.Duration) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := p.c.Open(ctx, path)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// GoroutineProfile GETs /debug/pprof/goroutine?debug=0.
func (p *PprofFetcher) GoroutineProfile(ctx context.Context) (io.ReadCloser, error) {
	return p.open(ctx, "/debug/pprof/goroutine?debug=0", time.Minute)
}

// Stats reads the thread count off /debug/pprof/threadcreate?debug=1.
func (p *PprofFetcher) Stats(ctx context.Context) (RemoteStats, error) {
	rc, err := p.open(ctx, "/debug/pprof/threadcreate?debug=1", 30*time.Second)
	if err != nil {
		return RemoteStats{}, err
	}
	defer rc.Close()
	line, _ := bufio.NewReader(io.LimitReader(rc, 4096)).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "threadcreate profile: total ")
	n, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil {
		return RemoteStats{}, fmt.Errorf("%s/debug/pprof/threadcreate?debug=1 does not start with \"threadcreate profile: total N\"", p.c.Base)
	}
	return RemoteStats{Threads: n}, nil
}

// Dump GETs /debug/pprof/goroutine?debug=2.
func (p *PprofFetcher) Dump(ctx context.Context) (io.ReadCloser, error) {
	return p.open(ctx, "/debug/pprof/goroutine?debug=2", 2*time.Minute)
}

// Trace GETs /debug/pprof/trace?seconds=d.
func (p *PprofFetcher) Trace(ctx context.Context, d time.Duration) (io.ReadCloser, time.Duration, error) {
	d = max(d, 100*time.Millisecond)
	rc, err := p.open(ctx, "/debug/pprof/trace?seconds="+strconv.FormatFloat(d.Seconds(), 'f', -1, 64), d+time.Minute)
	return rc, d, err
}

// LeakProfile GETs /debug/pprof/goroutineleak?debug=0; a 404 (Go before
// 1.27) wraps ErrUnsupported.
func (p *PprofFetcher) LeakProfile(ctx context.Context) (io.ReadCloser, error) {
	rc, err := p.open(ctx, "/debug/pprof/goroutineleak?debug=0", time.Minute)
	if api.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return rc, err
}
