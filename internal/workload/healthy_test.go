package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// healthyTestEnv returns an Env for calling a workload's pieces directly,
// the way the supervisor would build it, and the count of its operations.
// The test waits for the Env's goroutines before it ends.
func healthyTestEnv(t *testing.T) (*Env, *atomic.Int64) {
	t.Helper()
	var ops atomic.Int64
	env := &Env{
		Name:     t.Name(),
		Log:      slog.New(slog.DiscardHandler),
		panicked: make(chan panicReport, 1),
		ops:      func(n float64) { ops.Add(int64(n)) },
	}
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		env.wg.Wait()
		goleak.VerifyNone(t, before)
	})
	return env, &ops
}

func TestJoinResultsInOrder(t *testing.T) {
	env, _ := healthyTestEnv(t)
	const n = 6
	var running, most atomic.Int64
	// Later tasks finish first, so results in order prove they are placed
	// by index, not by completion.
	task := func(ctx context.Context, i int) (int, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		pauseFor(ctx, time.Duration(n-i)*3*time.Millisecond)
		return i * i, nil
	}
	want := []int{0, 1, 4, 9, 16, 25}

	got, err := joinAll(t.Context(), env, n, task)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("joinAll = %v, %v; want %v", got, err, want)
	}
	most.Store(0)
	got, err = joinLimited(t.Context(), n, 2, task)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("joinLimited = %v, %v; want %v", got, err, want)
	}
	if m := most.Load(); m > 2 {
		t.Errorf("joinLimited ran %d tasks at once, limit 2", m)
	}
}

func TestJoinLimitedCancelsOnFirstError(t *testing.T) {
	var cancelled atomic.Int64
	boom := errors.New("boom")
	task := func(ctx context.Context, i int) (int, error) {
		if i == 0 {
			return 0, boom
		}
		if !pauseFor(ctx, 10*time.Second) {
			cancelled.Add(1)
			return 0, ctx.Err()
		}
		return i, nil
	}
	began := time.Now()
	_, err := joinLimited(t.Context(), 4, 4, task)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the first error, boom", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %v: the failure did not cancel the other tasks", took)
	}
	if c := cancelled.Load(); c != 3 {
		t.Errorf("%d tasks saw the cancellation, want 3", c)
	}
}

