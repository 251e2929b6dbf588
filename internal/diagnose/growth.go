package diagnose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var growthRule = &rule{
	id:         "unbounded-growth",
	lesson:     "tokio_streams, tokio_channels",
	help:       "the heap in use keeps growing, most of it at one allocation site (a finding for each site that holds a good part of it): a buffer or queue without backpressure",
	thresholds: &growthThresholds,
	check:      checkGrowth,
}

// The thresholds of unbounded-growth, in the order of its docs.
var (
	growthThresholds thresholdSet
	growthMinRate    = growthThresholds.perSec("min_rate", 1<<20, "heap growth per second")
	growthMinGrowth  = growthThresholds.bytes("min_growth", 16<<20, "heap growth over the snapshots remembered")
	growthMinSpan    = growthThresholds.duration("min_span", 4*time.Second, "time the growth must span")
)

func checkGrowth(c *check) []found {
	pts := c.e.hist.points
	if len(pts) == 0 {
		return nil
	}
	if pts[len(pts)-1].heap == 0 {
		// The source has no heap figure (a remote pprof target): the heap
		// profile's bytes in use stand in for it, read each snapshot.
		p, err := c.profile("heap")
		if err != nil || p == nil {
			return nil
		}
		vi := sampleIndex(p, "inuse_space")
		if vi < 0 {
			return nil
		}
		var total int64
		for _, s := range p.Sample {
			total += s.Value[vi]
		}
		pts[len(pts)-1].heap = uint64(max(total, 1))
		if pts[0].heap == 0 {
			return nil // remembered from before: not comparable
		}
	}
	// The heap profile's growth is taken since the growth began: reads of
	// it are kept a few seconds apart whether or not the heap grows now.
	// sums is this check's read, by stack, once made.
	var sums map[string]growth
	heapSums := func(p *profile.Profile) map[string]growth {
		if sums == nil {
			if vi := sampleIndex(p, "inuse_space"); vi >= 0 {
				sums = sumByStack(p, vi)
			}
		}
		return sums
	}
	if now := pts[len(pts)-1].at; c.e.hist.profileDue("heap", now) {
		if p, err := c.profile("heap"); err == nil && p != nil {
			if s := heapSums(p); s != nil {
				c.e.hist.keepProfile("heap", s, now)
			}
		}
	}
	// What the last GC found live grows with what the program keeps; the
	// heap in use saws up and down with garbage besides (twice the live
	// heap at the default GOGC), which hides slow growth of a large heap.
	size := func(p point) uint64 { return p.heap }
	if pts[len(pts)-1].liveHeap > 0 && pts[0].liveHeap > 0 {
		size = func(p point) uint64 { return p.liveHeap }
	}
	// Growth counts from the lowest point remembered (the first of a flat
	// stretch at it: the live heap moves in steps, one a GC): a heap that
	// dropped (the buffer was freed, the workload restarted) and grows
	// again is judged on what came after the drop, not against the highs
	// before.
	low := 0
	for i, p := range pts {
		if size(p) < size(pts[low]) {
			low = i
		}
	}
	pts = pts[low:]
	if len(pts) < 3 {
		return nil
	}
	first, last := pts[0], pts[len(pts)-1]
	span := last.at.Sub(first.at)
	if span < c.dur(growthMinSpan) {
		return nil
	}
	// A garbage-collected heap saws up and down: growth is when even the
	// recent lows sit above the old highs.
	third := max(1, len(pts)/3)
	var oldHigh, newLow uint64
	newLow = ^uint64(0)
	for _, p := range pts[:third] {
		oldHigh = max(oldHigh, size(p))
	}
	for _, p := range pts[len(pts)-third:] {
		newLow = min(newLow, size(p))
	}
	if newLow <= oldHigh {
		return nil
	}
	grown := int64(size(last)) - int64(size(first))
	rate := float64(grown) / span.Seconds()
	if float64(grown) < c.num(growthMinGrowth) || rate < c.num(growthMinRate) {
		return nil
	}
	f := api.Finding{
		Evidence: api.Evidence{Figures: map[string]float64{"heap_bytes": float64(last.heap), "growth_bytes": float64(grown), "bytes_per_second": rate}},
		Advice: "Bound the buffer: use a channel with a capacity (the producer then waits, which is backpressure), or drop " +
			"or batch items when the consumer lags; a slice that only grows is a queue without a limit.",
	}
	p, err := c.profile("heap")
	if err != nil || p == nil {
		f.Title = fmt.Sprintf("unbounded growth: the heap grew by %s in %s", format.Bytes(grown), format.Duration(span))
		f.Message = fmt.Sprintf("The live heap grew from %s to %s in %s (%s/s), and kept growing through garbage collections.",
			format.Bytes(int64(size(first))), format.Bytes(int64(size(last))), format.Duration(span), format.Bytes(int64(rate)))
		f.Evidence.Missing = append(f.Evidence.Missing, "heap profile: it names the allocation site")
		return []found{{key: "heap", finding: f}}
	}
	cur := heapSums(p)
	if cur == nil {
		return nil
	}
	type site struct {
		frame api.Frame
		bytes int64
	}
	var sites []site
	var total int64
	for _, g := range c.e.hist.profileGrowth("heap", cur, last.at, first.at) {
		fr, ok := userFrame(g.stack)
		if !ok || g.value <= 0 {
			continue
		}
		total += g.value
		if inspector(g.stack) || c.explodingIn(g.stack) {
			continue
		}
		if i := slices.IndexFunc(sites, func(s site) bool { return s.frame == fr }); i >= 0 {
			sites[i].bytes += g.value
		} else {
			sites = append(sites, site{fr, g.value})
		}
	}
	slices.SortFunc(sites, func(a, b site) int { return cmp.Compare(b.bytes, a.bytes) })
	if len(sites) == 0 || sites[0].bytes < total/3 {
		// The growth is the inspector's own, or spread thin: no one site to blame.
		return nil
	}
	// Each site that holds a good part of the growth is a bug of its own
	// (two queues without a limit are two fixes): a finding each, the
	// rate shared out by the profile's shares.
	var out []found
	for i, st := range sites[:min(3, len(sites))] {
		if i > 0 && st.bytes < total/4 {
			break
		}
		sh := share(st.bytes, total)
		g := f
		g.Evidence.Sites = []api.Frame{st.frame}
		g.Evidence.Figures = maps.Clone(f.Evidence.Figures)
		g.Evidence.Figures["site_bytes"] = float64(st.bytes)
		g.Evidence.Figures["site_share"] = sh
		g.Title = fmt.Sprintf("unbounded growth at %s: heap +%s/s", format.Frame(st.frame), format.Bytes(int64(rate*sh)))
		// The profile samples allocations and is read a few seconds apart
		// from the growth's start: its bytes are its own count, given as a
		// share.
		g.Message = fmt.Sprintf("The live heap grew from %s to %s in %s (%s/s) and kept growing through garbage collections; "+
			"the heap profile puts %s of its growth over that time at %s.",
			format.Bytes(int64(size(first))), format.Bytes(int64(size(last))), format.Duration(span), format.Bytes(int64(rate)),
			format.Percent(sh), format.Frame(st.frame))
		out = append(out, found{key: "heap|" + format.Frame(st.frame), finding: g})
	}
	return out
}

func inspector(stack []api.Frame) bool {
	for _, f := range stack {
		if isInspectorFunc(f.Function) {
			return true
		}
	}
	return false
}

func (c *check) explodingIn(stack []api.Frame) bool {
	for _, f := range stack {
		if slices.Contains(c.exploding, f.Function) {
			return true
		}
	}
	return false
}
