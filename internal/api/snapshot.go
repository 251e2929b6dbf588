package api

import "time"

// Frame is one call of a stack.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// TaskStats are a task's numbers over the snapshot's trace window.
type TaskStats struct {
	TotalNS      int64 `json:"total_ns"`   // time the goroutine existed within the window
	BusyNS       int64 `json:"busy_ns"`    // running
	SchedNS      int64 `json:"sched_ns"`   // runnable: ready but not running
	IdleNS       int64 `json:"idle_ns"`    // waiting, for any reason
	SyscallNS    int64 `json:"syscall_ns"` // in a system call
	Polls        int64 `json:"polls"`      // times it was scheduled onto a thread
	LongestRunNS int64 `json:"longest_run_ns"`
	// LongestStretchNS is the longest time on CPU between two waits or
	// yields: runs split only by preemption add up.
	LongestStretchNS int64 `json:"longest_stretch_ns"`
	// InStateNS is how long the task has been in its current state, as far
	// as the window shows (at most its length).
	InStateNS int64 `json:"in_state_ns"`
	// IdleByReason splits IdleNS by wait reason ("chan receive", "sync.Mutex.Lock", ...).
	IdleByReason map[string]int64 `json:"idle_by_reason,omitempty"`
}

// Histogram is a distribution of durations with its percentiles.
type Histogram struct {
	Count int64 `json:"count"`
	P50NS int64 `json:"p50_ns"`
	P90NS int64 `json:"p90_ns"`
	P99NS int64 `json:"p99_ns"`
	MaxNS int64 `json:"max_ns"`
	// Buckets are counts per power-of-two bucket: Buckets[i] counts durations
	// in [2^i, 2^(i+1)) nanoseconds.
	Buckets []int64 `json:"buckets,omitempty"`
}

// Task is one goroutine, as tokio-console shows a task.
type Task struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"` // label "task", else workload/role, else the start function
	Labels      map[string]string `json:"labels,omitempty"`
	LabelsStale bool              `json:"labels_stale,omitempty"` // labels inferred, may predate a pprof.Do
	State       string            `json:"state"`                  // running, runnable, waiting, syscall
	WaitReason  string            `json:"wait_reason,omitempty"`
	WaitMinutes int               `json:"wait_minutes,omitempty"`
	Leaked      bool              `json:"leaked,omitempty"` // reported by the goroutineleak profile
	Locked      bool              `json:"locked_to_thread,omitempty"`
	CreatedBy   Frame             `json:"created_by"`
	ParentID    int64             `json:"parent_id,omitempty"`
	Location    Frame             `json:"location"` // top frame in user code
	Stats       TaskStats         `json:"stats"`
	// What few tasks have, behind a pointer (nil: none of it): a snapshot
	// holds a Task per goroutine, and at 100,000 goroutines every word
	// of it is 800 kB. Read it with the methods of the same names, which
	// take a nil TaskDetail as empty; set it with SetDetail.
	*TaskDetail
}

// TaskDetail is what few tasks carry: the findings that name them, and
// what only GET /api/v1/tasks/{id} gives. Its fields are Task's in JSON,
// in this order, after stats.
type TaskDetail struct {
	Warnings []string `json:"warnings,omitempty"` // ids of findings that name this task

	// Only in GET /api/v1/tasks/{id}:
	RunTimes   *Histogram `json:"run_times,omitempty"`
	SchedDelay *Histogram `json:"sched_delays,omitempty"`
	Stack      []Frame    `json:"stack,omitempty"`
}

// Warnings are the ids of the findings that name the task.
func (t *Task) Warnings() []string {
	if t.TaskDetail == nil {
		return nil
	}
	return t.TaskDetail.Warnings
}

// RunTimes is the distribution of the task's runs (GET /api/v1/tasks/{id}).
func (t *Task) RunTimes() *Histogram {
	if t.TaskDetail == nil {
		return nil
	}
	return t.TaskDetail.RunTimes
}

// SchedDelay is the distribution of the task's waits for a thread once
// runnable (GET /api/v1/tasks/{id}).
func (t *Task) SchedDelay() *Histogram {
	if t.TaskDetail == nil {
		return nil
	}
	return t.TaskDetail.SchedDelay
}

// Stack is the task's full stack (GET /api/v1/tasks/{id}).
func (t *Task) Stack() []Frame {
	if t.TaskDetail == nil {
		return nil
	}
	return t.TaskDetail.Stack
}

// SetDetail changes the task's detail with set, on a copy: copies of a
// task share their TaskDetail, which stays as it was for the others. An
// empty detail is dropped.
func (t *Task) SetDetail(set func(d *TaskDetail)) {
	var d TaskDetail
	if t.TaskDetail != nil {
		d = *t.TaskDetail
	}
	set(&d)
	if d.Warnings == nil && d.RunTimes == nil && d.SchedDelay == nil && d.Stack == nil {
		t.TaskDetail = nil
		return
	}
	t.TaskDetail = &d
}

// Site is a place where goroutines wait: a wait reason at a blocking call
// site (tokio-console's resources).
type Site struct {
	Reason   string  `json:"reason"`
	Location Frame   `json:"location"`
	Waiting  int     `json:"waiting"` // goroutines waiting there now
	WaitNS   int64   `json:"wait_ns"` // total wait in the window
	Wakeups  int64   `json:"wakeups"`
	Tasks    []int64 `json:"tasks,omitempty"` // ids of the goroutines waiting now (at most 100)
	// Waker is the stack that most often woke goroutines from this site.
	Waker []Frame `json:"waker,omitempty"`
	// Wakers are the places in user code that woke goroutines from here,
	// most often first (the unlocks of a lock, the sends of a channel).
	Wakers []WakerSite `json:"wakers,omitempty"`
}

