package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// slowInspector delays each snapshot of a real collector: the seam that makes a
// stream fall behind its interval.
type slowInspector struct {
	*inproc.Collector
	delay time.Duration
}

func (p slowInspector) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	time.Sleep(p.delay)
	return p.Collector.Snapshot(ctx, window)
}

func readUpdates(t *testing.T, url string, n int) []api.Update {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var out []api.Update
	for len(out) < n && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var u api.Update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				t.Fatal(err)
			}
			out = append(out, u)
		}
	}
	return out
}

func TestWatch(t *testing.T) {
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := httptest.NewServer(New(Options{Inspector: slowInspector{col, 350 * time.Millisecond}}))
	defer srv.Close()

	// The stream is built every 100ms but each snapshot takes 350ms: every
	// update after the first with numbers says it stands for the ones that
	// were missed. Before the recorder's first slice is analysed, updates
	// say only that it records.
	us := readUpdates(t, srv.URL+"/api/v1/watch?interval=100ms&window=500ms", 8)
	for len(us) > 0 && us[0].WindowNS == 0 {
		if !us[0].Full || us[0].RecordingSince.IsZero() || len(us[0].Tasks) != 0 || len(us[0].Notes) == 0 {
			t.Fatalf("update %d without a window: full=%v recording since %v, %d tasks, notes %q; want a full update that says it records",
				us[0].Seq, us[0].Full, us[0].RecordingSince, len(us[0].Tasks), us[0].Notes)
		}
		us = us[1:]
	}
	if len(us) < 3 || !us[0].Full {
		t.Fatalf("updates with a window: %d, first full=%v", len(us), len(us) > 0 && us[0].Full)
	}
	for _, u := range us[1:3] {
		if u.Full || u.Missed < 2 || u.MissedBuilding < 2 {
			t.Errorf("update %d: full=%v missed=%d (building %d); want a diff that missed at least 2 while it was built",
				u.Seq, u.Full, u.Missed, u.MissedBuilding)
		}
	}

	for _, q := range []string{"interval=1ms", "interval=soon", "window=2h"} {
		resp, err := http.Get(srv.URL + "/api/v1/watch?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("watch?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// startServer serves h on loopback as inspectd and the agent do, with
// ConnContext.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnContext = ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// sseReader reads a watch stream's updates off a raw connection.
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
}

func (r sseReader) next() api.Update {
	r.t.Helper()
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading the stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var u api.Update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				r.t.Fatal(err)
			}
			return u
		}
	}
}

// watchSlowly opens a watch stream from a client with a small receive
// buffer, to read it slowly.
func watchSlowly(t *testing.T, srv *httptest.Server, query string) sseReader {
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /api/v1/watch?%s HTTP/1.1\r\nHost: x\r\n\r\n", query)
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("watch: %s", resp.Status)
	}
	return sseReader{t, bufio.NewReaderSize(resp.Body, 512)}
}

// Every task of a program that waits is sent once: updates after the first
// carry what changed, not the tasks whose numbers only follow the window.
// Encoding a snapshot, whole or as updates, is CPU the program spends on
// inspection: it is charged to the source, whose budget covers it.
func TestEncodingIsChargedToTheSource(t *testing.T) {
	f := newFixed(2000, 0)
	srv := startServer(t, New(Options{Inspector: f}))
	if code, body, _ := get(t, srv.URL+"/api/v1/snapshot"); code != http.StatusOK || len(body) < 100_000 {
		t.Fatalf("snapshot: %d, %d bytes", code, len(body))
	}
	whole := f.charged.Load()
	if whole <= 0 {
		t.Fatalf("a snapshot of 2000 tasks was encoded and %v was charged", time.Duration(whole))
	}
	readUpdates(t, srv.URL+"/api/v1/watch?interval=100ms&window=1s", 3)
	if watch := f.charged.Load() - whole; watch <= 0 {
		t.Errorf("3 updates of 2000 tasks were sent and %v was charged", time.Duration(watch))
	}
}

func TestWatchSendsWhatChanged(t *testing.T) {
	release := make(chan struct{})
	var started, wg sync.WaitGroup
	for range 200 {
		started.Add(1)
		wg.Go(func() { started.Done(); <-release })
	}
	defer func() { close(release); wg.Wait() }()
	started.Wait()
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := startServer(t, New(Options{Inspector: col}))
	// 9 updates 300ms apart of a 1s window: the last ones no longer see
	// the parked goroutines' last run (a busy machine may schedule them
	// after the recorder started).
	const n = 9
	// Before the recorder's first slice is analysed, updates say only
	// that it records (a loaded machine may take a few intervals): the
	// n after them are the ones compared.
	us := readUpdates(t, srv.URL+"/api/v1/watch?interval=300ms&window=1s", n+11)
	for len(us) > 0 && us[0].WindowNS == 0 && len(us[0].Tasks) == 0 && !us[0].RecordingSince.IsZero() {
		us = us[1:]
	}
	if len(us) < n {
		t.Fatalf("%d of %d updates with a window: the recorder had nothing for the rest", len(us), n+11)
	}
	us = us[:n]
	if !us[0].Full || len(us[0].Tasks) < 200 {
		t.Fatalf("%d updates, the first full=%v with %d tasks", len(us), us[0].Full, len(us[0].Tasks))
	}
	var state api.Snapshot
	for i, u := range us {
		t.Logf("update %d: %d tasks sent, window %v, source %s", u.Seq, len(u.Tasks), time.Duration(u.WindowNS), u.Source)
		if i >= n-3 && len(u.Tasks) > 100 {
			t.Errorf("update %d sent %d tasks: the 200 that wait all along were sent again", u.Seq, len(u.Tasks))
			for _, task := range u.Tasks[:min(3, len(u.Tasks))] {
				if j := slices.IndexFunc(state.Tasks, func(o api.Task) bool { return o.ID == task.ID }); j >= 0 {
					was, _ := json.Marshal(state.Tasks[j])
					is, _ := json.Marshal(task)
					t.Logf("task %d was (window %v)\n%s\nis\n%s", task.ID, time.Duration(state.WindowNS), was, is)
				}
			}
		}
		api.Apply(&state, u)
	}
	waiting := 0
	for _, task := range state.Tasks {
		if task.WaitReason == "chan receive" && task.Stats.IdleNS == state.WindowNS {
			waiting++
		}
	}
	if waiting < 200 {
		t.Errorf("the client's state has %d tasks waiting all of its %v window, want 200", waiting, time.Duration(state.WindowNS))
	}
}

// A client that reads slower than the interval is told how many updates
// it missed, instead of reading old ones from the socket's buffers.
func TestWatchTellsASlowReaderWhatItMissed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stream sees what the client has not taken only on Linux")
	}
	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := startServer(t, New(Options{Inspector: col}))
	r := watchSlowly(t, srv, "interval=100ms&window=500ms")
	var missed, building int64
	for range 6 {
		u := r.next()
		missed, building = missed+u.Missed, building+u.MissedBuilding
		t.Logf("update %d: missed %d, %d tasks", u.Seq, u.Missed, len(u.Tasks))
		time.Sleep(700 * time.Millisecond)
	}
	// Six reads 0.7s apart: some 35 ticks of 100ms went without an update.
	if missed < 10 {
		t.Errorf("the slow client was told it missed %d updates (%d while they were built), want 10 or more", missed, building)
	}
}
