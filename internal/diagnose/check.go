package diagnose

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// check is one observation as the rules see it.
type check struct {
	e      *Engine
	in     Input
	snap   *api.Snapshot
	now    time.Time
	window int64 // ns
	// Tasks a rule has explained, so that later rules leave them alone
	// (a deadlocked goroutine is not also a leak).
	claimed map[int64]string
	// Sites a rule has explained, by siteKey.
	claimedSites map[string]string
	stacks       map[int64][]api.Frame
	// Functions that create goroutines in an explosion: their allocations
	// grow with it, which is not a second finding.
	exploding   []string
	profiles    map[string]*profile.Profile
	profileErrs map[string]error
}

func newCheck(e *Engine, in Input) *check {
	c := &check{
		e: e, in: in, snap: in.Snapshot, now: in.Snapshot.Time, window: max(in.Snapshot.WindowNS, 1),
		claimed: map[int64]string{}, claimedSites: map[string]string{},
		stacks: map[int64][]api.Frame{}, profiles: map[string]*profile.Profile{}, profileErrs: map[string]error{},
	}
	// The inspector's own goroutines (its uploads, its queued requests, its
	// recorder) are claimed before any rule runs, so that no rule, present
	// or future, can report the inspector as the program's bug.
	for i := range c.snap.Tasks {
		if t := &c.snap.Tasks[i]; inspectorTask(t) {
			c.claimed[t.ID] = "inspector"
		}
	}
	return c
}

// task returns the task with the given id, or nil.
func (c *check) task(id int64) *api.Task {
	i, ok := slices.BinarySearchFunc(c.snap.Tasks, id, func(t api.Task, id int64) int { return cmp.Compare(t.ID, id) })
	if !ok {
		return nil
	}
	return &c.snap.Tasks[i]
}

// stack returns a task's latest stack, or nil when the source has none.
func (c *check) stack(id int64) []api.Frame {
	if c.in.Stack == nil {
		return nil
	}
	s, ok := c.stacks[id]
	if !ok {
		s = c.in.Stack(id)
		c.stacks[id] = s
	}
	return s
}

// profile returns the named profile now, reading it at most once per
// observation; nil with the reason when the source cannot give it.
func (c *check) profile(name string) (*profile.Profile, error) {
	if p, ok := c.profiles[name]; ok {
		return p, c.profileErrs[name]
	}
	var p *profile.Profile
	var err error
	if c.in.Profile == nil {
		err = errNoProfiles
	} else {
		p, err = c.in.Profile(name)
	}
	c.profiles[name], c.profileErrs[name] = p, err
	return p, err
}

type constError string

func (e constError) Error() string { return string(e) }

const errNoProfiles = constError("the source serves no pprof profiles")

func (c *check) claim(rule string, ids ...int64) {
	for _, id := range ids {
		if _, ok := c.claimed[id]; !ok {
			c.claimed[id] = rule
		}
	}
}

func (c *check) isClaimed(id int64) bool { _, ok := c.claimed[id]; return ok }

// userTask reports whether t runs user code: runtime goroutines (the
// garbage collector's workers, finalizers) are the runtime's business.
func userTask(t *api.Task) bool {
	if inspectorTask(t) {
		return false
	}
	return !isRuntimeFunc(t.Location.Function) || t.CreatedBy.Function != "" && !isRuntimeFunc(t.CreatedBy.Function)
}

// inspectorTask reports whether t is the inspector's: labelled with its
// role, or running or started by its code.
func inspectorTask(t *api.Task) bool {
	return t.Labels[source.OwnLabel] != "" || isInspectorFunc(t.Location.Function) || isInspectorFunc(t.CreatedBy.Function)
}

func isRuntimeFunc(fn string) bool {
	return fn == "" || strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "runtime/")
}

// labelsKnown reports whether any task of the snapshot carries labels.
func (c *check) labelsKnown() bool {
	for i := range c.snap.Tasks {
		if len(c.snap.Tasks[i].Labels) > 0 {
			return true
		}
	}
	return false
}

// Wait reasons, in the goroutine dump's words.
var (
	chanReasons = []string{"chan send", "chan receive", "select", "select (no cases)",
		"chan send (nil chan)", "chan receive (nil chan)", "sync.WaitGroup.Wait", "sync.Cond.Wait"}
	lockReasons = []string{"sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock"}
)

func isChanWait(r string) bool { return slices.Contains(chanReasons, r) }
func isLockWait(r string) bool { return slices.Contains(lockReasons, r) }

