// Package diagnose turns the probes' task model into findings: rules that
// name what is wrong with a program's goroutines, point at the file:line
// that causes it, and say what to change.
//
// An Engine is fed one snapshot after another (Observe). Each rule is a
// function of the latest snapshot and of what the engine remembers of the
// recent ones (how long each goroutine has been stuck where it is, how
// counts grew), so that growth and persistence can be seen. A finding keeps
// its first-seen time while its rule keeps reporting it, and clears once
// its evidence has been gone for Config.Linger.
package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// Input is what one observation is made of. Only Snapshot is required; the
// rules that need more say so in their findings' Evidence.Missing when the
// source cannot give it.
type Input struct {
	Snapshot *api.Snapshot
	// Stack returns the latest stack of a task, top first, or nil.
	Stack func(id int64) []api.Frame
	// StretchStack returns where a task computed during its longest
	// stretch on CPU (probes.GoStats.StretchStack), or nil.
	StretchStack func(id int64) []api.Frame
	// Profile returns the named pprof profile ("mutex", "heap") as it is now
	// (cumulative, as the runtime keeps it); nil when the source has none.
	Profile func(name string) (*profile.Profile, error)
}

// Severities, from least to most urgent.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

func severityRank(s string) int {
	switch s {
	case Critical:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// AtLeastWarning reports whether f's severity is warning or critical.
func AtLeastWarning(f api.Finding) bool { return severityRank(f.Severity) >= 1 }

// Engine runs the enabled rules over successive snapshots. It is safe for
// concurrent use; observations are serialised.
type Engine struct {
	mu    sync.Mutex
	cfg   Config
	rules []*rule
	hist  history
	// Findings reported, by rule and key, with their first-seen time.
	active map[string]*api.Finding
	order  []string // keys of active, in the order first seen
	// Consecutive observations each finding was reported in, for rules
	// that want it seen more than once before it counts.
	streak map[string]int
	last   time.Time
}

// New returns an engine for cfg, which must be valid (Config.Validate).
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	e := &Engine{cfg: cfg, active: map[string]*api.Finding{}, streak: map[string]int{}}
	for _, r := range allRules {
		if cfg.enabled(r.id) {
			e.rules = append(e.rules, r)
		}
	}
	e.hist.init(cfg.History)
	return e, nil
}

// Observe runs the rules over in.Snapshot and returns the findings current
// after it, most severe first. It sets the snapshot's Findings and the
// Warnings of the tasks they name. A snapshot not newer than the last one
// observed changes nothing: the current findings are returned.
func (e *Engine) Observe(in Input) []api.Finding {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := in.Snapshot
	if s == nil || !s.Time.After(e.last) {
		return e.current()
	}
	e.last = s.Time
	c := newCheck(e, in)
	e.hist.observe(c)
	reported := map[string]bool{}
	for _, r := range e.rules {
		for _, f := range r.check(c) {
			key := r.id + "|" + f.key
			reported[key] = true
			e.streak[key]++
			if e.active[key] == nil && e.streak[key] < max(1, r.persist) {
				continue
			}
			f.finding.ID, f.finding.Rule = key, r.id
			if f.finding.Severity == "" {
				f.finding.Severity = Warning
			}
			if f.finding.Lesson == "" {
				f.finding.Lesson = r.lesson
			}
			slices.Sort(f.finding.Evidence.Tasks)
			f.finding.Evidence.Tasks = slices.Compact(f.finding.Evidence.Tasks)
			if prev := e.active[key]; prev != nil {
				f.finding.FirstSeen = prev.FirstSeen
			} else {
				f.finding.FirstSeen = s.Time
				e.order = append(e.order, key)
			}
			f.finding.LastSeen = s.Time
			e.active[key] = &f.finding
		}
	}
	for key := range e.streak {
		if !reported[key] {
			delete(e.streak, key)
		}
	}
	// A finding whose evidence is gone clears after Linger, so that one
	// snapshot that happens to miss it does not make it flap.
	e.order = slices.DeleteFunc(e.order, func(key string) bool {
		if reported[key] {
			return false
		}
		if s.Time.Sub(e.active[key].LastSeen) >= e.cfg.Linger {
			delete(e.active, key)
			return true
		}
		return false
	})
	fs := e.current()
	annotate(s, fs)
	return fs
}

// Findings returns the current findings, most severe first.
func (e *Engine) Findings() []api.Finding {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.current()
}

func (e *Engine) current() []api.Finding {
	fs := make([]api.Finding, 0, len(e.order))
	for _, key := range e.order {
		f := *e.active[key]
		f.Evidence.Tasks = slices.Clone(f.Evidence.Tasks)
		fs = append(fs, f)
	}
	slices.SortStableFunc(fs, func(a, b api.Finding) int {
		return cmp.Or(severityRank(b.Severity)-severityRank(a.Severity), a.FirstSeen.Compare(b.FirstSeen))
	})
	return fs
}

// annotate sets s.Findings and each named task's Warnings (the rule ids).
func annotate(s *api.Snapshot, fs []api.Finding) {
	s.Findings = fs
	for i := range s.Tasks {
		if len(s.Tasks[i].Warnings()) > 0 {
			s.Tasks[i].SetDetail(func(d *api.TaskDetail) { d.Warnings = nil })
		}
	}
	for _, f := range fs {
		for _, id := range f.Evidence.Tasks {
			i, ok := slices.BinarySearchFunc(s.Tasks, id, func(t api.Task, id int64) int { return cmp.Compare(t.ID, id) })
			if ok && !slices.Contains(s.Tasks[i].Warnings(), f.Rule) {
				s.Tasks[i].SetDetail(func(d *api.TaskDetail) { d.Warnings = append(slices.Clip(d.Warnings), f.Rule) })
			}
		}
	}
}

// found is one finding a rule reports, with the key that identifies it
// across snapshots (the site, say), so its first-seen time carries over.
type found struct {
	key     string
	finding api.Finding
}

// rule is one diagnosis.
type rule struct {
	id         string
	lesson     string        // the catalog lesson that teaches the fix
	help       string        // one line for docs and --help
	thresholds *thresholdSet // declared with the rule's checks
	check      func(c *check) []found
	// persist is how many snapshots in a row must show the evidence before
	// it is a finding: rules that a loaded machine can mimic for a moment
	// (a burst of yields, a queue for the CPU) want two.
	persist int
}

// siteKey names a wait site: "reason@file:line". Keys are interned: a
// snapshot asks for one per waiting goroutine, and the history keeps one per
// goroutine, so 100,000 goroutines at a few sites would otherwise hold
// 100,000 copies of a few strings.
func siteKey(reason string, f api.Frame) string {
	ref := siteRef{reason, f.File, f.Line}
	siteKeys.Lock()
	defer siteKeys.Unlock()
	if k, ok := siteKeys.m[ref]; ok {
		return k
	}
	if len(siteKeys.m) >= maxSiteKeys {
		clear(siteKeys.m) // a program's sites are few; this bounds a hostile target's
	}
	if siteKeys.m == nil {
		siteKeys.m = map[siteRef]string{}
	}
	// Cloned: the frame's strings may point into a whole dump's buffer.
	ref = siteRef{strings.Clone(reason), strings.Clone(f.File), f.Line}
	k := ref.reason + "@" + ref.file + ":" + strconv.Itoa(f.Line)
	siteKeys.m[ref] = k
	return k
}

type siteRef struct {
	reason, file string
	line         int
}

const maxSiteKeys = 1 << 16

var siteKeys struct {
	sync.Mutex
	m map[siteRef]string
}

// countOf is "1 goroutine", "2 goroutines".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func goroutines(n int) string { return countOf(n, "goroutine") }

// verb is one for 1, many for other counts.
func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
