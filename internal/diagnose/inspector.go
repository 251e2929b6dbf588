package diagnose

import (
	"context"
	"slices"
	"sync"
	"time"
	"weak"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// Inspector serves a source's snapshots with their findings: each snapshot
// is diagnosed once, before anyone reads it, so the API, a watch stream
// and a profile built from the same snapshot agree.
type Inspector struct {
	src source.Source
	eng *Engine
	// Observed, when set, is called after each new snapshot is diagnosed,
	// with the findings before and after (under the inspector's lock).
	Observed func(prev, cur []api.Finding)

	mu sync.Mutex // serialises observations; guards last
	// last is the snapshot observed last, weakly: a source builds the
	// next one after letting go of it, and at 100,000 goroutines two
	// snapshots at once are 30 MB more at the peak of every build.
	last weak.Pointer[api.Snapshot]
}

// NewInspector diagnoses src's snapshots with eng.
func NewInspector(src source.Source, eng *Engine) *Inspector {
	return &Inspector{src: src, eng: eng}
}

// profile reads one of the source's pprof profiles for the rules.
func (p *Inspector) profile(name string) (*profile.Profile, error) {
	return p.src.Profile(context.Background(), name)
}

// Engine returns the inspector's engine.
func (p *Inspector) Engine() *Engine { return p.eng }

// Snapshot returns the source's snapshot with its findings.
func (p *Inspector) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	s, err := p.src.Snapshot(ctx, window)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A source may hand the same snapshot to several requests (the
	// Collector does within its CPU budget): diagnose it only once.
	if s != p.last.Value() {
		// The diagnosis is CPU the program spends on inspection when
		// the source is in it: charged to it, with the collection of
		// its garbage (some half as much again).
		cpu := source.OnThread(func() {
			prev := p.eng.Findings()
			fs := p.eng.Observe(Input{Snapshot: s, Stack: p.src.StackOf, StretchStack: p.src.StretchStackOf, Profile: p.profile})
			p.last = weak.Make(s)
			if p.Observed != nil {
				p.Observed(prev, fs)
			}
		})
		source.Charge(p.src, cpu*3/2)
	}
	return s, nil
}

// Charge implements source.Charger for the source it diagnoses.
func (p *Inspector) Charge(cpu time.Duration) { source.Charge(p.src, cpu) }

// Task returns one task with the rules that name it.
func (p *Inspector) Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, err := p.src.Task(ctx, id, window)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, f := range p.eng.Findings() {
		if slices.Contains(f.Evidence.Tasks, id) && !slices.Contains(warnings, f.Rule) {
			warnings = append(warnings, f.Rule)
		}
	}
	t.SetDetail(func(d *api.TaskDetail) { d.Warnings = warnings })
	return t, nil
}

// Run diagnoses a snapshot now and every interval until ctx ends, so that
// findings stay current while nobody asks; errors go to onErr. It takes what the
// source has (source.AcceptPartial): a window still being recorded gives
// the rules its first figures rather than none.
func (p *Inspector) Run(ctx context.Context, interval, window time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// The first at once: a source that traces only while asked
		// starts now, not an interval later.
		if _, err := p.Snapshot(source.AcceptPartial(ctx), window); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
