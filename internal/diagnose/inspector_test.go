package diagnose_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stuckInLock blocks in Lock on a mutex the test holds, with no wake-up
// until the test lets go: a deadlock as far as anything outside can tell.
func stuckInLock(mu *sync.Mutex, done *sync.WaitGroup) {
	defer done.Done()
	mu.Lock()
	mu.Unlock()
}

// The real in-process source, diagnosed: two goroutines stuck in Lock make
// a deadlock finding on the snapshot, on the tasks' warnings and in Task;
// the background loop keeps it current; it clears once they are gone.
func TestInspectorWithCollector(t *testing.T) {
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	eng, err := diagnose.New(diagnose.Config{Allow: []string{"deadlock"}, Linger: time.Second,
		Thresholds: map[string]string{"deadlock.stuck_for": "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	p := diagnose.NewInspector(col, eng)
	var seen [][]api.Finding
	p.Observed = func(_, cur []api.Finding) { seen = append(seen, cur) }

	var mu sync.Mutex
	var stuck sync.WaitGroup
	mu.Lock()
	stuck.Add(2)
	go stuckInLock(&mu, &stuck)
	go stuckInLock(&mu, &stuck)

	ctx, cancel := context.WithCancel(context.Background())
	loop := make(chan struct{})
	go func() {
		defer close(loop)
		p.Run(ctx, 200*time.Millisecond, time.Second, func(err error) { t.Error(err) })
	}()

	var snap *api.Snapshot
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if snap, err = p.Snapshot(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		if len(snap.Findings) > 0 {
			break
		}
	}
	if len(snap.Findings) != 1 || snap.Findings[0].Rule != "deadlock" {
		t.Fatalf("findings %+v, want the deadlock", snap.Findings)
	}
	ids := snap.Findings[0].Evidence.Tasks
	if len(ids) != 2 {
		t.Fatalf("tasks %v, want the two stuck goroutines", ids)
	}
	for _, task := range snap.Tasks {
		if slices.Contains(ids, task.ID) != slices.Contains(task.Warnings(), "deadlock") {
			t.Errorf("task %d warnings %v", task.ID, task.Warnings())
		}
	}
	task, err := p.Task(ctx, ids[0], time.Second)
	if err != nil || !slices.Contains(task.Warnings(), "deadlock") {
		t.Errorf("Task(%d): %v, warnings %v", ids[0], err, task.Warnings())
	}

	mu.Unlock()
	stuck.Wait()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && len(eng.Findings()) > 0; {
		time.Sleep(200 * time.Millisecond)
	}
	if fs := eng.Findings(); len(fs) != 0 {
		t.Errorf("still %+v after the goroutines went", fs)
	}
	cancel()
	<-loop
	if len(seen) < 3 {
		t.Errorf("the background loop observed %d snapshots", len(seen))
	}
}
