package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
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
	// (a deadlocked goroutine is not also a leak): the rule, by the task's
	// index in snap.Tasks, and by id for ids that are no task's. By index
	// rather than in a map: rules claim thousands of tasks at once, and
	// at 100,000 goroutines a map of them is megabytes more for the
	// garbage collector to double.
	claimed   []string
	claimedID map[int64]string
	// ids are the tasks' ids, for index: searched in a slice of their
	// own, they take a few cache lines where the tasks take hundreds.
	ids []int64
	// Sites a rule has explained, by siteKey.
	claimedSites map[string]string
	// stacks are the tasks' stacks looked up so far, by index like
	// claimed (noStack: looked up, none).
	stacks [][]api.Frame
	// Functions that create goroutines in an explosion: their allocations
	// grow with it, which is not a second finding.
	exploding   []string
	profiles    map[string]*profile.Profile
	profileErrs map[string]error
}

func newCheck(e *Engine, in Input) *check {
	c := &check{
		e: e, in: in, snap: in.Snapshot, now: in.Snapshot.Time, window: max(in.Snapshot.WindowNS, 1),
		claimed: make([]string, len(in.Snapshot.Tasks)), claimedID: map[int64]string{}, claimedSites: map[string]string{},
		profiles: map[string]*profile.Profile{}, profileErrs: map[string]error{},
	}
	// The inspector's own goroutines (its uploads, its queued requests, its
	// recorder) are claimed before any rule runs, so that no rule, present
	// or future, can report the inspector as the program's bug.
	for i := range c.snap.Tasks {
		if t := &c.snap.Tasks[i]; inspectorTask(t) {
			c.claimed[i] = "inspector"
		}
	}
	return c
}

// index is the index of the task with the given id in snap.Tasks.
func (c *check) index(id int64) (int, bool) {
	if c.ids == nil {
		c.ids = make([]int64, len(c.snap.Tasks))
		for i := range c.snap.Tasks {
			c.ids[i] = c.snap.Tasks[i].ID
		}
	}
	return slices.BinarySearch(c.ids, id)
}

// task returns the task with the given id, or nil.
func (c *check) task(id int64) *api.Task {
	i, ok := c.index(id)
	if !ok {
		return nil
	}
	return &c.snap.Tasks[i]
}

// noStack marks a task whose stack was looked up and is unknown.
var noStack = []api.Frame{}

// stack returns a task's latest stack, or nil when the source has none.
func (c *check) stack(id int64) []api.Frame {
	if c.in.Stack == nil {
		return nil
	}
	i, ok := c.index(id)
	if !ok {
		return c.in.Stack(id)
	}
	if c.stacks == nil {
		c.stacks = make([][]api.Frame, len(c.snap.Tasks))
	}
	s := c.stacks[i]
	if s == nil {
		if s = c.in.Stack(id); s == nil {
			s = noStack
		}
		c.stacks[i] = s
	}
	if len(s) == 0 {
		return nil
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
		if c.claimedBy(id) == "" {
			if i, ok := c.index(id); ok {
				c.claimed[i] = rule
			} else {
				c.claimedID[id] = rule
			}
		}
	}
}

// claimedBy is the rule that claimed a task, or "".
func (c *check) claimedBy(id int64) string {
	if i, ok := c.index(id); ok {
		return c.claimed[i]
	}
	return c.claimedID[id]
}

func (c *check) isClaimed(id int64) bool { return c.claimedBy(id) != "" }

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
	return t.Labels[source.OwnLabel] != "" || isInspectorFunc(t.Location.Function) || isInspectorFunc(t.CreatedBy.Function) ||
		strings.HasPrefix(t.Location.Function, supervisorFuncs)
}

// supervisorFuncs are the lab's supervisor: the daemon's goroutine that
// waits on each workload while it runs. Only where a goroutine waits
// marks it: the workloads the supervisor starts are the program under
// inspection.
const supervisorFuncs = "github.com/inspectd/inspectd/internal/workload.(*Supervisor)."

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
	"github.com/inspectd/inspectd/agent.", "golang.org/x/exp/trace", "internal/trace",
	// What serves the inspector in a target it attaches to: the profiles,
	// dumps and traces it asks for cost the target goroutines and heap
	// (a heap profile written, a trace buffered), which are the
	// inspector's doing, not the program's.
	"net/http/pprof.", "github.com/felixge/fgprof", "github.com/google/gops/agent"}

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

