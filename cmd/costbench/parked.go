//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
	"github.com/inspectd/inspectd/internal/source/remote"
)

// parked is what inspecting N parked goroutines cost, by request kind.
type parked struct {
	n         int
	agentRest *rest // nil when the agent part did not run
	pprofRest *rest
	rows      []parkedRow
}

// rest is a target at rest after the warm-up: nothing asked yet.
type rest struct {
	rss        int64
	cores      float64 // CPU per wall second over the warm-up
	goroutines int
}

// parkedRow is one kind of request.
type parkedRow struct {
	what     string
	times    []time.Duration // of each request; none for what has no duration
	bytes    []int64         // of each answer
	pauses   pauses          // the target's stop-the-world pauses over the requests
	rssAdded int64           // VmRSS after them against at rest
	note     string
}

// pauses are the stop-the-world pauses between two stats.
type pauses struct {
	count   uint64
	longest float64 // seconds: the upper bound of the highest bucket that gained counts
}

// pausesBetween reads the pause histograms of a and b (gc and other).
func pausesBetween(r target.Ready, a, b target.Stat) pauses {
	var p pauses
	add := func(buckets []float64, before, after []uint64) {
		for i := range min(len(before), len(after)) {
			gained := after[i] - before[i]
			if gained == 0 {
				continue
			}
			p.count += gained
			bound := buckets[i+1] // bucket i is [buckets[i], buckets[i+1])
			if bound > 1e300 {    // +Inf: its lower bound is all we know
				bound = buckets[i]
			}
			p.longest = max(p.longest, bound)
		}
	}
	add(r.PauseBucketsGC, a.PausesGC, b.PausesGC)
	add(r.PauseBucketsOther, a.PauseOther, b.PauseOther)
	return p
}

// runParked measures N parked goroutines with the agent, then with pprof.
func (b *bench) runParked(ctx context.Context, n int) (*parked, error) {
	res := &parked{n: n}
	if slices.Contains(b.opts.configs, cfgIdle) || slices.Contains(b.opts.configs, cfgWatched) {
		if err := b.parkedAgent(ctx, res); err != nil {
			return nil, fmt.Errorf("parked %d, agent: %w", n, err)
		}
		if err := b.parkedWatchOnly(ctx, res); err != nil {
			return nil, fmt.Errorf("parked %d, agent, watch only: %w", n, err)
		}
	}
	if slices.Contains(b.opts.configs, cfgPprof) {
		kinds := []struct{ what, path string }{
			{"pprof goroutine?debug=2", "/debug/pprof/goroutine?debug=2"},
			{"pprof goroutine?debug=0", "/debug/pprof/goroutine?debug=0"},
			{"gops stack dump", ""},
			{"fgprof?seconds=1", "/debug/fgprof?seconds=1"},
		}
		for _, k := range kinds {
			if err := b.parkedPprof(ctx, res, k.what, k.path); err != nil {
				return nil, fmt.Errorf("parked %d, %s: %w", n, k.what, err)
			}
		}
	}
	return res, nil
}

// startParked starts a parked target, waits the warm-up and describes it
// at rest.
func (b *bench) startParked(ctx context.Context, n int, name string, args ...string) (*targetProc, target.Stat, *rest, error) {
	args = append([]string{"-workload", target.Parked, "-parked", strconv.Itoa(n)}, args...)
	p, err := b.start(ctx, fmt.Sprintf("parked %d/%s", n, name), startTimeout(n), args...)
	if err != nil {
		return nil, target.Stat{}, nil, err
	}
	s0, err := p.stat(ctx)
	if err == nil {
		err = sleep(ctx, b.opts.warmup)
	}
	var s1 target.Stat
	if err == nil {
		s1, err = p.stat(ctx)
	}
	if err != nil {
		p.stop()
		return nil, s1, nil, err
	}
	r := &rest{rss: s1.RSSBytes, goroutines: s1.Goroutines}
	if wall := s1.MonoNS - s0.MonoNS; wall > 0 {
		r.cores = float64(s1.CPUNS-s0.CPUNS) / float64(wall)
	}
	return p, s1, r, nil
}

// snapshotTime and snapshotSource read the start of a snapshot's JSON, or
// of a watch update's: when it was built, and from what.
var (
	snapshotTime   = regexp.MustCompile(`"time":\s*"([^"]*)"`)
	snapshotSource = regexp.MustCompile(`"source":\s*"([^"]*)"`)
)

