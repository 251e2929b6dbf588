package diagnose_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// drainWithoutYielding polls queue in a loop with a non-blocking select
// and no Gosched until stop: the shape of a poller that never yields.
func drainWithoutYielding(queue <-chan int, stop *atomic.Bool, got *atomic.Int64) {
	for !stop.Load() {
		select {
		case <-queue: // the polling select
			got.Add(1)
		default:
		}
	}
}

// A real poller that never yields, beside a producer that feeds it a few
// items a second, diagnosed from the in-process source: busy-poll names the
// polling select's line.
func TestRealPollerWithoutYielding(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps a core busy for seconds")
	}
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: 2 * time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	eng, err := diagnose.New(diagnose.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := diagnose.NewInspector(col, eng)

	queue := make(chan int, 16)
	var stop atomic.Bool
	var got atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); drainWithoutYielding(queue, &stop, &got) }()
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			select {
			case queue <- i:
			default:
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	want := lineOf(t, "realpoll_test.go", "case <-queue: // the polling select")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last []api.Finding
	for ctx.Err() == nil {
		s, err := p.Snapshot(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		last = s.Findings
		for _, f := range s.Findings {
			if f.Rule != "busy-poll" {
				continue
			}
			for _, site := range f.Evidence.Sites {
				if strings.HasSuffix(site.File, "realpoll_test.go") && site.Line == want {
					t.Logf("after %d items: %s", got.Load(), f.Title)
					return
				}
			}
			t.Fatalf("busy-poll %q at %v, want realpoll_test.go:%d", f.Title, f.Evidence.Sites, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no busy-poll within 60s; findings then: %v", titles(last))
}
