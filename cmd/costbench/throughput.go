//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// runResult is one measured run of a throughput workload.
type runResult struct {
	perCPU  float64 // operations per CPU-second of the target
	perWall float64 // operations per wall second
	cores   float64 // the target's CPU per wall second
	rss     float64 // VmRSS at the end, bytes
	growth  float64 // of VmRSS over the measurement, bytes a second
	p99     time.Duration
	// agent-watched: what the watch stream brought during the measurement,
	// how long after connecting its first update came, and its first with
	// a window of trace (0: none came), and the longest time without one
	// from connecting to the end of the measurement.
	watchUpdates int
	watchTraced  float64 // the median share of its window an update's target traced
	watchRate    float64 // bytes a second
	watchFirst   time.Duration
	watchWindow  time.Duration
	watchGap     time.Duration
}

// throughput is a workload's runs, by configuration, in run order.
type throughput struct {
	workload string
	runs     map[string][]runResult
}

// inspection is the target's -inspect for a configuration.
func inspection(cfg string) string {
	switch cfg {
	case cfgIdle, cfgWatched:
		return target.InspectAgent
	case cfgPprof:
		return target.InspectPprof
	}
	return target.InspectNone
}

// runThroughput runs every configuration of workload repeats times,
// alternating.
func (b *bench) runThroughput(ctx context.Context, workload string) (*throughput, error) {
	t := &throughput{workload: workload, runs: map[string][]runResult{}}
	total := b.opts.repeats * len(b.opts.configs)
	for rep := range b.opts.repeats {
		for i, cfg := range b.opts.configs {
			b.progress("%s [%d/%d] %s, repeat %d/%d: warm-up %v, measure %v", workload, rep*len(b.opts.configs)+i+1, total, cfg, rep+1, b.opts.repeats, b.opts.warmup, b.opts.measure)
			r, err := b.throughputRun(ctx, workload, cfg)
			if err != nil {
				return nil, fmt.Errorf("%s, %s, repeat %d: %w", workload, cfg, rep+1, err)
			}
			b.progress("%s %s: %s ops/CPU-s, %s ops/s, %.2f cores, RSS %s%s", workload, cfg, count(r.perCPU), count(r.perWall), r.cores, byteSize(r.rss), latencyNote(r))
			t.runs[cfg] = append(t.runs[cfg], r)
		}
	}
	return t, nil
}

func latencyNote(r runResult) string {
	if r.p99 == 0 {
		return ""
	}
	return ", p99 " + duration(r.p99)
}

// targetArgs are the target flags for workload under cfg.
func (b *bench) targetArgs(workload, cfg string) []string {
	args := []string{
		"-workload", workload, "-inspect", inspection(cfg),
		"-pairs", strconv.Itoa(b.opts.pairs),
		"-task-iters", strconv.Itoa(b.taskIters),
		"-handler-iters", strconv.Itoa(b.handlerIters),
	}
	return append(args, b.agentArgs(inspection(cfg))...)
}

// agentOptions says how the agent targets run the agent, for the tables.
func (b *bench) agentOptions() string {
	if b.opts.budget == 0 {
		return "default options"
	}
	return fmt.Sprintf("default options but OverheadBudget %g", b.opts.budget)
}

// agentCall is how the agent targets start the agent, for the tables.
func (b *bench) agentCall() string {
	if b.opts.budget == 0 {
		return "agent.Listen(agent.Options{})"
	}
	return fmt.Sprintf("agent.Listen(agent.Options{OverheadBudget: %g})", b.opts.budget)
}

// agentArgs are the target's flags for -overhead-budget, when it runs the
// agent (inspect) and the budget is not the agent's default.
func (b *bench) agentArgs(inspect string) []string {
	if inspect != target.InspectAgent || b.opts.budget == 0 {
		return nil
	}
	return []string{"-overhead-budget", strconv.FormatFloat(b.opts.budget, 'g', -1, 64)}
}

// throughputRun starts a target, warms it up and measures it once.
func (b *bench) throughputRun(ctx context.Context, workload, cfg string) (runResult, error) {
	var r runResult
	p, err := b.start(ctx, workload+"/"+cfg, startTimeout(0), b.targetArgs(workload, cfg)...)
	if err != nil {
		return r, err
	}
	defer p.stop()
	var w *watcher
	if cfg == cfgWatched {
		if w, err = startWatch(ctx, "http://"+p.ready.AgentAddr+"/api/v1/watch?"+watchQuery); err != nil {
			return r, err
		}
		defer w.stop()
	}
	var load *loadGen
	if workload == target.HTTP {
		load = startLoad(ctx, "http://"+p.ready.HTTPAddr+"/work", b.opts.clients)
		defer load.stop()
	}
	if err := sleep(ctx, b.opts.warmup); err != nil {
		return r, err
	}
	s0, err := p.stat(ctx)
	if err != nil {
		return r, err
	}
	var u0 int
	var n0 int64
	if w != nil {
		u0, n0 = w.counts()
	}
	if load != nil {
		load.take()
		load.record()
	}
	if err := sleep(ctx, b.opts.measure); err != nil {
		return r, err
	}
	s1, err := p.stat(ctx)
	if err != nil {
		return r, err
	}
	ops := float64(s1.Ops - s0.Ops)
	cpu := time.Duration(s1.CPUNS - s0.CPUNS).Seconds()
	wall := time.Duration(s1.MonoNS - s0.MonoNS).Seconds()
	if ops <= 0 || cpu <= 0 || wall <= 0 {
		return r, fmt.Errorf("the target did no work in %v (%v operations, %.3fs of CPU)", b.opts.measure, ops, cpu)
	}
	r.perCPU, r.perWall, r.cores = ops/cpu, ops/wall, cpu/wall
	r.rss, r.growth = float64(s1.RSSBytes), float64(s1.RSSBytes-s0.RSSBytes)/wall
	if w != nil {
		if err := w.failure(); err != nil {
			return r, fmt.Errorf("the watch stream ended: %w", err)
		}
		u1, n1 := w.counts()
		r.watchUpdates, r.watchRate = u1-u0, float64(n1-n0)/wall
		r.watchTraced = w.traced(u0)
		r.watchFirst, r.watchWindow, r.watchGap = w.first(), w.firstWindow(), w.longestGap()
	}
	if load != nil {
		lat := load.take()
		if err := load.err(); err != nil {
			return r, fmt.Errorf("http load: %w", err)
		}
		if len(lat) == 0 {
			return r, fmt.Errorf("http load: no request answered in %v", b.opts.measure)
		}
		slices.Sort(lat)
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
