package daemon

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/inspectd/inspectd/internal/model"
	"go.uber.org/goleak"
)

// stateSample reports whether p has a sample labelled workload=wl and
// role=role under the root frame state with a frame whose function name
// contains fn.
func stateSample(p *profile.Profile, wl, role, state, fn string) bool {
	for _, s := range p.Sample {
		if len(s.Location) < 2 || !slices.Contains(s.Label["workload"], wl) || !slices.Contains(s.Label["role"], role) {
			continue
		}
		root := s.Location[len(s.Location)-1]
		if len(root.Line) == 0 || root.Line[0].Function == nil || root.Line[0].Function.Name != state {
			continue
		}
		for _, loc := range s.Location[:len(s.Location)-1] {
			for _, l := range loc.Line {
				if l.Function != nil && strings.Contains(l.Function.Name, fn) {
					return true
				}
			}
		}
	}
	return false
}

// TestPyroscopeGoroutineStates: with Pyroscope on, the daemon pushes the
// goroutine-states profile every upload interval, with the tags and
// credentials of the other profiles; it shows blocking-lock's waiters under
// sync.Mutex.Lock and cpu-pool's workers under running, each labelled with
// its workload. The push stops with the daemon, within its budget, leaving
// no goroutine behind.
func TestPyroscopeGoroutineStates(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := pyroscopeConfig(srv.URL)
	cfg.Workloads = []string{"blocking-lock", "cpu-pool"}
	cfg.PyroscopeTags["env"] = "test"
	cfg.PyroscopeUser, cfg.PyroscopePassword, cfg.PyroscopeTenant = "lab", "secret", "tenant-1"
	_, stop := startDaemon(t, cfg)
	began := time.Now()

	var (
		state              upload
		states, waitOK, ok bool
		runOK              bool
	)
	// A deadline, not a time the samples take: on a loaded machine the
	// first uploads may come before the collector has traced the waiters.
	deadline := time.Now().Add(45 * time.Second)
	for !ok && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		for _, u := range rc.uploads() {
			if len(u.prof.SampleType) != 1 || u.prof.SampleType[0].Type != model.StateProfileSampleType {
				continue
			}
			states, state = true, u
			waitOK = waitOK || stateSample(u.prof, "blocking-lock", "waiter", "sync.Mutex.Lock", "sync.(*Mutex).Lock")
			// The stack is the last one the trace recorded: a worker that
			// computes in bursts shorter than a preemption shows its
			// running time under its last wait, in runCPUPool's closure.
			runOK = runOK || stateSample(u.prof, "cpu-pool", "worker", "running", "workload.runCPUPool")
			ok = waitOK && runOK
		}
	}
	t.Logf("%d uploads in %v; waiter seen %v, burner seen %v", len(rc.uploads()), time.Since(began).Round(time.Millisecond), waitOK, runOK)
	if !states {
		t.Fatal("no goroutine_state_time profile uploaded within 45s")
	}
	if st := state.prof.SampleType[0]; st.Unit != "nanoseconds" {
		t.Errorf("sample type %s/%s; want goroutine_state_time/nanoseconds", st.Type, st.Unit)
	}
	if state.prof.DurationNanos <= 0 || state.prof.DurationNanos > int64(3*time.Second) {
		t.Errorf("a profile covers %v; want about the 1s upload interval", time.Duration(state.prof.DurationNanos))
	}
	if !waitOK {
		t.Error("no sample of workload=blocking-lock role=waiter under the root sync.Mutex.Lock with its Lock call")
	}
	if !runOK {
		t.Error("no sample of workload=cpu-pool role=worker under the root running in workload.runCPUPool")
	}
	for _, tag := range []string{"inspectd{", "env=test", "host=", "version="} {
		if !strings.Contains(state.name, tag) {
			t.Errorf("upload name %q lacks %s", state.name, tag)
		}
	}
	if state.user != "lab" || state.password != "secret" || state.tenant != "tenant-1" {
		t.Errorf("upload auth user %q password %q tenant %q; want lab, secret, tenant-1", state.user, state.password, state.tenant)
	}
	if !slices.Contains(state.types, model.StateProfileSampleType) {
		t.Errorf("types %v", state.types)
	}

	count := func() int {
		n := 0
		for _, u := range rc.uploads() {
			if slices.Contains(u.types, model.StateProfileSampleType) {
				n++
			}
		}
		return n
	}
	// Stop a while after an upload came, so that the last push has time
	// since it to cover (it skips less than 100ms).
	for n, deadline := count(), time.Now().Add(10*time.Second); count() == n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond)
	before := count()
	took := stop()
	t.Logf("shutdown took %v", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("shutdown took %v; want at most 5s", took)
	}
	switch after := count(); {
	case after > before:
	case took >= pyroscopeFlushTimeout:
		// A loaded machine can take longer than the budget to build and
		// send it: the daemon then abandons it, as it should.
		t.Logf("the last goroutine states upload was abandoned at the %v flush timeout", pyroscopeFlushTimeout)
	default:
		t.Errorf("shutdown pushed no last goroutine states profile: %d before, %d after", before, after)
	}
	srv.CloseClientConnections()
}