// WakerSite is a place in user code that woke goroutines from a site, and
// how often.
type WakerSite struct {
	Location Frame `json:"location"`
	Count    int64 `json:"count"`
}

// Process holds the runtime/metrics of interest.
type Process struct {
	GoVersion    string           `json:"go_version"`
	GOMAXPROCS   int              `json:"gomaxprocs"`
	Goroutines   int64            `json:"goroutines"`
	ByState      map[string]int64 `json:"goroutines_by_state,omitempty"` // runnable, running, waiting, syscall, not-in-go
	Threads      int64            `json:"threads"`
	SchedLatency *Histogram       `json:"sched_latency,omitempty"`
	MutexWaitNS  int64            `json:"mutex_wait_ns"`
	GCPause      *Histogram       `json:"gc_pauses,omitempty"`
	HeapBytes    uint64           `json:"heap_bytes"`
	// HeapLiveBytes is the heap the last GC found live: it grows only with
	// what the program keeps, without the sawtooth of garbage.
	HeapLiveBytes uint64 `json:"heap_live_bytes,omitempty"`
	Leaked        int    `json:"leaked_goroutines"` // -1 when unknown (no leak profile)
}

// Finding is a diagnosis: what is wrong, with evidence and advice.
type Finding struct {
	// ID tells the finding from the others of its rule (a rule can report
	// several at once, one per site say); it stays the same while the
	// finding lasts.
	ID        string    `json:"id,omitempty"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"` // info, warning, critical
	Title     string    `json:"title"`
	Message   string    `json:"message"`
	Evidence  Evidence  `json:"evidence"`
	Advice    string    `json:"advice"`
	Lesson    string    `json:"lesson,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// TaskCount is how many goroutines the finding is about: its evidence's
// Tasks, which the rules cap at 100, or its "goroutines" figure when that
// is more.
func (f *Finding) TaskCount() int {
	return max(len(f.Evidence.Tasks), int(f.Evidence.Figures["goroutines"]))
}

// Evidence is what a finding rests on.
type Evidence struct {
	Tasks   []int64            `json:"tasks,omitempty"`
	Sites   []Frame            `json:"sites,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
	Missing []string           `json:"missing,omitempty"` // sources the target could not provide
}

// Snapshot is the body of GET /api/v1/snapshot.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Target   string    `json:"target,omitempty"`
	WindowNS int64     `json:"window_ns"` // length of the trace window the stats cover
	Source   string    `json:"source"`    // what it was built from, e.g. "trace-slices+profile" ("trace-slices": the in-process recorder; "flight-recorder"; "trace": a trace taken for the window)
	Tasks    []Task    `json:"tasks"`
	Sites    []Site    `json:"sites"`
	Process  Process   `json:"process"`
	Findings []Finding `json:"findings"`
	// Notes say what is approximate or missing in this snapshot.
	Notes []string `json:"notes,omitempty"`
	// Partial, when set, says that the input was cut short or corrupt
	// (a trace, a dump file): the snapshot is of what could be read.
	Partial string `json:"partial,omitempty"`
	// ObservedNS, when set, is how much of the window was traced: the
	// in-process source traces a part of each interval to keep its
	// overhead within budget, and scales the tasks' times and polls up
	// from it (so their rates and shares are estimates).
	ObservedNS int64 `json:"observed_ns,omitempty"`
	// RecordingSince, when set, is when tracing began: the program was
	// not traced while nobody asked, so the window covers only the time
	// since (a window shorter than asked).
	RecordingSince time.Time `json:"recording_since,omitzero"`
	// Spawns are the creation sites that had many goroutines alive at once
	// within the window (Tasks are those alive at its end: a burst that
	// came and went shows only here).
	Spawns []SpawnSite `json:"spawns,omitempty"`
	View
}

// View is what a Query selected of a snapshot, beside its tasks: how many
// there are in all, how many matched, and where the page starts.
type View struct {
	// Query is the query the tasks answer; nil: every task, in id order.
	Query *Query `json:"query,omitempty"`
	// TaskCount is the number of tasks of the whole snapshot, ByState
	// those by state; Matched those that passed the query's filter and
	// state (all tasks without a query).
	TaskCount int            `json:"task_count,omitempty"`
	ByState   map[string]int `json:"by_state,omitempty"`
	Matched   int            `json:"matched,omitempty"`
	// Offset is the place of the first task among those matched.
	Offset int `json:"offset,omitempty"`
	// Groups are, with Query.Group, the groups of the matched tasks
	// (Tasks is then empty).
	Groups []TaskGroup `json:"groups,omitempty"`
}

// SpawnSite is one creation site's goroutines over a snapshot's window.
type SpawnSite struct {
	Site    Frame `json:"site"`
	Created int   `json:"created"` // created within the window, exited ones included
	Start   int   `json:"start"`   // alive at the window's start
	Peak    int   `json:"peak"`    // the most alive at once
	Alive   int   `json:"alive"`   // alive at the window's end
}

// SiteList is the body of GET /api/v1/sites.
type SiteList struct {
	Time     time.Time `json:"time"`
	WindowNS int64     `json:"window_ns"`
	Sites    []Site    `json:"sites"`
}

// FindingList is the body of GET /api/v1/findings.
type FindingList struct {
	Time     time.Time `json:"time"`
	Findings []Finding `json:"findings"`
	// Partial: the inputs the rules saw were cut short or corrupt, and how
	// (Snapshot.Partial of each); the findings are of what could be read.
	Partial []string `json:"partial,omitempty"`
}
