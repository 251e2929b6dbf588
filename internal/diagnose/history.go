package diagnose

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// history is what the engine remembers of recent snapshots: small numbers
// per snapshot, and per goroutine only what persistence needs, kept small
// (times in Unix nanoseconds, shared strings): at 100,000 goroutines each
// byte a goroutine is 100 kB, which the garbage collector doubles.
type history struct {
	span   time.Duration
	points []point
	// Where each waiting goroutine waits and since when.
	stuck map[int64]stuckMark
	// Labelled goroutines: their scope, and when those seen before left.
	scopes map[int64]*scopeMark
	gone   map[int64]time.Time
	// Every goroutine seen alive within the span, and when last (Unix
	// nanoseconds).
	seen map[int64]int64
	// Parents never seen alive, with when their children were first seen
	// without them.
	unseenParent map[int64]time.Time
	// Where a lock holder was seen blocking with its lock, by goroutine.
	holderCall map[int64]api.Frame
	// Goroutines seen creating others, by id: when one of their children
	// was last seen alive, and where it was created.
	parents map[int64]parentMark
	// Profiles read within the span, a few seconds apart, oldest first, by
	// profile name: for growth since a given time.
	profiles map[string][]profileRead
	// The user functions that woke goroutines at each site (siteKey), and
	// when last: a loop that computes for a whole window wakes nobody in
	// it, and its waiters are still its own.
	wokeBy map[string]map[string]time.Time
}

type profileRead struct {
	at   time.Time
	sums map[string]growth
}

// profileEvery spaces the profile reads kept for growth.
const profileEvery = 5 * time.Second

type point struct {
	at         time.Time
	goroutines int64
	threads    int64
	heap       uint64
	liveHeap   uint64 // what the last GC found live (0: the source does not say)
	gomaxprocs int
	// Goroutines waiting per site (siteKey), and alive per creation site.
	sites    map[string]int
	creators map[string]int
	// The window's spawn sites (Snapshot.Spawns), by creatorKey.
	spawns  map[string]api.SpawnSite
	latency *api.Histogram
}

type parentMark struct {
	at    time.Time
	child api.Frame
}

type stuckMark struct {
	key   string // siteKey's, shared
	since int64  // Unix nanoseconds
}

// scopeMark is a labelled goroutine's scope and name, one per pair:
// goroutines with the same labels and name share it.
type scopeMark struct {
	scope string
	name  string
}

func (h *history) init(span time.Duration) {
	h.span = span
	h.stuck = map[int64]stuckMark{}
	h.scopes = map[int64]*scopeMark{}
	h.gone = map[int64]time.Time{}
	h.seen = map[int64]int64{}
	h.unseenParent = map[int64]time.Time{}
	h.profiles = map[string][]profileRead{}
	h.holderCall = map[int64]api.Frame{}
	h.parents = map[int64]parentMark{}
	h.wokeBy = map[string]map[string]time.Time{}
}

