package diagnose_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// unproven diagnoses the collector's snapshots as a target without the
// goroutineleak profile would be (Go 1.26, a gops agent): no leak marks.
type unproven struct {
	col *inproc.Collector
	eng *diagnose.Engine
}

func (u unproven) observe(t *testing.T, ctx context.Context) []api.Finding {
	t.Helper()
	s, err := u.col.Snapshot(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := *s
	c.Tasks = append([]api.Task(nil), s.Tasks...)
	for i := range c.Tasks {
		c.Tasks[i].Leaked = false
	}
	c.Process.Leaked = -1
	return u.eng.Observe(diagnose.Input{Snapshot: &c, Stack: u.col.StackOf, StretchStack: u.col.StretchStackOf})
}

// A real net/http server on loopback with keep-alive clients that went
// idle raises nothing without the leak profile, however long they rest;
// one request whose handler leaves a goroutine blocked in a send (a leak
// that happens once and never grows) is then a suspect at the send.
func TestIdleHTTPServerAndAOneOffLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("observes a server for seconds")
	}
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) {
		reply := make(chan int)
		go func() {
			select { // the one-off leak
			case reply <- 42:
			case <-release: // only so the test can end it
			}
		}()
		io.WriteString(w, "gave up waiting")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	defer close(release)
	clients := make([]*http.Client, 4)
	for i := range clients {
		tr := &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr}
		for range 3 {
			resp, err := clients[i].Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	col, err := inproc.NewCollector(inproc.CollectorOptions{TraceMinAge: 2 * time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	// A short stuck_for: resting connections get more time to be taken
	// for leaks than the default gives them.
	eng, err := diagnose.New(diagnose.Config{Thresholds: map[string]string{"leak-suspect.stuck_for": "3s"}})
	if err != nil {
		t.Fatal(err)
	}
	u := unproven{col, eng}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Idle for three times stuck_for: nothing.
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if fs := u.observe(t, ctx); len(fs) != 0 {
			t.Fatalf("an idle server with keep-alive connections: %v, want nothing", titles(fs))
		}
	}

	// The leak, over one of the kept-alive connections.
	resp, err := clients[0].Get("http://" + ln.Addr().String() + "/leak")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := lineOf(t, "realhttp_test.go", "select { // the one-off leak")
	var last []api.Finding
	for ctx.Err() == nil {
		last = u.observe(t, ctx)
		for _, f := range last {
			if f.Rule != "leak-suspect" {
				continue
			}
			at := false
			for _, s := range f.Evidence.Sites {
				at = at || strings.HasSuffix(s.File, "realhttp_test.go") && s.Line == want
			}
			if !at || f.Severity != diagnose.Info || len(f.Evidence.Tasks) != 1 {
				t.Fatalf("suspect %q at %v (%s), want the one goroutine at line %d, as info", f.Title, f.Evidence.Sites, f.Severity, want)
			}
			if len(last) != 1 {
				t.Errorf("findings %v, want the suspect alone", titles(last))
			}
			t.Logf("%s", f.Title)
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("no suspect for the one-off leak within 90s; findings: %v", titles(last))
}
