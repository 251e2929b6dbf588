// Package model turns what a source collected into the task model the rest
// of inspectd works on: one api.Task per goroutine, with its name, labels,
// state, wait reason, numbers, creator and location, plus the wait sites and
// spawn sites of the window.
//
// It takes:
//   - a trace window (package tracewin): every goroutine's numbers, state,
//     wait reason and stack over the window;
//   - the last goroutine dump (package dump), if any: labels, wait minutes,
//     leak marks and creators by goroutine ID;
//   - the goroutine profile (StackProfile): labels by stack, for goroutines
//     the dump did not see (or dumps that print no labels, before Go 1.27);
//   - the goroutineleak profile (StackProfile): which stacks leaked.
//
// and gives api.Snapshot values. Every source (in process, remote
// net/http/pprof or gops, trace and dump files) joins through one Model, so
// that a task is named, labelled and placed the same way whatever read it.
//
//	m := model.New()
//	m.SetDump(gs, time.Now())            // when a dump was taken
//	m.SetProfile(labels, time.Now())     // when the goroutine profile was read
//	snap := m.Snapshot(win, windowEnd)   // the tasks of the window
//
// A task's name is its "task" label, else "workload/role" from its labels,
// else the function its goroutine started in (Name).
package model

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/stack"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// Model is what a source knows of the program's goroutines besides a trace
// window: the last dump, the labels by stack and the leak marks. It is safe
// for concurrent use.
type Model struct {
	mu sync.Mutex
	// What the last dump said of each goroutine alive then.
	facts  map[int64]*facts
	dumpAt time.Time
	// dumpLabels says the dump printed labels (Go 1.27 does; before,
	// only with GODEBUG=tracebacklabels=1): a goroutine it shows without
	// any has none.
	dumpLabels bool
	// Labels inherited at creation since the last dump.
	inherited map[int64]map[string]string
	// The goroutine profile: labels by stack, read at profileAt.
	profile   *StackProfile
	profileAt time.Time
	// The goroutineleak profile: the stacks whose goroutines leaked.
	leaks *StackProfile
}

// New returns an empty model: no dump, no profile, no leak marks.
func New() *Model {
	return &Model{facts: map[int64]*facts{}, inherited: map[int64]map[string]string{}}
}

// SetDump records a full goroutine dump taken at at: labels, wait minutes,
// leak marks and creators by goroutine ID.
func (m *Model) SetDump(gs []dump.Goroutine, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.facts)
	clear(m.inherited)
	m.dumpLabels = false
	for i := range gs {
		g := &gs[i]
		m.facts[g.ID] = newFacts(g)
		m.dumpLabels = m.dumpLabels || g.Labels != nil
	}
	m.dumpAt = at
}

// Dumped says whether a dump was recorded, and when.
func (m *Model) Dumped() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dumpAt, !m.dumpAt.IsZero()
}

// SetProfile records the goroutine profile, read at at: labels by stack.
func (m *Model) SetProfile(p *StackProfile, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.profile, m.profileAt = p, at
}

// HasProfile says whether a goroutine profile was recorded.
func (m *Model) HasProfile() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.profile != nil
}

// SetLeaks records the goroutineleak profile: a goroutine whose stack it
// lists, as many times as the goroutine profile does, is marked leaked.
func (m *Model) SetLeaks(p *StackProfile) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaks = p
}

// facts are what only a dump tells about a goroutine.
type facts struct {
	labels      map[string]string
	waitMinutes int
	locked      bool
	leaked      bool
	leakWait    string // the wait reason of a leaked goroutine
	createdBy   stack.Frame
	parentID    int64
	frames      []stack.Frame
	startFunc   string
}

// newFacts keeps what the dump tells of g that the trace does not.
func newFacts(g *dump.Goroutine) *facts {
	f := &facts{labels: g.Labels, waitMinutes: g.WaitMinutes, locked: g.Locked, leaked: g.Leaked,
		createdBy: g.CreatedBy, parentID: g.ParentID, frames: g.Frames}
	if g.Leaked {
		f.leakWait = g.WaitReason
	}
	if len(g.Frames) > 0 && !g.Elided {
		f.startFunc = g.Frames[len(g.Frames)-1].Func
	}
	return f
}

