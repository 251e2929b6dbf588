package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// A leak finding names what the goroutines wait on: a select with no cases
// is not a channel.
func TestLeakedOn(t *testing.T) {
	for reason, want := range map[string]string{
		"select (no cases)": "select with no cases",
		"chan receive":      "channels",
		"select":            "channels",
		"sync.Cond.Wait":    "something",
	} {
		if got := leakedOn(reason); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", reason, got, want)
		}
	}
}

// The heap the inspector itself holds (the watch stream's diffs, the
// agent's server) is not a bug of the program it runs in.
func TestGrowthLeavesOutTheInspector(t *testing.T) {
	for _, fn := range []string{"github.com/inspectd/inspectd/internal/api.sameTask", "github.com/inspectd/inspectd/internal/server.(*server).watch",
		"github.com/inspectd/inspectd/agent.Listen", "github.com/inspectd/inspectd/internal/source/inproc.(*Collector).build"} {
		if !inspector([]api.Frame{{Function: "encoding/json.Marshal"}, {Function: fn}}) {
			t.Errorf("%s is taken for the program's own", fn)
		}
	}
	if inspector([]api.Frame{{Function: "github.com/inspectd/inspectd/internal/workload.(*unboundedQueue).push"}}) {
		t.Error("a workload of the lab is taken for the inspector")
	}
}

func TestCountOf(t *testing.T) {
	if got := goroutines(1) + " " + verb(1, "runs", "run"); got != "1 goroutine runs" {
		t.Errorf("one: %q", got)
	}
	if got := countOf(3, "other goroutine") + " " + verb(3, "runs", "run"); got != "3 other goroutines run" {
		t.Errorf("three: %q", got)
	}
}

// A leak whose goroutines the leak detection has proven in part says how
// many of those it lists are proven, so that its counts agree.
func TestLeakCountsAgree(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	at := api.Frame{Function: "example.com/app.ask", File: "/src/app/ask.go", Line: 71}
	var tasks []api.Task
	for id := range int64(27) {
		tasks = append(tasks, api.Task{ID: 100 + id, Name: "ask", State: "waiting", WaitReason: "chan send", Leaked: id < 13,
			Location: at, Stats: api.TaskStats{TotalNS: 5e9, IdleNS: 5e9, InStateNS: 5e9}, WaitMinutes: 1})
	}
	s := &api.Snapshot{Time: t0, WindowNS: 5e9, Tasks: tasks, Process: api.Process{GOMAXPROCS: 2, Leaked: 13}}
	fs := e.Observe(Input{Snapshot: s})
	if len(fs) != 1 || !strings.Contains(fs[0].Title, "27 goroutines blocked in chan send at app.ask ask.go:71, 13 of them proven leaked") ||
		!strings.Contains(fs[0].Message, "14 more are stuck there") {
		t.Errorf("findings %+v", fs)
	}
}

// The heap a remote target spends serving the inspector's own profile
// requests (net/http/pprof writing a profile) grows while it is watched:
// it is not the program's growth to report.
func TestGrowthLeavesOutServingTheInspector(t *testing.T) {
	const mb = 1 << 20
	serve := func(bytes int64) *profile.Profile {
		p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}}}
		for i, fn := range []string{"compress/flate.NewWriter", "runtime/pprof.(*profileBuilder).build", "net/http/pprof.handler.ServeHTTP", "net/http.(*conn).serve"} {
			f := &profile.Function{ID: uint64(i + 1), Name: fn, Filename: "/go/src/net/http/pprof/pprof.go"}
			p.Function = append(p.Function, f)
			p.Location = append(p.Location, &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: f, Line: int64(273 + i)}}})
		}
		p.Sample = []*profile.Sample{{Location: p.Location, Value: []int64{1, bytes}}}
		return p
	}
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for sec := 0; sec <= 40; sec += 2 {
		s := &api.Snapshot{Time: t0.Add(time.Duration(sec) * time.Second), WindowNS: 5e9, Process: api.Process{GOMAXPROCS: 2, Leaked: -1}}
		// No heap figure (a remote target): the profile's bytes stand in.
		prof := serve(int64(20*mb + sec*5*mb))
		if fs := e.Observe(Input{Snapshot: s, Profile: func(string) (*profile.Profile, error) { return prof, nil }}); len(fs) != 0 {
			t.Fatalf("at %ds: %+v, want nothing: the heap is net/http/pprof's, serving the inspector", sec, fs)
		}
	}
}