func TestSelectLosersAreCancelled(t *testing.T) {
	env, _ := healthyTestEnv(t)
	sleeps := []time.Duration{10 * time.Second, 5 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	began := time.Now()
	winner, cancelled, err := selectRace(t.Context(), env, sleeps)
	if err != nil || winner != 1 || cancelled != 3 {
		t.Errorf("selectRace = winner %d, cancelled %d, %v; want 1, 3, nil", winner, cancelled, err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %v: the losers were not cancelled", took)
	}
}

func TestTimeoutCallGivesUpAtTheDeadline(t *testing.T) {
	began := time.Now()
	if err := timeoutCall(t.Context(), 20*time.Millisecond, 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow call: err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("slow call returned after %v, long past its 20ms deadline", took)
	}
	if err := timeoutCall(t.Context(), 10*time.Second, time.Millisecond); err != nil {
		t.Errorf("fast call: err = %v, want nil", err)
	}
}

func TestStreamDoubling(t *testing.T) {
	if got := slices.Collect(streamTake(streamDoubling(), 4)); !slices.Equal(got, []uint64{1, 2, 4, 8}) {
		t.Errorf("first four = %v, want [1 2 4 8]", got)
	}
	all := slices.Collect(streamDoubling())
	if len(all) != 64 || all[63] != 1<<63 {
		t.Errorf("generator yielded %d values ending in %d, want 64 ending in 2^63", len(all), all[len(all)-1])
	}

	env, ops := healthyTestEnv(t)
	if last := streamPullRound(t.Context(), env, time.Millisecond, 5); last != 16 {
		t.Errorf("pulled round ended on %d, want 16", last)
	}
	if n := ops.Load(); n != 5 {
		t.Errorf("pulled round counted %d operations, want 5", n)
	}
}

func TestFileStreamUpperCasesEveryLine(t *testing.T) {
	env, _ := healthyTestEnv(t)
	ctx := t.Context()
	lines := make(chan string, 2)
	go env.Spawn(ctx, "reader")(func(ctx context.Context) {
		defer close(lines)
		if _, err := fileStreamRead(ctx, strings.NewReader(fileStreamText), lines, nil); err != nil {
			t.Errorf("read: %v", err)
		}
	})
	var got []string
	for line := range fileStreamAdapt(ctx, env, lines, 2, strings.ToUpper) {
		got = append(got, line)
	}

	want := strings.Split(strings.TrimRight(fileStreamText, "\n"), "\n")
	if len(want) < 20 || strings.ToUpper(fileStreamText) == fileStreamText {
		t.Fatalf("bundled text has %d lines and no lower case to adapt", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != strings.ToUpper(want[i]) {
			t.Errorf("line %d = %q, want %q", i+1, got[i], strings.ToUpper(want[i]))
		}
	}
}

func TestRecursionSpawnsOnlyAboveTheCutoff(t *testing.T) {
	env, _ := healthyTestEnv(t)
	for cutoff := range 5 {
		var spawned atomic.Int64
		v, err := recursionFib(t.Context(), env, 20, 0, cutoff, &spawned)
		if err != nil || v != 6765 {
			t.Errorf("cutoff %d: fib(20) = %d, %v; want 6765", cutoff, v, err)
		}
		if want := int64(1)<<cutoff - 1; spawned.Load() != want {
			t.Errorf("cutoff %d: %d goroutines, want %d", cutoff, spawned.Load(), want)
		}
	}
}

func TestPipelineComposesStagesInOrder(t *testing.T) {
	env, _ := healthyTestEnv(t)
	src := make(chan int, 10)
	for n := 1; n <= 10; n++ {
		src <- n
	}
	close(src)
	var got []int
	for v := range pipelineCompose(t.Context(), env, src, 1, pipelineSquare(), pipelineOdd(), pipelineLookup(0)) {
		got = append(got, v)
	}
	if want := []int{1, 9, 25, 49, 81}; !slices.Equal(got, want) {
		t.Errorf("pipeline = %v, want %v", got, want)
	}
}

func TestCPUPoolCountPrimes(t *testing.T) {
	for _, c := range []struct{ lo, hi, want int }{{0, 100, 25}, {2, 10_000, 1229}, {100, 200, 21}} {
		if got := cpuPoolCountPrimes(c.lo, c.hi); got != c.want {
			t.Errorf("primes in [%d, %d) = %d, want %d", c.lo, c.hi, got, c.want)
		}
	}
}

func TestTracingRequestSpansAndRecord(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var spans tracingSpanCounter
	tp, exporter, closeIdle, err := tracingProvider(t.Context(), &spans)
	if err != nil || exporter != "none" {
		t.Fatalf("provider: exporter %q, %v; want none", exporter, err)
	}
	defer closeIdle()
	defer tp.Shutdown(context.Background())

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := tracingRequest(t.Context(), tp.Tracer("test"), log, 7, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if s, e := spans.started.Load(), spans.ended.Load(); s != 3 || e != 3 {
		t.Errorf("spans started %d, ended %d; want 3 and 3 (request, parse, fetch)", s, e)
	}
	var rec struct {
		Msg     string `json:"msg"`
		Request int    `json:"request"`
		TraceID string `json:"trace_id"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("record %q: %v", buf.String(), err)
	}
	if rec.Request != 7 || len(rec.TraceID) != 32 || rec.TraceID == strings.Repeat("0", 32) {
		t.Errorf("record %+v: want request 7 and a valid trace ID", rec)
	}
}

// TestTracingExportsOverOTLP points the standard variable at a local
// collector stand-in: spans must arrive at /v1/traces by the time the
// workload has stopped, and the exporter's connections must not outlive it.
func TestTracingExportsOverOTLP(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
	}))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")

	var logs bytes.Buffer
	sup := NewSupervisor(Default, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := sup.Start("tracing", map[string]any{"interval": "5ms"}); err != nil {
		t.Fatal(err)
	}
	waitOps(t, sup, "tracing", 3)
	if err := sup.Stop("tracing"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if posts.Load() == 0 {
		t.Error("no spans were exported to the OTLP endpoint")
	}
	if want := `exporter="otlp ` + srv.URL; !strings.Contains(logs.String(), want) {
		t.Errorf("log does not name the exporter (%s):\n%s", want, logs.String())
	}
	goleak.VerifyNone(t, before)
}