func (h *history) observe(c *check) {
	s := c.snap
	p := point{at: s.Time, goroutines: s.Process.Goroutines, threads: s.Process.Threads, heap: s.Process.HeapBytes, liveHeap: s.Process.HeapLiveBytes,
		gomaxprocs: s.Process.GOMAXPROCS, latency: s.Process.SchedLatency,
		sites: map[string]int{}, creators: map[string]int{}}
	if p.goroutines == 0 {
		p.goroutines = int64(len(s.Tasks))
	}
	for _, st := range s.Sites {
		key := siteKey(st.Reason, st.Location)
		p.sites[key] += st.Waiting
		for _, w := range st.Wakers {
			if w.Location.Function == "" || isLibraryFunc(w.Location.Function) {
				continue
			}
			if h.wokeBy[key] == nil {
				h.wokeBy[key] = map[string]time.Time{}
			}
			h.wokeBy[key][w.Location.Function] = s.Time
		}
	}
	for key, fns := range h.wokeBy {
		maps.DeleteFunc(fns, func(_ string, at time.Time) bool { return s.Time.Sub(at) > h.span })
		if len(fns) == 0 {
			delete(h.wokeBy, key)
		}
	}
	if len(s.Spawns) > 0 {
		p.spawns = make(map[string]api.SpawnSite, len(s.Spawns))
		for _, sp := range s.Spawns {
			p.spawns[creatorKey(sp.Site)] = sp
		}
	}
	stuck := make(map[int64]stuckMark, len(h.stuck))
	scopes := make(map[int64]*scopeMark, len(h.scopes))
	// Tasks with the same labels share their map: one scope each.
	scopeByLabels := map[uintptr]string{}
	marks := map[scopeMark]*scopeMark{}
	now := s.Time.UnixNano()
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if t.CreatedBy.Function != "" {
			p.creators[creatorKey(t.CreatedBy)]++
		}
		if t.State == "waiting" {
			key := siteKey(t.WaitReason, t.Location)
			since := now - t.Stats.InStateNS
			if t.WaitMinutes > 0 {
				since = min(since, now-int64(t.WaitMinutes)*int64(time.Minute))
			}
			// Waiting for the whole window at the same place as before:
			// it has not moved since it was first seen there.
			if prev, ok := h.stuck[t.ID]; ok && prev.key == key && t.Stats.InStateNS >= c.window*95/100 {
				since = min(since, prev.since)
			}
			stuck[t.ID] = stuckMark{key: key, since: since}
		}
		if _, before := h.seen[t.ID]; !before && t.ParentID != 0 && t.Stats.TotalNS < c.window*95/100 {
			// Created within this window by a goroutine already gone that no
			// snapshot saw: a short-lived job or request.
			if _, alive := h.seen[t.ParentID]; !alive && c.task(t.ParentID) == nil {
				if _, ok := h.unseenParent[t.ParentID]; !ok {
					h.unseenParent[t.ParentID] = s.Time
				}
			}
		}
		h.seen[t.ID] = now
		if t.ParentID != 0 {
			h.parents[t.ParentID] = parentMark{at: s.Time, child: t.CreatedBy}
		}
		if len(t.Labels) == 0 {
			continue
		}
		lp := reflect.ValueOf(t.Labels).Pointer()
		sc, ok := scopeByLabels[lp]
		if !ok {
			sc = scopeOf(t.Labels)
			scopeByLabels[lp] = sc
		}
		if sc != "" {
			m := scopeMark{scope: sc, name: t.Name}
			mp := marks[m]
			if mp == nil {
				mp = &m
				marks[m] = mp
			}
			scopes[t.ID] = mp
		}
	}
	for id := range h.scopes {
		if _, alive := scopes[id]; !alive && c.task(id) == nil {
			if _, ok := h.gone[id]; !ok {
				h.gone[id] = s.Time
			}
			scopes[id] = h.scopes[id] // remember its scope while it counts as a parent
		}
	}
	maps.DeleteFunc(h.seen, func(_ int64, at int64) bool { return time.Duration(now-at) > h.span })
	maps.DeleteFunc(h.unseenParent, func(_ int64, at time.Time) bool { return s.Time.Sub(at) > h.span })
	maps.DeleteFunc(h.parents, func(_ int64, m parentMark) bool { return s.Time.Sub(m.at) > h.span })
	maps.DeleteFunc(h.gone, func(id int64, at time.Time) bool {
		if s.Time.Sub(at) > h.span {
			delete(scopes, id)
			return true
		}
		return false
	})
	h.stuck, h.scopes = stuck, scopes
	maps.DeleteFunc(h.holderCall, func(id int64, _ api.Frame) bool { return c.task(id) == nil })
	h.points = append(h.points, p)
	h.points = slices.DeleteFunc(h.points, func(q point) bool { return s.Time.Sub(q.at) > h.span })
}

