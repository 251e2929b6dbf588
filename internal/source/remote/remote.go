// Package remote builds the task model of a program from outside, in the
// client (inspect-cli): a program that serves only net/http/pprof
// (PprofFetcher), or a gops agent (GopsFetcher).
//
// Nothing runs in the target but what it already serves: the client
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
//     attaching (Options.DumpBudget, default 1%). The cost of the next
//     dump is estimated from the goroutine count, and from the measured
//     duration of the last one.
//
// The model is joined by package model, as for every source: the trace gives
// every goroutine's numbers, state and stack; the last dump gives labels,
// wait minutes, leak marks and creators by goroutine id; goroutines the dump
// did not see are labelled from the goroutine profile by stack, or else
// inherit their creator's labels. Notes say what came from where.
//
//	r := remote.New(remote.NewPprofFetcher("http://127.0.0.1:6060", ""), remote.Options{})
//	snap, err := r.Snapshot(ctx, 5*time.Second) // takes the 5s of the trace
package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// Fetcher reads the raw sources of a remote target. The readers it
// returns must be closed.
type Fetcher interface {
	// Target names the target (a URL, gops://host:port) and Kind says what
	// it is ("net/http/pprof", "gops agent"), for notes.
	Target() string
	Kind() string
	// GoroutineProfile is the goroutine profile in proto form (debug=0).
	GoroutineProfile(ctx context.Context) (io.ReadCloser, error)
	// Stats are the cheap numbers the target tells of itself.
	Stats(ctx context.Context) (Stats, error)
	// Dump is a full goroutine dump (debug=2). It stops the target's world.
	Dump(ctx context.Context) (io.ReadCloser, error)
	// Trace is an execution trace of about d (a gops agent traces 5s
	// whatever d), and how long it lasts.
	Trace(ctx context.Context, d time.Duration) (io.ReadCloser, time.Duration, error)
	// LeakProfile is the goroutineleak profile in proto form. It forces a
	// full GC in the target.
	LeakProfile(ctx context.Context) (io.ReadCloser, error)
}

// Stats are what a target tells cheaply of itself; zero when unknown.
type Stats struct {
	Goroutines int64
	Threads    int64
	GOMAXPROCS int
	GoVersion  string
}

// Options configure a Remote. The zero value gives the defaults.
type Options struct {
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
	// Limits cap what is read from the target (zero: DefaultLimits).
	Limits Limits
}

// Remote builds the task model of a remote target in the client.
type Remote struct {
	f        Fetcher
	opts     Options
	attached time.Time

	// m joins trace windows with the last dump and the profiles.
	m *model.Model

	mu         sync.Mutex // one build at a time; guards everything below
	dumpAt     time.Time  // zero: no dump yet
	dumpCost   time.Duration
	dumpNSPerG float64
	dumps      int
	dumpTotal  time.Duration
	// The goroutineleak profile.
	leakAt time.Time
	leaked int
	noLeak bool
	// The goroutine profile: false once the target said it has none.
	noProfile bool
	goVersion string
	last      *remoteBuilt
}

type remoteBuilt struct {
	at     time.Time
	window time.Duration
	snap   *api.Snapshot
	win    *tracewin.Window // nil when the trace could not be read
}

// New returns the remote source of the target f reads. The dump
// budget counts from now.
func New(f Fetcher, opts Options) *Remote {
	if opts.DumpBudget == 0 {
		opts.DumpBudget = 0.01
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 2_000_000
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits()
	}
	if opts.LeakInterval < 30*time.Second {
		opts.LeakInterval = 30 * time.Second
	}
	return &Remote{f: f, opts: opts, attached: time.Now(), m: model.New(), leaked: -1}
}

// Fetcher returns the fetcher r reads from.
func (r *Remote) Fetcher() Fetcher { return r.f }

// Limits are the caps r reads within.
func (r *Remote) Limits() Limits { return r.opts.Limits }

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
	return r.m.Task(b.snap, b.win, id)
}

