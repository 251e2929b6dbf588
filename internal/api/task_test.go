package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"unsafe"
)

// flatTask is Task as it was with every field its own: the wire format
// Task keeps with its detail behind a pointer.
type flatTask struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	LabelsStale bool              `json:"labels_stale,omitempty"`
	State       string            `json:"state"`
	WaitReason  string            `json:"wait_reason,omitempty"`
	WaitMinutes int               `json:"wait_minutes,omitempty"`
	Leaked      bool              `json:"leaked,omitempty"`
	Locked      bool              `json:"locked_to_thread,omitempty"`
	CreatedBy   Frame             `json:"created_by"`
	ParentID    int64             `json:"parent_id,omitempty"`
	Location    Frame             `json:"location"`
	Stats       TaskStats         `json:"stats"`
	Warnings    []string          `json:"warnings,omitempty"`
	RunTimes    *Histogram        `json:"run_times,omitempty"`
	SchedDelay  *Histogram        `json:"sched_delays,omitempty"`
	Stack       []Frame           `json:"stack,omitempty"`
}

func (f flatTask) task() Task {
	t := Task{ID: f.ID, Name: f.Name, Labels: f.Labels, LabelsStale: f.LabelsStale, State: f.State, WaitReason: f.WaitReason,
		WaitMinutes: f.WaitMinutes, Leaked: f.Leaked, Locked: f.Locked, CreatedBy: f.CreatedBy, ParentID: f.ParentID,
		Location: f.Location, Stats: f.Stats}
	if f.Warnings != nil || f.RunTimes != nil || f.SchedDelay != nil || f.Stack != nil {
		t.TaskDetail = &TaskDetail{Warnings: f.Warnings, RunTimes: f.RunTimes, SchedDelay: f.SchedDelay, Stack: f.Stack}
	}
	return t
}

// A task encodes as it did with its detail fields its own, byte for byte,
// and decodes back to the same.
func TestTaskJSONUnchangedByDetail(t *testing.T) {
	base := flatTask{ID: 7, Name: "w/r", Labels: map[string]string{"role": "r"}, State: "waiting", WaitReason: "chan receive",
		WaitMinutes: 3, Leaked: true, CreatedBy: Frame{Function: "main.main", File: "/m.go", Line: 3}, ParentID: 1,
		Location: Frame{Function: "main.wait", File: "/m.go", Line: 9}, Stats: TaskStats{TotalNS: 5, IdleNS: 5, IdleByReason: map[string]int64{"chan receive": 5}}}
	hist := &Histogram{Count: 2, P50NS: 1, Buckets: []int64{1, 1}}
	detailed := base
	detailed.Warnings, detailed.RunTimes, detailed.SchedDelay = []string{"goroutine-leak"}, hist, &Histogram{}
	detailed.Stack = []Frame{{Function: "runtime.gopark"}, {Function: "main.wait", File: "/m.go", Line: 9}}
	warned := base
	warned.Warnings = []string{"a", "b"}
	for name, f := range map[string]flatTask{"plain": base, "detailed": detailed, "warned": warned, "empty": {}} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		task := f.task()
		got, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encodes as\n%s\nwant\n%s", name, got, want)
		}
		var back Task
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(again, want) || (back.TaskDetail == nil) != (task.TaskDetail == nil) {
			t.Errorf("%s: decodes to %+v (detail %+v), which encodes as\n%s", name, back, back.TaskDetail, again)
		}
	}
}

// Copies of a task share its detail: SetDetail changes the copy's only.
func TestTaskSetDetailOnACopy(t *testing.T) {
	a := Task{ID: 1}
	a.SetDetail(func(d *TaskDetail) { d.Warnings = []string{"x"} })
	b := a
	b.SetDetail(func(d *TaskDetail) { d.Warnings = append(d.Warnings[:len(d.Warnings):len(d.Warnings)], "y") })
	if len(a.Warnings()) != 1 || len(b.Warnings()) != 2 {
		t.Errorf("warnings %v and %v, want [x] and [x y]", a.Warnings(), b.Warnings())
	}
	b.SetDetail(func(d *TaskDetail) { d.Warnings = nil })
	if b.TaskDetail != nil || a.Warnings()[0] != "x" {
		t.Errorf("an emptied detail is kept (%+v), or the original changed (%v)", b.TaskDetail, a.Warnings())
	}
	var none Task
	if none.Warnings() != nil || none.RunTimes() != nil || none.SchedDelay() != nil || none.Stack() != nil {
		t.Error("a task without detail has some")
	}
}

// What a snapshot holds per goroutine: the detail is one word.
func TestTaskSize(t *testing.T) {
	if got, flat := unsafe.Sizeof(Task{}), unsafe.Sizeof(flatTask{}); got != flat-64+8 {
		t.Errorf("Task is %d bytes, want %d (%d with its detail inline)", got, flat-64+8, flat)
	}
}
