package diagnose_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
)

// handOut is a source that keeps only the snapshot it hands out next: a new
// one after next is called.
type handOut struct {
	cur *api.Snapshot
	at  time.Time
}

func (h *handOut) next() {
	h.at = h.at.Add(time.Second)
	h.cur = &api.Snapshot{Time: h.at, Tasks: make([]api.Task, 1000), Findings: []api.Finding{}}
}

func (h *handOut) Snapshot(context.Context, time.Duration) (*api.Snapshot, error) { return h.cur, nil }
func (h *handOut) Task(context.Context, int64, time.Duration) (*api.Task, error) {
	return nil, api.ErrNoTask
}
func (h *handOut) StackOf(int64) []api.Frame        { return nil }
func (h *handOut) StretchStackOf(int64) []api.Frame { return nil }
func (h *handOut) Profile(context.Context, string) (*profile.Profile, error) {
	return nil, nil
}

// The inspector diagnoses a snapshot a source hands out again only once,
// and does not keep it alive once the source and the callers let go of it:
// the source builds the next one without the last beside it.
func TestInspectorLetsGoOfTheLastSnapshot(t *testing.T) {
	eng, err := diagnose.New(diagnose.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src := &handOut{at: time.Now()}
	p := diagnose.NewInspector(src, eng)
	observed := 0
	p.Observed = func(_, _ []api.Finding) { observed++ }
	ctx := context.Background()

	src.next()
	for range 3 {
		if _, err := p.Snapshot(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if observed != 1 {
		t.Errorf("one snapshot handed out three times was observed %d times, want 1", observed)
	}
	old := weak.Make(src.cur)
	src.next()
	runtime.GC()
	if old.Value() != nil {
		t.Error("the inspector keeps the last snapshot alive after the source let go of it")
	}
	if _, err := p.Snapshot(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if observed != 2 {
		t.Errorf("a new snapshot: observed %d in all, want 2", observed)
	}
}
