package model

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/inspectd/inspectd/internal/stack"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// stateSamples returns the samples of p under root frame state whose label
// key is value.
func stateSamples(p *profile.Profile, state, key, value string) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range p.Sample {
		if len(s.Location) == 0 || !slices.Contains(s.Label[key], value) {
			continue
		}
		if rootName(s) == state {
			out = append(out, s)
		}
	}
	return out
}

func rootName(s *profile.Sample) string {
	root := s.Location[len(s.Location)-1]
	if len(root.Line) == 0 || root.Line[0].Function == nil {
		return ""
	}
	return root.Line[0].Function.Name
}

// sampleHasFunc reports whether a frame of s, other than the root, is in a
// function whose name contains fn.
func sampleHasFunc(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location[:len(s.Location)-1] {
		for _, l := range loc.Line {
			if l.Function != nil && strings.Contains(l.Function.Name, fn) {
				return true
			}
		}
	}
	return false
}

// StateProfile turns a window into one sample per goroutine and state, the
// stack under a root frame naming the state, with the goroutine's labels.
func TestStateProfileFromWindow(t *testing.T) {
	stk := []stack.Frame{
		{Func: "sync.(*Mutex).Lock", File: "/go/src/sync/mutex.go", Line: 46},
		{Func: "main.worker", File: "/app/main.go", Line: 12},
	}
	w := &tracewin.Window{Start: 1000, End: 1000 + 2e9, Goroutines: map[int64]*tracewin.GoStats{
		7: {ID: 7, State: stack.Waiting, WaitReason: "sync.Mutex.Lock", Stack: stk,
			Total: 2e9, Busy: 3e8, Sched: 1e8, Syscall: 5e7, Idle: 1.55e9,
			IdleByReason: []tracewin.ReasonTime{{Reason: "sync.Mutex.Lock", NS: 1.5e9}, {Reason: "sleep", NS: 4e7}}},
		8: {ID: 8, State: stack.Running, StartFunc: "main.spin", Total: 2e9, Busy: 2e9},
		9: {ID: 9, Exited: true}, // no time in the window: no sample
	}}
	p := StateProfile(w, func(id int64) map[string]string {
		if id == 7 {
			return map[string]string{"workload": "lab", "role": "waiter"}
		}
		return nil
	})
	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	if len(p.SampleType) != 1 || p.SampleType[0].Type != "goroutine_state_time" || p.SampleType[0].Unit != "nanoseconds" {
		t.Errorf("sample types %v", p.SampleType)
	}
	if p.DurationNanos != 2e9 {
		t.Errorf("duration %d; want 2e9", p.DurationNanos)
	}
	got := map[string]int64{}
	for _, s := range p.Sample {
		key := rootName(s)
		if len(s.Location) > 1 {
			key += " <- " + s.Location[len(s.Location)-2].Line[0].Function.Name
		}
		key += " " + strings.Join(s.Label["workload"], ",") + "/" + strings.Join(s.Label["role"], ",")
		got[key] += s.Value[0]
	}
	want := map[string]int64{
		"running <- main.worker lab/waiter":         3e8,
		"runnable <- main.worker lab/waiter":        1e8,
		"syscall <- main.worker lab/waiter":         5e7,
		"sync.Mutex.Lock <- main.worker lab/waiter": 1.5e9,
		"sleep <- main.worker lab/waiter":           4e7,
		"waiting <- main.worker lab/waiter":         1e7, // idle of no known reason
		"running <- main.spin /":                    2e9,
	}
	if len(got) != len(want) {
		t.Errorf("samples %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d; want %d (all: %v)", k, got[k], v, got)
		}
	}
	// The stack is top first: the leaf is the Lock call.
	for _, s := range stateSamples(p, "sync.Mutex.Lock", "workload", "lab") {
		if leaf := s.Location[0].Line[0]; leaf.Function.Name != "sync.(*Mutex).Lock" || leaf.Line != 46 ||
			leaf.Function.Filename != "/go/src/sync/mutex.go" {
			t.Errorf("leaf %+v %+v", leaf, leaf.Function)
		}
	}
	// It survives encoding.
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	q, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Sample) != len(p.Sample) || len(stateSamples(q, "sync.Mutex.Lock", "role", "waiter")) != 1 {
		t.Errorf("decoded profile differs: %d samples", len(q.Sample))
	}
}

func frameNames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			out = append(out, l.Function.Name)
		}
	}
	return out
}
