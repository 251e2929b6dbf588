package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

func TestContainsFold(t *testing.T) {
	for _, s := range []string{"", "a", "Waiter", "blocking-lock/WAITER", "xwaitewaiter", "Straße waiter", "ÅB", "aaab"} {
		for _, f := range []string{"", "a", "waiter", "ter", "aab", "å", "straße w", "zz"} {
			want := strings.Contains(strings.ToLower(s), f)
			if got := containsFold(s, f); got != want {
				t.Errorf("containsFold(%q, %q) = %v, want %v", s, f, got, want)
			}
		}
	}
}

func TestMatchTask(t *testing.T) {
	tk := &api.Task{Name: "pool/Worker", WaitReason: "chan receive", Labels: map[string]string{"role": "w1", "workload": "pool"},
		Location: api.Frame{Function: "example.com/pool.run", File: "/src/pool.go"}}
	for f, want := range map[string]bool{
		"": true, "worker": true, "CHAN": true, "pool.run": true, "role=w1": true, "role=w": false, "w1,work": true,
		"=w1": true, "nope": false, "workload=pool": true, "src/pool": true,
	} {
		if got := MatchTask(tk, f); got != want {
			t.Errorf("MatchTask(%q) = %v, want %v", f, got, want)
		}
	}
}

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
