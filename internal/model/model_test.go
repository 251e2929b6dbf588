package model

import (
	"bytes"
	"maps"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/stack"
	"github.com/inspectd/inspectd/internal/tracewin"
)

var (
	sleepAt = []stack.Frame{{Func: "time.Sleep", File: "/go/src/runtime/time.go", Line: 300},
		{Func: "example.com/app.poll", File: "/src/app/poll.go", Line: 12}}
	recvAt = []stack.Frame{{Func: "runtime.chanrecv1", File: "/go/src/runtime/chan.go", Line: 500},
		{Func: "example.com/app.serve", File: "/src/app/serve.go", Line: 40}}
	spawnAt = stack.Frame{Func: "example.com/app.start", File: "/src/app/start.go", Line: 9}
)

// window is a 2s window of goroutines, idle all of it.
func window(gs ...*tracewin.GoStats) *tracewin.Window {
	w := &tracewin.Window{Start: 0, End: 2e9, Goroutines: map[int64]*tracewin.GoStats{}}
	for _, g := range gs {
		if g.Total == 0 {
			g.Total, g.Idle = 2e9, 2e9
		}
		w.Goroutines[g.ID] = g
	}
	return w
}

func waiting(id int64, stk []stack.Frame, reason string) *tracewin.GoStats {
	return &tracewin.GoStats{ID: id, State: stack.Waiting, WaitReason: reason, Stack: stk,
		IdleByReason: []tracewin.ReasonTime{{Reason: reason, NS: 2e9}}}
}

func task(t *testing.T, snap *api.Snapshot, id int64) api.Task {
	t.Helper()
	for _, tk := range snap.Tasks {
		if tk.ID == id {
			return tk
		}
	}
	t.Fatalf("no task %d in %+v", id, snap.Tasks)
	return api.Task{}
}

// A goroutine the dump found leaked waits for good where the dump saw it,
// even when the window, which can end before the dump, shows it earlier on
// its way there (here, sleeping): the snapshot must not report a leaked
// goroutine that sleeps.
func TestLeakedTaskWaitsWhereTheDumpSawIt(t *testing.T) {
	m := New()
	leakAt := stack.Frame{Func: "example.com/app.leaky", File: "/src/app/leak.go", Line: 71}
	m.SetDump([]dump.Goroutine{{ID: 7, Status: "chan receive", WaitReason: "chan receive",
		State: stack.Waiting, Leaked: true, Frames: []stack.Frame{leakAt}}}, time.Now())
	tk := task(t, m.Snapshot(window(waiting(7, sleepAt, "sleep")), time.Now()), 7)
	if !tk.Leaked || tk.State != "waiting" || tk.WaitReason != "chan receive" ||
		tk.Location.Function != leakAt.Func || tk.Location.Line != leakAt.Line {
		t.Errorf("leaked task: %+v; want waiting on chan receive at leak.go:71", tk)
	}
}

// labelledProfile is a goroutine profile of n goroutines at serve.go:40
// under labels, as a StackProfile.
func labelledProfile(t *testing.T, labels map[string]string, n int) *StackProfile {
	t.Helper()
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}}, PeriodType: &profile.ValueType{Type: "goroutine", Unit: "count"}, Period: 1}
	fn := &profile.Function{ID: 1, Name: "example.com/app.serve", Filename: "/src/app/serve.go"}
	p.Function = []*profile.Function{fn}
	p.Location = []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fn, Line: 40}}}}
	sl := map[string][]string{}
	for k, v := range labels {
		sl[k] = []string{v}
	}
	p.Sample = []*profile.Sample{{Location: p.Location, Value: []int64{int64(n)}, Label: sl}}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sp, err := ParseStackProfile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// Labels come from the dump by goroutine ID, else from the goroutine
