package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/probes"
)

// slowProber delays each snapshot of a real collector: the seam that makes a
// stream fall behind its interval.
type slowProber struct {
	*probes.Collector
	delay time.Duration
}

func (p slowProber) Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
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
	col, err := probes.NewCollector(probes.CollectorOptions{TraceMinAge: time.Second, CPUBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := httptest.NewServer(New(Options{Prober: slowProber{col, 350 * time.Millisecond}}))
	defer srv.Close()

	// The stream is built every 100ms but each snapshot takes 350ms: every
	// update after the first says it stands for the ones that were missed.
	us := readUpdates(t, srv.URL+"/api/v1/watch?interval=100ms&window=500ms", 3)
	if len(us) != 3 || !us[0].Full || us[0].Missed != 0 {
		t.Fatalf("updates: %d, first full=%v missed=%d", len(us), us[0].Full, us[0].Missed)
	}
	for _, u := range us[1:] {
		if u.Full || u.Missed < 2 {
			t.Errorf("update %d: full=%v missed=%d; want a diff that missed at least 2", u.Seq, u.Full, u.Missed)
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
