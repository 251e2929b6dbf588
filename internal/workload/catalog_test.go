package workload

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The catalog of shared/workloads.md: every one must be registered.
var (
	healthyNames = []string{"hello", "join", "spawn", "yield", "select", "timeout", "channels", "fan-in",
		"thread-bridge", "cpu-pool", "stream", "file-stream", "recursion", "tracing", "pipeline", "web-service"}
	brokenNames = []string{"blocking-lock", "blocking-loop", "leak", "deadlock", "contention", "starvation",
		"busy-poll", "never-yield", "spawn-storm", "unbounded-queue", "thread-leak", "ignored-cancel",
		"web-lock", "web-ignored-ctx", "join-never-done", "fan-in-spin", "tracing-pileup"}
)

// testParams keeps broken workloads small enough for the race detector (which
// allows 8128 live goroutines) and quick enough for a unit test. Each workload
// still shows its bug at these values.
var testParams = map[string]map[string]any{}

func TestCatalogComplete(t *testing.T) {
	var healthy, broken []string
	for _, s := range Default.Specs() {
		if s.Lesson == "" || len(s.Description) < 80 {
			t.Errorf("%s: lesson %q or description too short (%d chars)", s.Name, s.Lesson, len(s.Description))
		}
		for _, p := range s.Params {
			if p.Help == "" {
				t.Errorf("%s: parameter %s has no help", s.Name, p.Name)
			}
		}
		if s.Kind == Broken && s.Caps == "" {
			t.Errorf("%s: a broken workload must state its caps", s.Name)
		}
		if !ValidLesson(s.Lesson) {
			t.Errorf("%s: lesson %q cites no lesson of the talk by its name (%s), nor starts with %q",
				s.Name, s.Lesson, strings.Join(TalkLessons, ", "), BeyondTheTalk)
		}
		fix := slices.IndexFunc(s.Params, func(p ParamSpec) bool { return p.Name == "fix" })
		switch {
		case s.Kind == Broken && (fix < 0 || !reflect.DeepEqual(s.Params[fix], FixParam())):
			t.Errorf("%s: a broken workload must declare FixParam()", s.Name)
		case s.Kind == Broken && (s.Rule == "" || len(s.Fix) < 40):
			t.Errorf("%s: a broken workload must name its rule and say what its fix changes (rule %q, fix %q)", s.Name, s.Rule, s.Fix)
		case s.Kind == Healthy && (fix >= 0 || s.Rule != "" || s.Fix != "" || s.ShowsAfterStop || s.LeaksForGood):
			t.Errorf("%s: a healthy workload has no bug: no fix, rule or leak", s.Name)
		}
		for _, f := range s.Figures {
			if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(f.Name) || f.Help == "" {
				t.Errorf("%s: figure %q: want a metric name fragment and help", s.Name, f.Name)
			}
		}
		if s.Kind == Healthy {
			healthy = append(healthy, s.Name)
		} else {
			broken = append(broken, s.Name)
		}
	}
	want := func(kind string, got, want []string) {
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s workloads = %v, want %v", kind, got, w)
		}
	}
	want("healthy", healthy, healthyNames)
	want("broken", broken, brokenNames)
}

