package diagnose

import (
	"math"
	"time"
)

// A rule declares each of its thresholds once, as a package-level handle
// that the rule's thresholdSet makes:
//
//	var leakThresholds thresholdSet
//
//	var (
//		leakStuckFor  = leakThresholds.duration("stuck_for", 3*time.Second, "how long ...")
//		leakMinGrowth = leakThresholds.count("min_growth", 3, "growth of ...")
//	)
//
//	var leakRule = &rule{id: "goroutine-leak", thresholds: &leakThresholds, ...}
//
// The set lists the thresholds in the order they are declared (package
// initialization runs the independent variables of a file in the order
// written), which is the order of the docs and the README's table, and is
// where Validate finds "goroutine-leak.stuck_for". A check reads a threshold through its handle,
// c.dur(leakStuckFor), and gets the configured value or the default: a
// threshold that was never declared has no handle to name.

// thresholdSet is the thresholds of one rule, in the order declared.
type thresholdSet struct{ list []*Threshold }

func (s *thresholdSet) add(name string, unit Unit, def float64, help string) *Threshold {
	t := &Threshold{Name: name, Help: help, Unit: unit, Default: def}
	s.list = append(s.list, t)
	return t
}

// all returns the thresholds, none for a nil set.
func (s *thresholdSet) all() []*Threshold {
	if s == nil {
		return nil
	}
	return s.list
}

// lookup returns the threshold called name, or nil.
func (s *thresholdSet) lookup(name string) *Threshold {
	for _, t := range s.all() {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Handles, one type per way a check reads a threshold.
type (
	// durationThreshold is read with check.dur.
	durationThreshold struct{ t *Threshold }
	// numberThreshold (a count, a rate per second, bytes) is read with
	// check.num.
	numberThreshold struct{ t *Threshold }
	// ratioThreshold (a share from 0 to 1) is read with check.ratio.
	ratioThreshold struct{ t *Threshold }
)

// duration declares a Duration threshold.
func (s *thresholdSet) duration(name string, def time.Duration, help string) durationThreshold {
	return durationThreshold{s.add(name, Duration, float64(def), help)}
}

// count declares a Count threshold.
func (s *thresholdSet) count(name string, def float64, help string) numberThreshold {
	return numberThreshold{s.add(name, Count, def, help)}
}

// perSec declares a PerSec threshold.
func (s *thresholdSet) perSec(name string, def float64, help string) numberThreshold {
	return numberThreshold{s.add(name, PerSec, def, help)}
}

// bytes declares a Bytes threshold.
func (s *thresholdSet) bytes(name string, def float64, help string) numberThreshold {
	return numberThreshold{s.add(name, Bytes, def, help)}
}

// ratio declares a Ratio threshold.
func (s *thresholdSet) ratio(name string, def float64, help string) ratioThreshold {
	return ratioThreshold{s.add(name, Ratio, def, help)}
}

// dur returns a duration threshold, configured or default. One too long
// for a time.Duration (float64 rounds the longest up to 2^63 ns) is the
// longest there is, not a negative one.
func (c *check) dur(h durationThreshold) time.Duration {
	v := c.e.cfg.value(h.t)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}

// num returns a count, rate or size threshold, configured or default.
func (c *check) num(h numberThreshold) float64 { return c.e.cfg.value(h.t) }

// ratio returns a share threshold, configured or default.
func (c *check) ratio(h ratioThreshold) float64 { return c.e.cfg.value(h.t) }