// profile by stack, else from the creator (marked stale); the name from
// the labels, else the start function.
func TestJoinLabels(t *testing.T) {
	m := New()
	at := time.Now().Add(-time.Minute)
	served := map[string]string{"workload": "lab", "role": "server"}
	m.SetProfile(labelledProfile(t, served, 2), at)
	m.SetDump([]dump.Goroutine{{ID: 1, State: stack.Waiting, Labels: map[string]string{"task": "main loop"}, Frames: sleepAt}}, at)
	child := waiting(9, nil, "select")
	child.ParentID, child.CreatedBy, child.Total, child.Idle = 1, spawnAt, 1e9, 1e9 // created in the window, after the profile
	plain := waiting(11, nil, "select")
	plain.StartFunc = "example.com/app.worker"
	snap := m.Snapshot(window(waiting(1, sleepAt, "sleep"), waiting(5, recvAt, "chan receive"), child, plain), time.Now())

	if tk := task(t, snap, 1); tk.Name != "main loop" || tk.LabelsStale {
		t.Errorf("dumped: %+v", tk)
	}
	if tk := task(t, snap, 5); !maps.Equal(tk.Labels, served) || tk.Name != "lab/server" || tk.LabelsStale {
		t.Errorf("labelled by stack: %+v", tk)
	}
	if tk := task(t, snap, 9); tk.Name != "main loop" || !tk.LabelsStale || tk.CreatedBy.Line != spawnAt.Line {
		t.Errorf("inherited: %+v", tk)
	}
	if tk := task(t, snap, 11); tk.Name != "example.com/app.worker" || tk.Labels != nil {
		t.Errorf("unlabelled: %+v", tk)
	}
	if len(snap.Notes) != 1 {
		t.Errorf("notes %q; want one on the stale labels", snap.Notes)
	}
}

// Every goroutine of a stack the goroutineleak profile lists as often as
// the goroutine profile does is leaked; where it lists fewer, none is.
func TestJoinLeakStacks(t *testing.T) {
	m := New()
	m.SetProfile(labelledProfile(t, nil, 2), time.Now())
	m.SetLeaks(labelledProfile(t, nil, 2))
	snap := m.Snapshot(window(waiting(5, recvAt, "chan receive"), waiting(6, recvAt, "chan receive"), waiting(7, sleepAt, "sleep")), time.Now())
	if !task(t, snap, 5).Leaked || !task(t, snap, 6).Leaked || task(t, snap, 7).Leaked {
		t.Errorf("leak marks: %+v", snap.Tasks)
	}
	m.SetLeaks(labelledProfile(t, nil, 1))
	snap = m.Snapshot(window(waiting(5, recvAt, "chan receive"), waiting(6, recvAt, "chan receive")), time.Now())
	if task(t, snap, 5).Leaked || task(t, snap, 6).Leaked {
		t.Errorf("one of two leaked, so neither can be named: %+v", snap.Tasks)
	}
}

// The profile of this very process parses, and its goroutines are counted.
func TestParseStackProfileOfThisProcess(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	sp, err := ParseStackProfile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Total() < 1 {
		t.Errorf("%d goroutines", sp.Total())
	}
	if _, err := ParseStackProfile(bytes.NewReader([]byte("not a profile"))); err == nil {
		t.Error("garbage parsed")
	}
}

// A dump's goroutine as a task, and the naming rule.
func TestDumpTaskAndName(t *testing.T) {
	g := dump.Goroutine{ID: 3, State: stack.Waiting, WaitReason: "chan receive", Frames: recvAt, CreatedBy: spawnAt,
		Labels: map[string]string{"workload": "lab"}}
	tk := DumpTask(&g, true)
	if tk.Name != "lab" || len(tk.Stack()) != 2 || tk.Location.Line != 40 {
		t.Errorf("%+v", tk)
	}
	for _, c := range []struct {
		labels           map[string]string
		start, createdBy string
		want             string
	}{
		{map[string]string{"task": "t", "workload": "w"}, "s", "c", "t"},
		{map[string]string{"role": "r"}, "s", "c", "r"},
		{map[string]string{"workload": "w", "role": "r"}, "s", "c", "w/r"},
		{nil, "s", "c", "s"},
		{nil, "", "c", "c"},
	} {
		if got := Name(c.labels, c.start, c.createdBy); got != c.want {
			t.Errorf("Name(%v, %q, %q) = %q; want %q", c.labels, c.start, c.createdBy, got, c.want)
		}
	}
}
