package corpus_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type fakeT struct{ errors, logs []string }

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

// TestCheck holds the harness to failing: a proven bug left unnamed, a
// finding elsewhere, a corpus program that does not reproduce its bug.
func TestCheck(t *testing.T) {
	a, b := site{"chanbug.go", 10}, site{"chanbug.go", 20}
	spec := bugSpec{name: "chanbug", sites: []site{a, b}}
	proven := map[site]time.Duration{a: time.Second, b: time.Second}
	for _, tc := range []struct {
		name string
		r    result
		want string // in the one error; "" for none
	}{
		{"named", result{goName: "go1.27", exitCode: 1, named: map[site]time.Duration{a: 3 * time.Second, b: 4 * time.Second}, leakServed: true, leakAt: proven}, ""},
		{"exit 0 on a warning", result{goName: "go1.27", named: map[site]time.Duration{a: 3 * time.Second, b: 4 * time.Second}, leakServed: true, leakAt: proven}, "exit status 1"},
		{"one site unnamed", result{goName: "go1.27", exitCode: 1, named: map[site]time.Duration{a: 3 * time.Second}, leakServed: true, leakAt: proven}, "no warning names [chanbug.go:20]"},
		{"not proven", result{goName: "go1.27", named: map[site]time.Duration{}, leakServed: true, leakAt: map[site]time.Duration{a: 0}}, "does not reproduce its bug"},
		{"no profile, unnamed", result{goName: "go1.26", named: map[site]time.Duration{}}, ""},
		{"false finding", result{goName: "go1.26", named: map[site]time.Duration{}, falseFindings: []string{"warning long-run [main.go:70]"}}, "names no line of the bug's file"},
		{"leak elsewhere", result{goName: "go1.27", exitCode: 1, named: map[site]time.Duration{a: 0, b: 0}, leakServed: true, leakAt: proven, leakOther: []site{{"chanbug.go", 30}}}, "not marked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.bug, r.mode = spec, "once"
			var f fakeT
			check(&f, &r)
			switch {
			case tc.want == "" && len(f.errors) > 0:
				t.Errorf("check failed the run: %q", f.errors)
			case tc.want != "" && (len(f.errors) != 1 || !strings.Contains(f.errors[0], tc.want)):
				t.Errorf("check's errors = %q, want one with %q", f.errors, tc.want)
			}
		})
	}
}
