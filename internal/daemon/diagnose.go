package daemon

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// newDiagnoser returns the daemon's inspector: the collector's snapshots
// with their findings, which it also exports as the gauge
// inspectd_findings{rule,severity} and logs as they come and go.
func newDiagnoser(col *inproc.Collector, cfg diagnose.Config, reg prometheus.Registerer, log *slog.Logger) (*diagnose.Inspector, error) {
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
	setGauge(g, nil)
	log = log.With("component", "diagnose")
	p := diagnose.NewInspector(col, eng)
	p.Observed = func(prev, cur []api.Finding) {
		setGauge(g, cur)
		logChanges(log, prev, cur)
	}
	return p, nil
}

func setGauge(g *prometheus.GaugeVec, fs []api.Finding) {
	g.Reset()
	for _, id := range diagnose.Rules() {
		g.WithLabelValues(id, diagnose.Warning).Set(0)
		g.WithLabelValues(id, diagnose.Critical).Set(0)
	}
	for _, f := range fs {
		g.WithLabelValues(f.Rule, f.Severity).Inc()
	}
}

// logChanges logs findings as they appear and clear.
func logChanges(log *slog.Logger, prev, cur []api.Finding) {
	key := func(f api.Finding) string { return f.Rule + "|" + f.FirstSeen.String() }
	was, is := map[string]bool{}, map[string]bool{}
	for _, f := range prev {
		was[key(f)] = true
	}
	for _, f := range cur {
		is[key(f)] = true
		if !was[key(f)] {
			log.Warn("finding", "rule", f.Rule, "severity", f.Severity, "title", f.Title)
		}
	}
	for _, f := range prev {
		if !is[key(f)] {
			log.Info("finding cleared", "rule", f.Rule, "title", f.Title)
		}
	}
}
