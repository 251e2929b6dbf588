package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/probes"
)

// diagnoser is the daemon's prober: the collector's snapshots, each run
// through the diagnosis rules once, so that every reader (the API, the
// watch stream, the goroutine-states profile) sees its findings. It also
// runs the rules in the background, so findings and the
// inspectd_findings gauge stay current while nobody watches.
type diagnoser struct {
	col   *probes.Collector
	eng   *diagnose.Engine
	log   *slog.Logger
	gauge *prometheus.GaugeVec

	mu   sync.Mutex // serialises observations; guards last
	last *api.Snapshot
}

func newDiagnoser(col *probes.Collector, cfg diagnose.Config, reg prometheus.Registerer, log *slog.Logger) (*diagnoser, error) {
	eng, err := diagnose.New(cfg)
	if err != nil {
		return nil, err
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "inspectd_findings",
		Help: "Current findings of the diagnosis rules, by rule and severity.",
	}, []string{"rule", "severity"})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("registering inspectd_findings: %w", err)
	}
	d := &diagnoser{col: col, eng: eng, log: log.With("component", "diagnose"), gauge: g}
	d.setGauge(nil)
	return d, nil
}

// Snapshot returns the collector's snapshot with its findings.
func (d *diagnoser) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	s, err := d.col.Snapshot(ctx, window)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The collector shares one snapshot between requests within its CPU
	// budget: diagnose each only once, before anyone reads it.
	if s != d.last {
		prev := d.eng.Findings()
		fs := d.eng.Observe(diagnose.Input{Snapshot: s, Stack: d.col.StackOf, StretchStack: d.col.StretchStackOf, Profile: readProfile})
		d.last = s
		d.setGauge(fs)
		d.logChanges(prev, fs)
	}
	return s, nil
}

// Task returns one task with the rules that name it.
func (d *diagnoser) Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.col.Task(ctx, id, window)
	if err != nil {
		return nil, err
	}
	t.Warnings = nil
	for _, f := range d.eng.Findings() {
		if slices.Contains(f.Evidence.Tasks, id) && !slices.Contains(t.Warnings, f.Rule) {
			t.Warnings = append(t.Warnings, f.Rule)
		}
	}
	return t, nil
}

// run diagnoses every interval until ctx ends.
func (d *diagnoser) run(ctx context.Context, interval, window time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := d.Snapshot(ctx, window); err != nil && ctx.Err() == nil {
			d.log.Warn("building a snapshot to diagnose", "err", err)
		}
	}
}

func (d *diagnoser) setGauge(fs []api.Finding) {
	d.gauge.Reset()
	for _, id := range diagnose.Rules() {
		d.gauge.WithLabelValues(id, diagnose.Warning).Set(0)
		d.gauge.WithLabelValues(id, diagnose.Critical).Set(0)
	}
	for _, f := range fs {
		d.gauge.WithLabelValues(f.Rule, f.Severity).Inc()
	}
}

// logChanges logs findings as they appear and clear.
func (d *diagnoser) logChanges(prev, cur []api.Finding) {
	was := map[string]bool{}
	for _, f := range prev {
		was[f.Rule+"|"+f.FirstSeen.String()] = true
	}
	is := map[string]bool{}
	for _, f := range cur {
		k := f.Rule + "|" + f.FirstSeen.String()
		is[k] = true
		if !was[k] {
			d.log.Warn("finding", "rule", f.Rule, "severity", f.Severity, "title", f.Title)
		}
	}
	for _, f := range prev {
		if !is[f.Rule+"|"+f.FirstSeen.String()] {
			d.log.Info("finding cleared", "rule", f.Rule, "title", f.Title)
		}
	}
}

// readProfile reads one of this process's pprof profiles.
func readProfile(name string) (*profile.Profile, error) {
	p := pprof.Lookup(name)
	if p == nil {
		return nil, fmt.Errorf("no %s profile", name)
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	return profile.Parse(&buf)
}