func headField(re *regexp.Regexp, head []byte) string {
	if m := re.FindSubmatch(head); m != nil {
		return string(m[1])
	}
	return ""
}

// parkedAgent: the first snapshot, one a second for -steady, then the watch
// stream for -watch, in one target with the agent.
func (b *bench) parkedAgent(ctx context.Context, res *parked) error {
	p, sRest, r, err := b.startParked(ctx, res.n, "agent", append([]string{"-inspect", target.InspectAgent}, b.agentArgs(target.InspectAgent)...)...)
	if err != nil {
		return err
	}
	defer p.stop()
	res.agentRest = r
	hc := newHTTPClient(1)
	url := "http://" + p.ready.AgentAddr + "/api/v1/snapshot?" + snapshotQuery
	ask := func() (fetched, error) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		f, err := fetch(rctx, hc, url)
		if err != nil {
			return f, fmt.Errorf("asking for a snapshot: %w", err)
		}
		return f, nil
	}

	// Sources with "+dump" were built with a full goroutine dump, which
	// stops the world about 6 µs per goroutine.
	// A snapshot is known by its time: requests and updates that share
	// one carry the same.
	dumps := map[string]bool{}
	dumped := func(source, time string) bool {
		if !strings.HasSuffix(source, "+dump") || dumps[time] {
			return false
		}
		dumps[time] = true
		return true
	}

	b.progress("parked %d, agent: the first snapshot", res.n)
	cold, err := ask()
	if err != nil {
		return err
	}
	sCold, err := p.stat(ctx)
	if err != nil {
		return err
	}
	res.rows = append(res.rows, parkedRow{
		what: "agent snapshot, first", times: []time.Duration{cold.took}, bytes: []int64{cold.bytes},
		pauses: pausesBetween(p.ready, sRest, sCold), rssAdded: sCold.RSSBytes - sRest.RSSBytes,
		note: "source " + headField(snapshotSource, cold.head),
	})
	dumped(headField(snapshotSource, cold.head), headField(snapshotTime, cold.head))

	// Then one a second, as a client polling would ask, for -steady: the
	// steady ones are all of them but the first.
	b.progress("parked %d, agent: a snapshot a second for %v", res.n, b.opts.steady)
	type answer struct {
		fetched
		source string
		built  bool // a snapshot of its own, not the last one shared
		dump   bool // built with a goroutine dump
	}
	var answers []answer
	lastTime := headField(snapshotTime, cold.head)
	for began := time.Now(); time.Since(began) < b.opts.steady; {
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		f, err := ask()
		if err != nil {
			return err
		}
		t := headField(snapshotTime, f.head)
		a := answer{fetched: f, source: headField(snapshotSource, f.head), built: t != lastTime}
		a.dump = dumped(a.source, t)
		answers = append(answers, a)
		lastTime = t
	}
	sSteady, err := p.stat(ctx)
	if err != nil {
		return err
	}
	steady := answers
	if len(steady) > 1 {
		steady = steady[1:]
	}
	row := parkedRow{
		what: "agent snapshot, steady", pauses: pausesBetween(p.ready, sCold, sSteady), rssAdded: sSteady.RSSBytes - sRest.RSSBytes,
	}
	built, withDump := 0, 0
	for _, a := range steady {
		row.times = append(row.times, a.took)
		row.bytes = append(row.bytes, a.bytes)
		if a.built {
			built++
		}
		if a.dump {
			withDump++
		}
	}
	row.note = fmt.Sprintf("%d asked a second apart after the first; %d built anew (%d with a goroutine dump), %d shared the last one; pauses and RSS: all %d", len(steady), built, withDump, len(steady)-built, len(answers))
	res.rows = append(res.rows, row)

	b.progress("parked %d, agent: watching for %v", res.n, b.opts.watch)
	began := time.Now()
	updates, sWatched, _, err := b.watchFor(ctx, p)
	if err != nil {
		return err
	}
	if err := b.writeHeapProfile(ctx, p, res.n, "agent"); err != nil {
		return err
	}
	watched := pausesBetween(p.ready, sSteady, sWatched)
	first := updates[0]
	withDump = 0
	for _, u := range updates {
		if dumped(u.source, u.time) {
			withDump++
		}
	}
	res.rows = append(res.rows, parkedRow{
		what: "agent watch, first update", times: []time.Duration{first.at.Sub(began)}, bytes: []int64{int64(first.bytes)},
		pauses: watched, rssAdded: sWatched.RSSBytes - sRest.RSSBytes,
		note: fmt.Sprintf("full: %v; %d updates in %v (%d with a new goroutine dump); pauses and RSS: the whole watch", first.full, len(updates), b.opts.watch, withDump),
	})
	if len(updates) > 1 {
		row := parkedRow{what: "agent watch, later updates", pauses: watched, rssAdded: sWatched.RSSBytes - sRest.RSSBytes}
		for i, u := range updates[1:] {
			row.times = append(row.times, u.at.Sub(updates[i].at))
			row.bytes = append(row.bytes, int64(u.bytes))
		}
		row.note = "time: between updates"
		res.rows = append(res.rows, row)
	}
	note := fmt.Sprintf("from the first snapshot to the end of the watch, %v; snapshots built with a goroutine dump: %d", time.Duration(sWatched.MonoNS-sRest.MonoNS).Round(time.Second), len(dumps))
	if len(dumps) == 0 {
		// The agent takes a dump only where its pause, estimated per
		// goroutine, fits its --max-pause (1 ms by default).
		note += " (a dump stops the world for every goroutine: the agent takes none where that would pass its max pause)"
	}
	res.rows = append(res.rows, parkedRow{
		what: "agent, the whole inspection", pauses: pausesBetween(p.ready, sRest, sWatched), rssAdded: sWatched.RSSBytes - sRest.RSSBytes,
		note: note,
	})
	return nil
}

