package diagnose_test

import (
	"context"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/inproc"
	"github.com/inspectd/inspectd/internal/workload"
)

// The lab's healthy workloads, all at once, diagnosed as a target without
// the goroutineleak profile: their workers and servers at rest are not
// suspects, even with a stuck_for far shorter than the default.
func TestHealthyLabHasNoSuspects(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the healthy lab for seconds")
	}
	sup := workload.NewSupervisor(workload.Default, workload.Options{})
	defer sup.StopAll()
	for _, spec := range workload.Default.Specs() {
		if spec.Kind != workload.Healthy {
			continue
		}
		if err := sup.Start(spec.Name, nil); err != nil {
			t.Fatalf("starting %s: %v", spec.Name, err)
		}
	}
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	eng, err := diagnose.New(diagnose.Config{Allow: []string{"leak-suspect", "goroutine-leak", "deadlock", "waitgroup-stuck"},
		Thresholds: map[string]string{"leak-suspect.stuck_for": "3s"}})
	if err != nil {
		t.Fatal(err)
	}
	u := unproven{col, eng}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if fs := u.observe(t, ctx); len(fs) != 0 {
			t.Fatalf("the healthy lab: %v, want nothing", titles(fs))
		}
	}
}