// provenGroup is the goroutines one bug stranded, as the runtime's leak
// detection proved: a bug often strands goroutines at several sites (a
// lock wait in one, a channel send in another), and a finding that names
// only one of them sends the reader to half the bug.
type provenGroup struct {
	key   string // stable across snapshots while the bug lasts
	ids   []int64
	sites []waitSite // most goroutines first
	// Where its goroutines were created, at most a few.
	creators []api.Frame
	longest  time.Duration
}

// waitSite is where some of a group's goroutines wait.
type waitSite struct {
	reason string
	loc    api.Frame
	n      int
}

// lockOnly reports whether every goroutine of g waits for a lock.
func (g *provenGroup) lockOnly() bool {
	for _, s := range g.sites {
		if !isLockWait(s.reason) {
			return false
		}
	}
	return true
}

// provenGroups groups the goroutines the leak detection proved leaked and
// no rule has claimed, one group per bug. Goroutines belong to one bug when
// they wait at the same site, share a labelled scope, were created by the
// same user function, or one created the other: one run of a buggy
// function strands all of its goroutines together, and each run repeats
// the same sites. The server or test harness that started them (standard
// library code) says nothing of which bug they belong to.
func (c *check) provenGroups() []*provenGroup {
	var leaked []*api.Task
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if t.Leaked && !c.isClaimed(t.ID) && userTask(t) {
			leaked = append(leaked, t)
		}
	}
	return c.bugGroups(leaked)
}

// bugGroups groups stuck goroutines by bug, as provenGroups does.
func (c *check) bugGroups(leaked []*api.Task) []*provenGroup {
	parent := map[string]string{}
	var find func(k string) string
	find = func(k string) string {
		p, ok := parent[k]
		if !ok || p == k {
			parent[k] = k
			return k
		}
		r := find(p)
		parent[k] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		// The smaller key roots the set: the group's key stays the same
		// while goroutines come and go.
		if rb < ra {
			ra, rb = rb, ra
		}
		parent[rb] = ra
	}
	if len(leaked) == 0 {
		return nil
	}
	isLeaked := map[int64]bool{}
	for _, t := range leaked {
		isLeaked[t.ID] = true
	}
	for _, t := range leaked {
		id := "g:" + fmt.Sprint(t.ID)
		union(id, "site:"+siteKey(t.WaitReason, t.Location))
		if sc := scopeOf(t.Labels); sc != "" {
			union(id, "scope:"+sc)
		} else if fn := t.CreatedBy.Function; fn != "" && !isStdFunc(fn) {
			union(id, "creator:"+fn)
		}
		if isLeaked[t.ParentID] {
			union(id, "g:"+fmt.Sprint(t.ParentID))
		}
	}
	byRoot := map[string]*provenGroup{}
	var out []*provenGroup
	for _, t := range leaked {
		root := find("g:" + fmt.Sprint(t.ID))
		g := byRoot[root]
		if g == nil {
			g = &provenGroup{}
			byRoot[root] = g
			out = append(out, g)
		}
		g.ids = append(g.ids, t.ID)
		g.longest = max(g.longest, c.e.hist.stuckFor(t.ID, c.now))
		if i := slices.IndexFunc(g.sites, func(s waitSite) bool { return s.reason == t.WaitReason && s.loc == t.Location }); i >= 0 {
			g.sites[i].n++
		} else {
			g.sites = append(g.sites, waitSite{reason: t.WaitReason, loc: t.Location, n: 1})
		}
		if cb := t.CreatedBy; cb.Function != "" && len(g.creators) < 4 && !slices.Contains(g.creators, cb) {
			g.creators = append(g.creators, cb)
		}
	}
	for _, g := range out {
		slices.SortStableFunc(g.sites, func(a, b waitSite) int {
			return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(siteKey(a.reason, a.loc), siteKey(b.reason, b.loc)))
		})
		// One site: the site is the bug's name, as it was before several
		// sites were grouped, so a finding keeps its first-seen time.
		g.key = siteKey(g.sites[0].reason, g.sites[0].loc)
		if len(g.sites) > 1 {
			keys := make([]string, len(g.sites))
			for i, s := range g.sites {
				keys[i] = siteKey(s.reason, s.loc)
			}
			slices.Sort(keys)
			g.key = "bug:" + keys[0]
		}
	}
	slices.SortFunc(out, func(a, b *provenGroup) int { return cmp.Compare(a.key, b.key) })
	return out
}

// siteList is "chan send at a.go:10, sync.Mutex.Lock at b.go:20", at most
// n sites, with how many more.
func siteList(sites []waitSite, n int) string {
	var parts []string
	for i, s := range sites {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d more", len(sites)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s in %s at %s", goroutines(s.n), s.reason, format.Frame(s.loc)))
	}
	return strings.Join(parts, "; ")
}