// parkedWatchOnly follows the watch stream for -watch in a fresh target
// with the agent, asked nothing before: what a program pays while
// inspect-cli top watches it, without the full snapshots before.
func (b *bench) parkedWatchOnly(ctx context.Context, res *parked) error {
	p, sRest, _, err := b.startParked(ctx, res.n, "agent, watch only", append([]string{"-inspect", target.InspectAgent}, b.agentArgs(target.InspectAgent)...)...)
	if err != nil {
		return err
	}
	defer p.stop()
	b.progress("parked %d, agent, watch only: watching for %v", res.n, b.opts.watch)
	began := time.Now()
	updates, sWatched, heap, err := b.watchFor(ctx, p)
	if err != nil {
		return err
	}
	if err := b.writeHeapProfile(ctx, p, res.n, "watch-only"); err != nil {
		return err
	}
	row := parkedRow{
		what: "agent, watch only", pauses: pausesBetween(p.ready, sRest, sWatched), rssAdded: sWatched.RSSBytes - sRest.RSSBytes,
		note: fmt.Sprintf("a fresh target asked nothing before; %d updates in %v, the first after %v; RSS: at the end of the watch; %s",
			len(updates), b.opts.watch, updates[0].at.Sub(began).Round(time.Millisecond), heap.String(sRest)),
	}
	for _, u := range updates {
		row.bytes = append(row.bytes, int64(u.bytes))
	}
	res.rows = append(res.rows, row)
	return nil
}

// writeHeapProfile writes p's heap profile to -heap-profiles, if given, at
// the end of one of the parked agent parts (what).
func (b *bench) writeHeapProfile(ctx context.Context, p *targetProc, n int, what string) error {
	if b.opts.heapProfiles == "" {
		return nil
	}
	path, err := filepath.Abs(filepath.Join(b.opts.heapProfiles, fmt.Sprintf("parked-%d-%s.heap.pb.gz", n, what)))
	if err != nil {
		return err
	}
	if _, err := p.heapProfile(ctx, path); err != nil {
		return err
	}
	b.progress("parked %d, %s: heap profile in %s", n, what, path)
	return nil
}

