package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// A long location keeps its file and line; a wait of one minute is one minute.
func TestShortFrameInAndMinutes(t *testing.T) {
	f := api.Frame{Function: "github.com/inspectd/inspectd/internal/workload.(*blockingLockWorkload).holdTheLockWhileSleeping", File: "/src/blocking_lock.go", Line: 44}
	if got := ShortFrameIn(f, 40); !strings.HasSuffix(got, " blocking_lock.go:44") || len([]rune(got)) > 40 {
		t.Errorf("ShortFrameIn: %q", got)
	}
	if got := ShortFrameIn(api.Frame{Function: "main.f", File: "/a/main.go", Line: 3}, 40); got != "main.f main.go:3" {
		t.Errorf("a short one: %q", got)
	}
	var b strings.Builder
	WriteTask(&b, &api.Task{ID: 1, State: "waiting", WaitReason: "chan receive", WaitMinutes: 1}, "", 5*time.Second)
	if !strings.Contains(b.String(), "chan receive for 1 minute\n") {
		t.Errorf("task detail:\n%s", b.String())
	}
}