// settleLeak gives a task the dump found leaked the dump's wait: a leaked
// goroutine never runs again, so that wait is final, while a window that
// ends before the dump (the trace lags) can show it at an earlier one,
// sleeping or running on its way to the leak.
func (f *facts) settleLeak(t *api.Task) {
	if !f.leaked || len(f.frames) == 0 {
		return
	}
	t.State, t.WaitReason = stack.Waiting.String(), f.leakWait
	t.Location = f.location(t.Location)
}

// location is where the dump saw the goroutine (its top frame in user
// code), for one the window has no stack of; else loc.
func (f *facts) location(loc api.Frame) api.Frame {
	if len(f.frames) == 0 {
		return loc
	}
	return stack.Location(f.frames, f.createdBy).API()
}

// stackRef identifies one of a window's stacks: goroutines with the same
// stack share its frames.
type stackRef struct {
	first *stack.Frame
	n     int
}

// stackJoin is what the model takes from a stack: its key in the profiles,
// its labels in the goroutine profile, its top frame in user code, and
// whether every goroutine with it leaked.
type stackJoin struct {
	labels   map[string]string
	labelled bool
	loc      api.Frame
	userLoc  bool // loc is the top frame in user code
	leaked   bool
}

// Snapshot makes the tasks of a window that ended at end (on the wall
// clock): the goroutines alive at its end, named, labelled and placed, with
// the window's wait sites and spawn sites. The caller fills in Time,
// Target, Source and Process, and adds its notes.
func (m *Model) Snapshot(win *tracewin.Window, end time.Time) *api.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := &api.Snapshot{WindowNS: win.Duration(), Tasks: make([]api.Task, 0, win.Count())}
	stale := 0
	// Goroutines that wait at the same place share their stack (the window
	// keeps one []Frame per distinct stack): join each stack once.
	joins := make(map[stackRef]*stackJoin)
	join := func(stk []stack.Frame) *stackJoin {
		k := stackRef{unsafe.SliceData(stk), len(stk)}
		j := joins[k]
		if j == nil {
			j = &stackJoin{}
			if len(stk) > 0 && (m.profile != nil || m.leaks != nil) {
				key := StackKey(stk)
				j.labels, j.labelled = m.profile.Labels(key)
				j.leaked = m.profile != nil && m.leaks.Count(key) > 0 && m.leaks.Count(key) >= m.profile.Count(key)
			}
			for _, f := range stk {
				if !stack.IsStd(f.Func) {
					j.loc, j.userLoc = f.API(), true
					break
				}
			}
			joins[k] = j
		}
		return j
	}
	// Names from labels, by label set: most goroutines share theirs.
	names := make(map[unsafe.Pointer]string)
	// Stats.IdleByReason of the tasks idle all the window, by reason;
	// shared, like labels: read-only.
	idleAll := make(map[string]map[string]int64)
	spawns := newSpawnCounter(win.Duration())
	// All yields in ID order, which is creation order: a parent's labels
	// are known before its children's.
	for g := range win.All() {
		if g.Exited {
			spawns.add(g.CreatedBy.API(), g)
			continue
		}
		id := g.ID
		j := join(g.Stack)
		loc := j.loc
		if !j.userLoc {
			loc = g.Location().API() // may fall back on the creator
		}
		t := api.Task{
			ID:         id,
			State:      g.State.String(),
			WaitReason: g.WaitReason,
			CreatedBy:  g.CreatedBy.API(),
			ParentID:   g.ParentID,
			Location:   loc,
			Leaked:     j.leaked,
		}
		if len(g.IdleByReason) == 1 && g.Idle == win.Duration() {
			// Idle for one reason all the window long, as most goroutines
			// of a large program are: share one map per reason.
			t.Stats = g.TaskStatsNoIdle()
			r := g.IdleByReason[0]
			s := idleAll[r.Reason]
			if s == nil {
				s = map[string]int64{r.Reason: r.NS}
				idleAll[r.Reason] = s
			}
			t.Stats.IdleByReason = s
		} else {
			t.Stats = g.TaskStats()
		}
		startFunc := g.StartFunc
		// A goroutine created after the profile was read may have labels
		// other than those the profile showed for its stack: it takes its
		// creator's below.
		newer := g.ParentID != 0 && end.Add(-time.Duration(g.Total)).After(m.profileAt)
		if f := m.facts[id]; f != nil {
			t.Labels, t.WaitMinutes, t.Locked = f.labels, f.waitMinutes, f.locked
			t.Leaked = t.Leaked || f.leaked
			if !m.dumpLabels && j.labelled {
				// Dumps before Go 1.27 print no labels; the profile has them.
				t.Labels = j.labels
			}
			if t.CreatedBy.Function == "" {
				t.CreatedBy, t.ParentID = f.createdBy.API(), f.parentID
			}
			if startFunc == "" {
				startFunc = f.startFunc
			}
			if len(g.Stack) == 0 {
				t.Location = f.location(t.Location)
			}
			f.settleLeak(&t)
		} else if j.labelled && !newer {
			t.Labels = j.labels
		} else if l, ok := m.inherited[id]; ok {
			t.Labels, t.LabelsStale = l, true
		} else if g.ParentID != 0 {
			// Created since the last dump: it started with its creator's labels.
			t.Labels = m.inherit(id, g.ParentID)
			t.LabelsStale = t.Labels != nil
		}
		if t.LabelsStale {
			stale++
		}
		if lp := mapPointer(t.Labels); lp != nil {
			n, ok := names[lp]
			if !ok {
				if n = labelName(t.Labels); n != "" {
					names[lp] = n
				}
			}
			t.Name = n
		}
		if t.Name == "" {
			t.Name = Name(t.Labels, startFunc, t.CreatedBy.Function)
		}
		spawns.add(t.CreatedBy, g)
		snap.Tasks = append(snap.Tasks, t)
	}
	snap.Spawns = spawns.list()
	if stale > 0 {
		snap.Notes = append(snap.Notes, fmt.Sprintf("%d tasks were created since the last dump: their labels are their creator's and may be stale", stale))
	}
	snap.Sites = make([]api.Site, 0, len(win.Sites))
	for _, s := range win.Sites {
		snap.Sites = append(snap.Sites, s.Site())
	}
	snap.Findings = []api.Finding{}
	return snap
}

