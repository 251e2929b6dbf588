package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// boundLock is where the lock waiters of the bounded diagnose tests wait.
func boundLock(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

// parkForDiagnose parks n goroutines on a channel and two in Lock on a
// mutex held meanwhile, until the test ends.
func parkForDiagnose(t *testing.T, n int) {
	t.Helper()
	stop := make(chan struct{})
	var mu sync.Mutex
	mu.Lock()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { <-stop })
	}
	for range 2 {
		wg.Go(func() { boundLock(&mu) })
	}
	t.Cleanup(func() {
		close(stop)
		mu.Unlock()
		wg.Wait()
	})
}

// pprofServer serves this process's net/http/pprof; hang, when set, says
// which requests to hold unanswered until the client gives up.
func pprofServer(t *testing.T, hang func(r *http.Request) bool) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang != nil && hang(r) {
			<-r.Context().Done()
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// diagnoseBounded runs the CLI binary's diagnose and returns its output,
// exit code and how long it took.
func diagnoseBounded(t *testing.T, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary(t), append([]string{"diagnose"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	began := time.Now()
	cmd.Run()
	took = time.Since(began)
	if ctx.Err() != nil {
		t.Fatalf("diagnose %v: still running after 5 minutes", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode(), took
}

// A target whose endpoints answer once, then never: the snapshots after
// the first are missed, and the run still ends within --wait, --window and
// the margin, with the findings of the first and a partial line.
func TestDiagnoseHangingTarget(t *testing.T) {
	t.Parallel()
	parkForDiagnose(t, 10)
	var mu sync.Mutex
	seen := map[string]bool{}
	url := pprofServer(t, func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		k := r.URL.RequestURI()
		hang := seen[k]
		seen[k] = true
		return hang
	})
	const wait, window = 5 * time.Second, time.Second
	out, errs, code, took := diagnoseBounded(t, url, "--wait", wait.String(), "--window", window.String(), "--threshold", "deadlock.stuck_for=500ms")
	t.Logf("exit %d after %s\n%s%s", code, took.Round(time.Millisecond), out, errs)
	// The bound is wait+window+margin; a loaded machine may add to the
	// start of the binary and the printing, not to the bound itself.
	if bound := wait + window + diagnoseMargin + 15*time.Second; took > bound {
		t.Errorf("took %s, want under %s", took, bound)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1 (the deadlock of the first snapshot)", code)
	}
	if !strings.Contains(out, "CRITICAL  deadlock") || !strings.Contains(out, "boundLock") {
		t.Errorf("no deadlock finding at boundLock in:\n%s", out)
	}
	// The second snapshot waits on the goroutine profile, its first request.
	if !strings.Contains(out, "partial input: snapshot 2 missed: not done within 31s (its 1s window and 30s): GET /debug/pprof/goroutine?debug=0 unanswered after") {
		t.Errorf("no partial line for snapshot 2 naming its request in:\n%s", out)
	}
}

// A target with 50,000 goroutines: diagnose ends within its bound and
// prints what it found.
func TestDiagnoseHeavyTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("parks 50,000 goroutines")
	}
	if raceEnabled {
		t.Skip("the race detector allows 8128 goroutines at once")
	}
	parkForDiagnose(t, 50_000)
	url := pprofServer(t, nil)
	const wait, window = 5 * time.Second, time.Second
	out, errs, code, took := diagnoseBounded(t, url, "--wait", wait.String(), "--window", window.String(), "--threshold", "deadlock.stuck_for=500ms")
	t.Logf("exit %d after %s\n%s%s", code, took.Round(time.Millisecond), out, errs)
	if bound := wait + window + diagnoseMargin + 15*time.Second; took > bound {
		t.Errorf("took %s, want under %s", took, bound)
	}
	if code != 1 || !strings.Contains(out, "CRITICAL  deadlock") {
		t.Errorf("exit %d, want 1 with the deadlock at boundLock:\n%s%s", code, out, errs)
	}
}

// Against the inspection API: the target's findings are read once, then
// its answers never come; the run ends within its bound with them.
func TestDiagnoseHangingAPI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/tasks/0":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"0 is not a goroutine id"}`))
			return
		case "/api/v1/findings":
		default:
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		reads++
		first := reads == 1
		mu.Unlock()
		if !first {
			<-r.Context().Done()
			return
		}
		now := time.Now()
		fl := api.FindingList{Time: now, Findings: []api.Finding{{ID: "deadlock|x", Rule: "deadlock", Severity: "critical",
			Title: "deadlock: 2 goroutines wait forever in sync.Mutex.Lock at main.transfer bank.go:42", FirstSeen: now, LastSeen: now}}}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(fl)
	}))
	t.Cleanup(srv.Close)
	const wait, window = 3 * time.Second, time.Second
	out, errs, code, took := diagnoseBounded(t, srv.URL, "--wait", wait.String(), "--window", window.String())
	t.Logf("exit %d after %s\n%s%s", code, took.Round(time.Millisecond), out, errs)
	if bound := wait + window + diagnoseMargin + 15*time.Second; took > bound {
		t.Errorf("took %s, want under %s", took, bound)
	}
	if code != 1 || !strings.Contains(out, "CRITICAL  deadlock") || !strings.Contains(out, "partial input: snapshot 2 missed: not done within 31s (its 1s window and 30s): GET /api/v1/findings unanswered") {
		t.Errorf("exit %d, want 1 with the finding of the first read and a partial line:\n%s%s", code, out, errs)
	}
}
