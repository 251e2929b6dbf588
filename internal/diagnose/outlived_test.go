package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// A labelled goroutine whose starter no snapshot saw (a request that set
// the labels and returned between two snapshots) is named as outliving its
// context once the grace has passed, its starter "gone before any snapshot
// saw it".
func TestOutlivedStarterNeverSeen(t *testing.T) {
	e := newEngine(t, Config{})
	worker := func(total time.Duration) api.Task {
		return api.Task{ID: 20, ParentID: 99, Name: "web/worker", State: "running", Labels: map[string]string{"workload": "web", "role": "worker"},
			Location:  api.Frame{Function: "example.com/web.work", File: "/src/web/work.go", Line: 12},
			CreatedBy: api.Frame{Function: "example.com/web.handle", File: "/src/web/handle.go", Line: 30},
			Stats:     api.TaskStats{TotalNS: int64(total), BusyNS: int64(total), Polls: 10}}
	}
	s := snap(0, worker(time.Second))
	s.Sites = nil
	e.Observe(Input{Snapshot: s})
	s = snap(4*time.Second, worker(5*time.Second))
	s.Sites = nil
	var got *api.Finding
	for _, f := range e.Observe(Input{Snapshot: s}) {
		if f.Rule == "outlived-context" {
			got = &f
		}
	}
	if got == nil || !strings.Contains(got.Message, "gone before any snapshot saw it") || len(got.Evidence.Tasks) != 1 {
		t.Fatalf("finding %+v: want outlived-context for task 20, its starter never seen", got)
	}
}