// userFrame returns the first frame of stack outside the runtime, the
// standard library's sync and time packages and the profilers' wrappers:
// where user code made the call.
func userFrame(stack []api.Frame) (api.Frame, bool) {
	for _, f := range stack {
		if !isLibraryFunc(f.Function) {
			return f, true
		}
	}
	return api.Frame{}, false
}

func isLibraryFunc(fn string) bool {
	if isRuntimeFunc(fn) {
		return true
	}
	for _, p := range []string{"sync.", "sync/", "time.", "context.", "runtime/pprof.", "github.com/grafana/pyroscope-go"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// frameIn returns the first frame of stack in function fn.
func frameIn(stack []api.Frame, fn string) (api.Frame, bool) {
	for _, f := range stack {
		if f.Function == fn {
			return f, true
		}
	}
	return api.Frame{}, false
}

// missing lists what the snapshot's source lacked that a rule could use.
func (c *check) missingLeakProfile() bool { return c.snap.Process.Leaked < 0 }

// share is a/b, 0 when b is 0.
func share(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// capIDs keeps at most n ids, for evidence that stays readable.
func capIDs(ids []int64, n int) []int64 {
	slices.Sort(ids)
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

// topUserFrames returns the first n frames of stack in user code.
func topUserFrames(stack []api.Frame, n int) []api.Frame {
	var out []api.Frame
	for _, f := range stack {
		if !isLibraryFunc(f.Function) {
			out = append(out, f)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// inspectorFuncs are the inspector's own code: its goroutines (the
// diagnosis loop, the API server) and its heap (the trace analysis, the
// watch stream's diffs) are not the program's to diagnose.
var inspectorFuncs = []string{"github.com/inspectd/inspectd/internal/daemon.", "github.com/inspectd/inspectd/internal/server.",
	"github.com/inspectd/inspectd/internal/source", "github.com/inspectd/inspectd/internal/model.",
	"github.com/inspectd/inspectd/internal/tracewin.", "github.com/inspectd/inspectd/internal/dump.",
	"github.com/inspectd/inspectd/internal/diagnose.", "github.com/inspectd/inspectd/internal/api.",
	"github.com/inspectd/inspectd/agent.", "golang.org/x/exp/trace", "internal/trace"}

func isInspectorFunc(fn string) bool {
	for _, p := range inspectorFuncs {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// isStdFunc reports whether a function belongs to the standard library: the
// first element of its import path has no dot.
func isStdFunc(fn string) bool {
	if strings.HasPrefix(fn, "main.") {
		return false
	}
	end := strings.IndexAny(fn, "/.")
	if end < 0 {
		return fn != ""
	}
	first := fn[:end]
	if i := strings.IndexByte(fn, '/'); i >= 0 {
		first = fn[:i]
	}
	return !strings.Contains(first, ".")
}

// stuckGroup is goroutines stuck at one wait site.
type stuckGroup struct {
	reason    string
	loc       api.Frame
	ids       []int64
	leaked    int           // of which the goroutineleak profile marked
	longest   time.Duration // the longest any has been stuck there
	createdAt map[string]api.Frame
}

// stuckGroups groups by wait site the waiting goroutines that keep (which
// see only waiting tasks) and that are stuck: marked leaked by the
// goroutineleak profile, or waiting where they wait for stuckFor or more
// at a site nothing woke in the window.
func (c *check) stuckGroups(stuckFor time.Duration, keep func(t *api.Task) bool) map[string]*stuckGroup {
	woken := map[string]bool{}
	for _, s := range c.snap.Sites {
		if s.Wakeups > 0 {
			woken[siteKey(s.Reason, s.Location)] = true
		}
	}
	groups := map[string]*stuckGroup{}
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.State != "waiting" || c.isClaimed(t.ID) || !keep(t) {
			continue
		}
		key := siteKey(t.WaitReason, t.Location)
		d := c.e.hist.stuckFor(t.ID, c.now)
		if !t.Leaked && (d < stuckFor || woken[key]) {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &stuckGroup{reason: t.WaitReason, loc: t.Location, createdAt: map[string]api.Frame{}}
			groups[key] = g
		}
		g.ids = append(g.ids, t.ID)
		if t.Leaked {
			g.leaked++
		}
		g.longest = max(g.longest, d)
		if t.CreatedBy.Function != "" {
			g.createdAt[creatorKey(t.CreatedBy)] = t.CreatedBy
		}
	}
	return groups
}