// stuckFor is how long task id has waited where it waits now.
func (h *history) stuckFor(id int64, now time.Time) time.Duration {
	m, ok := h.stuck[id]
	if !ok {
		return 0
	}
	return time.Duration(now.UnixNano() - m.since)
}

// ago returns the oldest point at least d old within the history, or the
// oldest point, and false when there is no point older than the latest.
func (h *history) ago(d time.Duration) (point, bool) {
	if len(h.points) < 2 {
		return point{}, false
	}
	now := h.points[len(h.points)-1].at
	best := h.points[0]
	for _, q := range h.points[:len(h.points)-1] {
		if now.Sub(q.at) >= d {
			best = q
		}
	}
	return best, true
}

// latest is the point of the observation being made.
func (h *history) latest() point { return h.points[len(h.points)-1] }

// since returns the points of the last d, oldest first.
func (h *history) since(d time.Duration) []point {
	now := h.latest().at
	i := len(h.points) - 1
	for i > 0 && now.Sub(h.points[i-1].at) <= d {
		i--
	}
	return h.points[i:]
}

func creatorKey(f api.Frame) string { return siteKey("", f) }

// scopeOf is the scope a goroutine's labels put it in: all its labels but
// its role, which differs between a scope's goroutines.
func scopeOf(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		if k == "role" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

// profileGrowth returns, per stack, how much sums (a profile read now, by
// sumByStack) grew since the last read of the same profile kept at or
// before since (or the oldest kept; all of it when none is), and keeps
// this read. A heap profile changes only at a GC: growth since the read
// just before counts from the last GC alone, often nothing.
func (h *history) profileGrowth(name string, sums map[string]growth, now, since time.Time) map[string]growth {
	var base map[string]growth
	for _, r := range h.keptProfiles(name, now) {
		if base == nil || !r.at.After(since) {
			base = r.sums
		}
	}
	h.keepProfile(name, sums, now)
	out := make(map[string]growth, len(sums))
	for k, g := range sums {
		g.value -= base[k].value
		out[k] = g
	}
	return out
}

// keptProfiles drops the kept reads older than the span and returns the rest.
func (h *history) keptProfiles(name string, now time.Time) []profileRead {
	reads := h.profiles[name]
	for len(reads) > 0 && now.Sub(reads[0].at) > h.span {
		reads = reads[1:]
	}
	h.profiles[name] = reads
	return reads
}

// keepProfile keeps a read of the named profile when one is due.
func (h *history) keepProfile(name string, sums map[string]growth, now time.Time) {
	if h.profileDue(name, now) {
		h.profiles[name] = append(h.keptProfiles(name, now), profileRead{at: now, sums: sums})
	}
}

// profileDue reports whether a read of the named profile at now would be
// kept for growth (profileEvery after the last kept).
func (h *history) profileDue(name string, now time.Time) bool {
	reads := h.profiles[name]
	return len(reads) == 0 || now.Sub(reads[len(reads)-1].at) >= profileEvery
}

type growth struct {
	value int64
	stack []api.Frame
}

func sumByStack(p *profile.Profile, vi int) map[string]growth {
	out := map[string]growth{}
	for _, s := range p.Sample {
		if vi >= len(s.Value) {
			continue
		}
		var b strings.Builder
		var frames []api.Frame
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function == nil {
					continue
				}
				frames = append(frames, api.Frame{Function: ln.Function.Name, File: ln.Function.Filename, Line: int(ln.Line)})
				b.WriteString(ln.Function.Name)
				b.WriteByte(':')
				b.WriteString(strconv.FormatInt(ln.Line, 10))
				b.WriteByte(';')
			}
		}
		k := b.String()
		g := out[k]
		g.value += s.Value[vi]
		g.stack = frames
		out[k] = g
	}
	return out
}

// sampleIndex returns the index of the profile's sample type named typ.
func sampleIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