// inherit gives goroutine id, created since the last dump, the labels its
// creator had (from the dump, or inherited in turn) and remembers them.
// Called with m.mu held.
func (m *Model) inherit(id, parent int64) map[string]string {
	var l map[string]string
	if pf := m.facts[parent]; pf != nil {
		l = pf.labels
	} else {
		l = m.inherited[parent]
	}
	m.inherited[id] = l
	return l
}

// DumpTask is a goroutine of a dump as a task, when there is no trace
// window: no numbers, and its stack when withStack.
func DumpTask(g *dump.Goroutine, withStack bool) api.Task {
	t := api.Task{
		ID: g.ID, Labels: g.Labels, State: g.State.String(), WaitReason: g.WaitReason,
		WaitMinutes: g.WaitMinutes, Leaked: g.Leaked, Locked: g.Locked,
		CreatedBy: g.CreatedBy.API(), ParentID: g.ParentID, Location: g.Location().API(),
	}
	if withStack {
		t.SetDetail(func(d *api.TaskDetail) { d.Stack = stack.APIFrames(g.Frames) })
	}
	startFunc := ""
	if len(g.Frames) > 0 && !g.Elided {
		startFunc = g.Frames[len(g.Frames)-1].Func
	}
	t.Name = Name(g.Labels, startFunc, g.CreatedBy.Func)
	return t
}

// Name is tokio-console's task name: label "task", else workload/role,
// else the function the goroutine started in, else the one that created it.
func Name(labels map[string]string, startFunc, createdBy string) string {
	if n := labelName(labels); n != "" {
		return n
	}
	if startFunc != "" {
		return startFunc
	}
	return createdBy
}

// labelName is the task name the labels give, if any.
func labelName(labels map[string]string) string {
	if n := labels["task"]; n != "" {
		return n
	}
	if w, r := labels["workload"], labels["role"]; w != "" || r != "" {
		return strings.Trim(w+"/"+r, "/")
	}
	return ""
}

// mapPointer tells maps apart by identity (nil for a nil map): goroutines
// named from the same label set share its map.
func mapPointer(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

// PartialTrace begins the note of a trace cut short or corrupt.
const PartialTrace = "the trace was cut short or corrupt, numbers are partial: "

// PartialOf is the note among notes that says the trace was cut short or
// corrupt, for Snapshot.Partial; "" if none.
func PartialOf(notes []string) string {
	for _, n := range notes {
		if strings.HasPrefix(n, PartialTrace) {
			return n
		}
	}
	return ""
}
