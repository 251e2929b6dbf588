package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// fixedInspector answers one snapshot of n tasks, after delay (or when
// the request ends), and counts the requests it is answering.
type fixedInspector struct {
	snap     *api.Snapshot
	delay    time.Duration
	inflight atomic.Int32
	charged  atomic.Int64 // nanoseconds charged (source.Charger)
}

func (f *fixedInspector) Charge(cpu time.Duration) { f.charged.Add(int64(cpu)) }

func newFixed(n int, delay time.Duration) *fixedInspector {
	s := &api.Snapshot{Time: time.Now(), WindowNS: 5e9, Source: "test"}
	for i := range n {
		state := "waiting"
		if i%10 == 0 {
			state = "running"
		}
		s.Tasks = append(s.Tasks, api.Task{ID: int64(i + 1), Name: fmt.Sprintf("pool/worker-%d", i%7), State: state,
			Stats: api.TaskStats{TotalNS: 5e9, BusyNS: int64(i), IdleNS: 5e9 - int64(i)}})
	}
	return &fixedInspector{snap: s, delay: delay}
}

func (f *fixedInspector) Snapshot(ctx context.Context, _ time.Duration) (*api.Snapshot, error) {
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	t := time.NewTimer(f.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	return f.snap, nil
}

func (f *fixedInspector) Task(context.Context, int64, time.Duration) (*api.Task, error) {
	return nil, api.ErrNoTask
}

func get(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// A query answers the rows asked for, with the counts beside them; a bad
// one names itself.
func TestSnapshotQuery(t *testing.T) {
	srv := startServer(t, New(Options{Inspector: newFixed(1000, 0)}))
	code, body, _ := get(t, srv.URL+"/api/v1/snapshot?sort=busy&limit=20&state=waiting")
	var s api.Snapshot
	if err := json.Unmarshal(body, &s); err != nil || code != 200 {
		t.Fatalf("%d %v: %.200s", code, err, body)
	}
	if len(s.Tasks) != 20 || s.Tasks[0].Stats.BusyNS != 999 || s.TaskCount != 1000 || s.Matched != 900 || s.ByState["running"] != 100 {
		t.Errorf("%d tasks (first busy %d), %d of %d matched, by state %v", len(s.Tasks), s.Tasks[0].Stats.BusyNS, s.Matched, s.TaskCount, s.ByState)
	}
	// The whole of it, streamed, reads back.
	code, body, _ = get(t, srv.URL+"/api/v1/snapshot")
	if err := json.Unmarshal(body, &s); err != nil || code != 200 || len(s.Tasks) != 1000 || s.Tasks[999].ID != 1000 {
		t.Errorf("whole snapshot: %d, %d tasks, %v", code, len(s.Tasks), err)
	}
	for q, want := range map[string]string{
		"sort=speed":  `sort=\"speed\": want one of`,
		"window=1_0":  `window=\"1_0\": want a duration`,
		"limit=-5":    `limit=\"-5\"`,
		"group=color": `group=\"color\"`,
	} {
		if code, body, _ := get(t, srv.URL+"/api/v1/snapshot?"+q); code != 400 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s; want 400 with %q", q, code, body, want)
		}
	}
}

// More requests than the cap are answered 503 with Retry-After, at once;
// requests whose clients go away end, and leave nothing running.
func TestRequestsBounded(t *testing.T) {
	f := newFixed(10, time.Minute) // a build that would take a minute
	srv := startServer(t, New(Options{Inspector: f}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	codes := make(chan int, 2*maxInspect)
	for range 2 * maxInspect {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/snapshot", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				codes <- resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	// The ones past the cap come back at once.
	for range maxInspect {
		select {
		case c := <-codes:
			if c != 503 {
				t.Errorf("a request past the cap: %d, want 503", c)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("requests past the cap were not answered")
		}
	}
	if code, _, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz while the API is saturated: %d", code)
	}
	cancel()
	wg.Wait()
	// Every handler ended with its client.
	for deadline := time.Now().Add(10 * time.Second); f.inflight.Load() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still being answered after their clients left", f.inflight.Load())
		}
	}
}

// /debug/fgprof is bounded like /ui's captures, and stops when its client
// goes away.
func TestFgprofBounded(t *testing.T) {
	srv := startServer(t, New(Options{}))
	for _, q := range []string{"seconds=100000", "seconds=0", "seconds=x", "format=svg"} {
		if code, body, _ := get(t, srv.URL+"/debug/fgprof?"+q); code != 400 || strings.Contains(string(body), "%!") {
			t.Errorf("%s: %d %s; want 400 with a message", q, code, body)
		}
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/debug/fgprof?seconds=60", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before+2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the profile goes on after its client left: %d goroutines, %d before", runtime.NumGoroutine(), before)
		}
	}
	code, body, _ := get(t, srv.URL+"/debug/fgprof?seconds=1&format=folded")
	if code != 200 || len(body) == 0 {
		t.Errorf("a 1s folded profile: %d, %d bytes", code, len(body))
	}
}

// The scheme of a bearer token is case-insensitive.
func TestBearerSchemeCase(t *testing.T) {
	srv := httptest.NewServer(New(Options{Token: "s3cret"}))
	defer srv.Close()
	for _, h := range []string{"Bearer s3cret", "bearer s3cret", "BEARER s3cret"} {
		req, _ := http.NewRequest("GET", srv.URL+"/debug/pprof/", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Authorization: %s: %d", h, resp.StatusCode)
		}
	}
}

// The goroutines of the server, and of the connections it serves, carry
// the inspector's label: the diagnosis leaves them out.
func TestServerGoroutinesAreOwn(t *testing.T) {
	h := New(Options{})
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewHTTPServer(h, nil)
	ln := srv.Listener
	done := make(chan struct{})
	go source.Own("api", func() {
		defer close(done)
		srv.Config.Serve(LimitListener(ln))
	})
	defer func() { srv.Config.Close(); <-done }()
	// A connection held open, idle.
	resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), source.OwnLabel+`: api`) || !strings.Contains(string(body), "net/http.(*conn).serve") {
		t.Errorf("no connection goroutine labelled %s: api in the dump:\n%.2000s", source.OwnLabel, body)
	}
}
