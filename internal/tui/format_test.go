package tui

import (
	"strings"
	"testing"

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
