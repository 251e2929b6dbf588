package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
)

// The daemon's own goroutines are never a finding, however its clients and
// its Pyroscope behave: a Pyroscope that accepts uploads and never answers,
// 200 snapshot requests queued at once and given up, and ten workloads
// started in a row leave the findings empty. Then SIGTERM still ends it
// cleanly.
func TestDaemonNeverReportsItself(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon for about 30s")
	}
	// A Pyroscope that reads each upload and never answers.
	hang := make(chan struct{})
	pyro := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go pyro.Serve(ln)
	defer pyro.Close()
	defer close(hang)

	p := startProc(t, t.TempDir(), "--workloads", "none", "--gops-addr", "off",
		"--pyroscope-url", "http://"+ln.Addr().String(), "--pyroscope-upload-rate", "1s",
		"--diagnose-interval", "1s")
	base := "http://" + p.addr

	// 200 snapshot requests at once, each given up after 2s; those past
	// the daemon's cap are told to come back later.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/snapshot?window=5s", nil)
			resp, err := http.DefaultClient.Do(req)
			what := "given up"
			if err == nil {
				what = resp.Status
				resp.Body.Close()
			}
			mu.Lock()
			codes[what]++
			mu.Unlock()
		})
	}
	// Ten workloads started in a row, while the requests wait.
	started := []string{"channels", "fan-in", "file-stream", "hello", "join", "pipeline", "select", "spawn", "stream", "timeout"}
	for _, name := range started {
		resp, err := http.Post(base+"/api/v1/workloads/"+name+"/start", "application/json", nil)
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("starting %s: %s", name, resp.Status)
		}
	}
	wg.Wait()
	t.Logf("the 200 requests: %v", codes)

	// The diagnosis runs every second: watch it for 15s after all that,
	// long enough for the uploads stuck on Pyroscope to pile up.
	after := time.Now()
	seen := map[string]api.Finding{}
	rounds := 0
	for time.Since(after) < 15*time.Second || rounds < 5 {
		if time.Since(after) > 2*time.Minute {
			t.Fatalf("only %d diagnoses in 2 minutes", rounds)
		}
		var fl api.FindingList
		if err := getJSON(base+"/api/v1/findings", &fl); err != nil {
			t.Fatal(err)
		}
		if fl.Time.After(after) {
			rounds++
		}
		for _, f := range fl.Findings {
			if diagnose.AtLeastWarning(f) {
				seen[f.Rule+" "+f.Title] = f
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, f := range seen {
		t.Errorf("finding %s (%s): %s; sites %+v", f.Rule, f.Severity, f.Title, f.Evidence.Sites)
	}

	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v; want status 0\n%s", err, p.log())
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("shutdown with Pyroscope hanging took %v, want under 5s", took)
	}
	if strings.Contains(p.log(), `"level":"ERROR"`) && strings.Contains(p.log(), "panic") {
		t.Errorf("a panic was logged:\n%s", p.log())
	}
}

// getJSON decodes the answer to GET url into v, coming back after a
// second while the daemon says it is busy (503), for up to 10s.
func getJSON(url string, v any) error {
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Second) {
		var err error
		if resp, err = http.Get(url); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