// TestWorkloads runs every workload alone: it must start, show goroutines
// labelled with its name, make progress, and stop cleanly (healthy ones leave
// nothing behind; broken ones no more than their cap).
func TestWorkloads(t *testing.T) {
	type run struct {
		spec   Spec
		name   string
		params map[string]any
	}
	var runs []run
	for _, spec := range Default.Specs() {
		runs = append(runs, run{spec, spec.Name, testParams[spec.Name]})
		if spec.Kind == Broken {
			fixed := map[string]any{"fix": true}
			maps.Copy(fixed, testParams[spec.Name])
			fixed["fix"] = true
			runs = append(runs, run{spec, spec.Name + "/fixed", fixed})
		}
	}
	for _, r := range runs {
		spec := r.spec
		t.Run(r.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			// Earlier tests may have left this workload's deliberate leaks behind.
			baseline := countLabelled(t, spec.Name)
			sup := NewSupervisor(Default, Options{StopGrace: 2 * time.Second})
			if err := sup.Start(spec.Name, r.params); err != nil {
				t.Fatalf("start: %v", err)
			}
			stopped := false
			defer func() {
				if !stopped {
					_ = sup.Stop(spec.Name)
				}
			}()

			first := waitOps(t, sup, spec.Name, 0)
			waitOps(t, sup, spec.Name, first)

			if n := countLabelled(t, spec.Name); n == 0 {
				t.Fatalf("no goroutine carries the label workload=%s", spec.Name)
			}
			if err := sup.Stop(spec.Name); err != nil {
				t.Fatalf("stop: %v", err)
			}
			stopped = true

			if spec.Kind == Healthy {
				goleak.VerifyNone(t, before)
				return
			}
			if st, _ := sup.StatusOf(spec.Name); !reflect.DeepEqual(st.Ran.Map(), params(t, spec, r.params).Map()) {
				t.Errorf("status of the stopped workload: ran with %v, want %v", st.Ran.Map(), params(t, spec, r.params).Map())
			}
			params, err := Resolve(spec.Name, spec.Params, r.params)
			if err != nil {
				t.Fatal(err)
			}
			maxLeft := 0
			if spec.MaxLeft != nil {
				maxLeft = spec.MaxLeft(params)
			}
			// Goroutines finishing their last step may take a moment.
			deadline := time.Now().Add(3 * time.Second)
			for {
				n := countLabelled(t, spec.Name) - baseline
				if n <= maxLeft {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines labelled workload=%s left after stop, cap %d", n, spec.Name, maxLeft)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// params resolves raw for spec.
func params(t *testing.T, spec Spec, raw map[string]any) Params {
	t.Helper()
	p, err := Resolve(spec.Name, spec.Params, raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitOps waits until the workload's operation count exceeds above.
func waitOps(t *testing.T, sup *Supervisor, name string, above uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := sup.StatusOf(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ops > above {
			return st.Ops
		}
		if st.LastErr != "" {
			t.Fatalf("workload failed: %s", st.LastErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: operations stayed at %d for 10s", st.Ops)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countLabelled counts live goroutines labelled workload=name in the goroutine profile.
func countLabelled(t *testing.T, name string) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	// debug=1 groups identical stacks: "N @ 0x... \n# labels: {...}".
	re := regexp.MustCompile(`(?m)^(\d+) @[^\n]*\n# labels: \{([^}]*)\}`)
	want := fmt.Sprintf(`"workload":%q`, name)
	n := 0
	for _, m := range re.FindAllSubmatch(buf.Bytes(), -1) {
		if bytes.Contains(m[2], []byte(want)) {
			var c int
			fmt.Sscan(string(m[1]), &c)
			n += c
		}
	}
	return n
}

// TestPanicRestarts shows that a panicking workload is recovered, counted and
// restarted, while the process lives on.
func TestPanicRestarts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := NewRegistry()
	reg.Register(Spec{
		Name: "panicky", Lesson: "test", Kind: Broken, Description: "panics in a child goroutine",
		Run: func(ctx context.Context, env *Env) error {
			env.Op()
			go env.Spawn(ctx, "child")(func(context.Context) { panic("boom") })
			<-ctx.Done()
			return nil
		},
	})
	sup := NewSupervisor(reg, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err := sup.Start("panicky", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := sup.StatusOf("panicky")
		if st.Panics >= 2 && st.Restarts >= 2 {
			if st.LastErr == "" || !regexp.MustCompile(`boom`).MatchString(st.LastErr) {
				t.Errorf("last error %q does not name the panic", st.LastErr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: panics=%d restarts=%d, want >= 2 each", st.Panics, st.Restarts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sup.Stop("panicky"); err != nil {
		t.Fatal(err)
	}
}