// build takes a new snapshot, or returns the last one if it is younger than
// reuse and of the same window.
func (r *Remote) build(ctx context.Context, window time.Duration, reuse time.Duration) (*remoteBuilt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reuse > 0 && r.last != nil && r.last.window == window && time.Since(r.last.at) <= reuse {
		return r.last, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var notes []string
	parts := []string{"trace"}

	// 1. The goroutine count, and labels by stack, without stopping the world.
	var prof *model.StackProfile
	count := int64(-1)
	if !r.noProfile {
		p, err := r.goroutineProfile(ctx)
		switch {
		case errors.Is(err, source.ErrUnsupported):
			r.noProfile = true
		case err != nil:
			return nil, err
		default:
			prof, count = p, p.Total()
			r.m.SetProfile(p, time.Now())
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
	if _, ok := AsLimit(traceErr); ok {
		return nil, traceErr
	}
	notes = append(notes, traceNotes...)
	now := time.Now()

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
			format.Duration(now.Sub(r.leakAt)), r.opts.LeakInterval))
	}

	// 4. A full dump, within the budget.
	gs, dumpNote, dumped, dumpErr := r.maybeDump(ctx, now, count, prof != nil)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dumpErr != nil {
		return nil, dumpErr
	}
	if dumped {
		parts = append(parts, "dump")
	}
	notes = append(notes, dumpNote)

	var snap *api.Snapshot
	switch {
	case win != nil:
		snap = r.m.Snapshot(win, traceEnd(win, now))
	case dumped:
		snap = &api.Snapshot{Tasks: make([]api.Task, 0, len(gs))}
		for i := range gs {
			snap.Tasks = append(snap.Tasks, model.DumpTask(&gs[i], false))
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
	snap.Partial = model.PartialOf(snap.Notes)
	snap.Findings = []api.Finding{}
	r.last = &remoteBuilt{at: now, window: window, snap: snap, win: win}
	return r.last, nil
}

func (r *Remote) goroutineProfile(ctx context.Context) (*model.StackProfile, error) {
	rc, err := r.f.GoroutineProfile(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := readProto(Limit(rc, r.opts.Limits.Profile, CapProfile, "the goroutine profile", ParseBytes), r.opts.Limits.Profile, "the goroutine profile")
	if err != nil {
		return nil, err
	}
	p, err := model.ParseStackProfile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: the goroutine profile (debug=0) is not a pprof profile: %w", r.f.Target(), err)
	}
	return p, nil
}

// trace reads and analyses a trace of window. A trace that cannot be had
// gives a nil window and its error; a cut or corrupt one gives what was read
// and a note.
func (r *Remote) trace(ctx context.Context, window time.Duration) (*tracewin.Window, []string, error) {
	start := time.Now()
	rc, traced, err := r.f.Trace(ctx, window)
	if err != nil {
		return nil, []string{"no execution trace: " + err.Error()}, err
	}
	defer rc.Close()
	rc = Limit(rc, r.opts.Limits.Trace(traced.Seconds()), CapTrace, fmt.Sprintf("the execution trace of %s", format.Duration(traced)), ParseBytes)
	wo := tracewin.WindowOptions{Sites: true, Parallel: true}
	if r.opts.MaxEvents > 0 {
		wo.MaxEvents = r.opts.MaxEvents
	}
	hr := &headReader{r: rc}
	win, err := tracewin.AnalyzeTrace(hr, wo)
	parse := max(0, time.Since(start)-traced) // the part after the target stopped tracing
	var notes []string
	if v, ok := tracewin.GoVersion(hr.head); ok && r.goVersion == "" {
		r.goVersion = v + "+"
		notes = append(notes, fmt.Sprintf("Go version from the trace format: %s or later", v))
	}
	if le, ok := Exceeded(rc); ok {
		return nil, nil, le
	}
	if err != nil && len(win.Goroutines) == 0 {
		return nil, []string{"no usable execution trace: " + err.Error()}, err
	}
	notes = append(notes, fmt.Sprintf("model computed in inspect-cli from %s: a %s execution trace (%s), parsed here as it arrived (done %s after it ended)",
		r.f.Kind(), format.Duration(traced), format.Bytes(hr.n), format.Duration(parse)))
	if d := traced - window; d > window/10 || -d > window/10 {
		notes = append(notes, fmt.Sprintf("the %s traces for %s whatever the window asked (%s)", r.f.Kind(), traced, window))
	}
	if err != nil {
		notes = append(notes, model.PartialTrace+err.Error())
	} else if win.Truncated {
		notes = append(notes, fmt.Sprintf("the trace window was cut short at %d events (%s of it): numbers cover that part",
			win.Events, format.Nanos(win.Duration())))
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

// readLeaks reads the goroutineleak profile: the leak count, and the stacks
// whose goroutines leaked. It returns a note on failure.
func (r *Remote) readLeaks(ctx context.Context, now time.Time) string {
	rc, err := r.f.LeakProfile(ctx)
	if errors.Is(err, source.ErrUnsupported) {
		r.noLeak = true
		return ""
	}
	if err != nil {
		return "no goroutineleak profile: " + err.Error()
	}
	defer rc.Close()
	data, err := readProto(Limit(rc, r.opts.Limits.Profile, CapProfile, "the goroutineleak profile", ParseBytes), r.opts.Limits.Profile, "the goroutineleak profile")
	if err != nil {
		return "no goroutineleak profile: " + err.Error()
	}
	p, err := model.ParseStackProfile(bytes.NewReader(data))
	if err != nil {
		return "the goroutineleak profile is not a pprof profile: " + err.Error()
	}
	r.leakAt, r.leaked = now, int(p.Total())
	r.m.SetLeaks(p)
	return ""
}

// dumpDue says whether a dump of count goroutines fits the budget now, what
// it would cost, and when it will fit (zero: never at this budget).
func (r *Remote) dumpDue(now time.Time, count int64) (due bool, expected time.Duration, at time.Time) {
	expected = time.Duration(count) * source.DumpNSPerGoroutine
	if r.dumpNSPerG > 0 {
		expected = max(expected, time.Duration(r.dumpNSPerG*float64(count)))
	}
	from := r.dumpAt
	if from.IsZero() {
		from = r.attached
	}
	need := source.Spacing(expected, r.opts.DumpBudget)
	if need > 100*365*24*time.Hour {
		return false, expected, time.Time{}
	}
	return now.Sub(from) >= need, expected, from.Add(need)
}

// maybeDump takes a full dump if the budget allows it and returns its
// goroutines, the note that says where labels and wait minutes come from,
// and whether it dumped; err is a dump past its cap.
func (r *Remote) maybeDump(ctx context.Context, now time.Time, count int64, haveProfile bool) (_ []dump.Goroutine, _ string, _ bool, err error) {
	budget := fmt.Sprintf("dumps stop the target's world for ~6µs per goroutine: they take at most %s of the time since attaching", format.Percent(r.opts.DumpBudget))
	between := "labels are from the goroutine profile by stack"
	if !haveProfile {
		between = "labels are unknown"
	}
	older := func(why string) string {
		if r.dumpAt.IsZero() {
			return fmt.Sprintf("no goroutine dump: %s; %s, or else inherited from the creator; wait minutes and creators of goroutines older than the trace are unknown", why, between)
		}
		return fmt.Sprintf("labels, wait minutes and leak marks are from a goroutine dump %s ago (%s; %s); goroutines it did not see: %s, or else inherited from the creator",
			format.Duration(now.Sub(r.dumpAt)), why, budget, between)
	}
	if r.opts.DumpBudget < 0 {
		return nil, older("dumps are off (--dump-budget 0)"), false, nil
	}
	if count < 0 {
		return nil, older("the goroutine count is unknown, so is a dump's pause"), false, nil
	}
	due, expected, at := r.dumpDue(now, count)
	if !due {
		next := "never at this budget"
		if !at.IsZero() {
			next = "next in ~" + format.Duration(at.Sub(now))
		}
		return nil, older(fmt.Sprintf("one would stop the target's world for ~%s (%d goroutines), more than %s of the %s since attaching allows; %s",
			format.Duration(expected), count, format.Percent(r.opts.DumpBudget), format.Duration(now.Sub(r.attached)), next)), false, nil
	}
	// The target answers once the dump is written: it stopped the world
	// for part of the time the request takes.
	began := time.Now()
	rc, err := r.f.Dump(ctx)
	if err != nil {
		return nil, older("the dump failed: " + err.Error()), false, nil
	}
	data, rerr := io.ReadAll(Limit(rc, r.opts.Limits.Dump, CapDump, "the goroutine dump (debug=2)", ParseLines))
	rc.Close()
	if le, ok := AsLimit(rerr); ok {
		r.dumpAt, r.dumps, r.dumpTotal = now, r.dumps+1, r.dumpTotal+time.Since(began)
		return nil, "", false, le
	}
	cost := time.Since(began)
	// It stopped the world whatever came of it.
	r.dumpAt, r.dumps, r.dumpTotal = now, r.dumps+1, r.dumpTotal+cost
	gs, perr := dump.ParseDumpBytes(data)
	if len(gs) == 0 {
		r.dumpCost = cost
		why := "the dump failed"
		if rerr != nil {
			why += ": " + rerr.Error()
		} else if perr != nil {
			why += ": " + perr.Error()
		}
		return nil, older(why), false, nil
	}
	r.dumpCost = cost
	r.dumpNSPerG = float64(cost) / float64(len(gs))
	r.m.SetDump(gs, now)
	what := "labels, wait minutes and creators"
	if !slices.ContainsFunc(gs, func(g dump.Goroutine) bool { return g.Labels != nil }) {
		// Before Go 1.27 dumps print no labels (unless GODEBUG=tracebacklabels=1).
		what = "wait minutes and creators"
		if haveProfile {
			what = "labels from the goroutine profile by stack (the dump has none); wait minutes and creators"
		}
	}
	note := fmt.Sprintf("%s from a goroutine dump taken now (%d goroutines: it stopped the target's world for ~%s, fetched in %s); %s: %d dumps in %s, %s in all",
		what, len(gs), format.Duration(time.Duration(len(gs))*source.DumpNSPerGoroutine), format.Duration(cost), budget,
		r.dumps, format.Duration(now.Sub(r.attached)), format.Duration(r.dumpTotal))
	if rerr != nil || perr != nil {
		note += fmt.Sprintf("; the dump has problems, read as far as it goes: %v", errors.Join(rerr, perr))
	}
	return gs, note, true, nil
}

// traceEnd is when win ended on the wall clock: its clock's, else now.
func traceEnd(win *tracewin.Window, now time.Time) time.Time {
	if !win.WallEnd.IsZero() {
		return win.WallEnd
	}
	return now
}

func (r *Remote) process(st Stats, count int64, tasks []api.Task) api.Process {
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

// Kinds of remote targets (Fetcher.Kind).
const (
	KindPprof = "net/http/pprof"
	KindGops  = "gops agent"
)

// PprofFetcher reads a program's net/http/pprof endpoints.
type PprofFetcher struct {
	c *api.Client
	tracker
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

// open GETs path within timeout; a 404 wraps source.ErrUnsupported when unsupported.
func (p *PprofFetcher) open(ctx context.Context, path string, timeout time.Duration) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	done := p.start("GET " + path)
	resp, err := p.c.Open(ctx, path)
	if err != nil {
		done()
		cancel()
		return nil, err
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: func() { done(); cancel() }}, nil
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
func (p *PprofFetcher) Stats(ctx context.Context) (Stats, error) {
	rc, err := p.open(ctx, "/debug/pprof/threadcreate?debug=1", 30*time.Second)
	if err != nil {
		return Stats{}, err
	}
	defer rc.Close()
	line, _ := bufio.NewReader(io.LimitReader(rc, 4096)).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "threadcreate profile: total ")
	n, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil {
		return Stats{}, fmt.Errorf("%s/debug/pprof/threadcreate?debug=1 does not start with \"threadcreate profile: total N\"", p.c.Base)
	}
	return Stats{Threads: n}, nil
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
// 1.27) wraps source.ErrUnsupported.
func (p *PprofFetcher) LeakProfile(ctx context.Context) (io.ReadCloser, error) {
	rc, err := p.open(ctx, "/debug/pprof/goroutineleak?debug=0", time.Minute)
	if api.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %w", source.ErrUnsupported, err)
	}
	return rc, err
}