// parkedPprof asks a target with net/http/pprof (and fgprof and a gops
// agent) -parked-reps times for path, or for a gops stack dump when path is
// empty.
func (b *bench) parkedPprof(ctx context.Context, res *parked, what, path string) error {
	p, sRest, r, err := b.startParked(ctx, res.n, "pprof", "-inspect", target.InspectPprof, "-gops-dir", filepath.Join(b.tmp, "gops"))
	if err != nil {
		return err
	}
	defer p.stop()
	if res.pprofRest == nil {
		res.pprofRest = r
	}
	hc := newHTTPClient(1)
	row := parkedRow{what: what}
	var dumped []int
	for i := range b.opts.parkedReps {
		b.progress("parked %d: %s (%d/%d)", res.n, what, i+1, b.opts.parkedReps)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		var f fetched
		if path == "" {
			began := time.Now()
			rc, err := remote.NewGopsFetcher(p.ready.GopsAddr).Dump(rctx)
			if err == nil {
				f, err = readAll(rc, began)
				rc.Close()
			}
			if err != nil {
				cancel()
				return fmt.Errorf("gops stack dump: %w", err)
			}
		} else if f, err = fetch(rctx, hc, "http://"+p.ready.PprofAddr+path); err != nil {
			cancel()
			return err
		}
		cancel()
		row.times = append(row.times, f.took)
		row.bytes = append(row.bytes, f.bytes)
		dumped = append(dumped, f.goroutines)
		if i+1 < b.opts.parkedReps {
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
		}
	}
	sEnd, err := p.stat(ctx)
	if err != nil {
		return err
	}
	row.pauses = pausesBetween(p.ready, sRest, sEnd)
	row.rssAdded = sEnd.RSSBytes - sRest.RSSBytes
	if path == "" || path == "/debug/pprof/goroutine?debug=2" {
		lo, hi := slices.Min(dumped), slices.Max(dumped)
		row.note = fmt.Sprintf("%s goroutines in the dump (%d at rest)", span(float64(lo), float64(hi), func(v float64) string { return strconv.Itoa(int(v)) }), r.goroutines)
	}
	res.rows = append(res.rows, row)
	return nil
}

// watchFor follows p's watch stream as top asks it for -watch: its updates,
// the target's figures at the end, while the stream is still open, and its
// heap's over the watch.
func (b *bench) watchFor(ctx context.Context, p *targetProc) ([]watchUpdate, target.Stat, heapSamples, error) {
	w, err := startWatch(ctx, "http://"+p.ready.AgentAddr+"/api/v1/watch?"+watchQuery)
	if err != nil {
		return nil, target.Stat{}, heapSamples{}, err
	}
	// The heap, twice a second: one reading at the end says little of a
	// heap that rises and falls with each snapshot.
	var hs heapSamples
	began := time.Now()
	for time.Since(began) < b.opts.watch {
		if err := sleep(ctx, min(500*time.Millisecond, b.opts.watch-time.Since(began))); err != nil {
			w.stop()
			return nil, target.Stat{}, hs, err
		}
		st, err := p.stat(ctx)
		if err != nil {
			w.stop()
			return nil, target.Stat{}, hs, err
		}
		hs.add(st, time.Since(began) >= b.opts.watch/2)
	}
	st, err := p.stat(ctx)
	if err != nil {
		w.stop()
		return nil, target.Stat{}, hs, err
	}
	failed := w.failure()
	updates := w.stop()
	if failed != nil {
		return nil, target.Stat{}, hs, fmt.Errorf("the watch stream ended: %w", failed)
	}
	if len(updates) == 0 {
		return nil, target.Stat{}, hs, fmt.Errorf("no watch update in %v", b.opts.watch)
	}
	return updates, st, hs, nil
}

// heapSamples are the target's heap figures read over a watch.
type heapSamples struct {
	maxLive, maxGoal uint64
	// Over the second half of the watch, the steady state.
	sumLive, sumGoal uint64
	n                uint64
}

func (h *heapSamples) add(st target.Stat, steady bool) {
	h.maxLive, h.maxGoal = max(h.maxLive, st.HeapLiveBytes), max(h.maxGoal, st.HeapGoalBytes)
	if steady {
		h.sumLive += st.HeapLiveBytes
		h.sumGoal += st.HeapGoalBytes
		h.n++
	}
}

// String says the heap's figures against at rest.
func (h heapSamples) String(rest target.Stat) string {
	if h.n == 0 {
		return ""
	}
	return fmt.Sprintf("heap live (the last GC's) over the second half of the watch %s on average, goal %s; at most %s and %s over the watch; at rest %s and %s",
		byteSize(float64(h.sumLive/h.n)), byteSize(float64(h.sumGoal/h.n)), byteSize(float64(h.maxLive)), byteSize(float64(h.maxGoal)),
		byteSize(float64(rest.HeapLiveBytes)), byteSize(float64(rest.HeapGoalBytes)))
}
