package inproc

import (
	"context"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/inspectd/inspectd/internal/api"
)

// parkedAlike waits on stop at one place: its goroutines share a stack.
func parkedAlike(stop <-chan struct{}) { <-stop }

// StackOf gives goroutines that wait at the same place one slice, which
// names where they wait: the diagnosis asks for every goroutine's stack.
func TestCollectorStackOfSharesStacks(t *testing.T) {
	c, err := NewCollector(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	for range 20 {
		go parkedAlike(stop)
	}
	snap, err := c.Snapshot(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stacks [][]api.Frame
	for _, task := range snap.Tasks {
		if task.Location.Function == "github.com/inspectd/inspectd/internal/source/inproc.parkedAlike" {
			stacks = append(stacks, c.StackOf(task.ID))
		}
	}
	if len(stacks) < 20 {
		t.Fatalf("%d tasks wait in parkedAlike, want 20", len(stacks))
	}
	for i, s := range stacks {
		if !slices.ContainsFunc(s, func(f api.Frame) bool {
			return f.Function == "github.com/inspectd/inspectd/internal/source/inproc.parkedAlike"
		}) {
			t.Fatalf("stack %d does not name parkedAlike: %+v", i, s)
		}
		if unsafe.SliceData(s) != unsafe.SliceData(stacks[0]) || len(s) != len(stacks[0]) {
			t.Errorf("stack %d is a copy of its own; want the one slice the goroutines share", i)
		}
	}
	if c.StackOf(1<<40) != nil {
		t.Error("a goroutine not in the window has a stack")
	}
}
