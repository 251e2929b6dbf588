package daemon

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAbandonedSnapshots: 150 snapshot requests at once against a
// daemon of 10,000 goroutines, each given up after 5s, in the daemon's
// default configuration. It reports the daemon's RSS after the requests
// over before them (target: at most 3), the slowest /healthz meanwhile
// (target: 2s) and how long SIGTERM then takes to end it (target: 5s).
//
//	go test -run '^$' -bench AbandonedSnapshots -benchtime 1x ./internal/daemon
func BenchmarkAbandonedSnapshots(b *testing.B) {
	for range b.N {
		// The deadlock workload parks a pair of goroutines a millisecond,
		// up to 5,000 pairs.
		p := startProc(b, b.TempDir(), "--workloads", "deadlock", "--gops-addr", "off",
			"--param", "deadlock.every=1ms", "--param", "deadlock.max_pairs=5000")
		base := "http://" + p.addr
		for deadline := time.Now().Add(2 * time.Minute); goroutines(b, base) < 10000; time.Sleep(500 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the daemon never reached 10,000 goroutines")
			}
		}
		pid := p.cmd.Process.Pid
		before := rss(b, pid)

		stop := make(chan struct{})
		var slowest time.Duration
		var hw sync.WaitGroup
		hw.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				t0 := time.Now()
				if resp, err := http.Get(base + "/healthz"); err == nil {
					resp.Body.Close()
				}
				slowest = max(slowest, time.Since(t0))
			}
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[string]int{}
		for range 150 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/snapshot", nil)
				what := "given up"
				if resp, err := http.DefaultClient.Do(req); err == nil {
					what = resp.Status
					resp.Body.Close()
				}
				mu.Lock()
				codes[what]++
				mu.Unlock()
			})
		}
		wg.Wait()
		// What the handlers left behind, once they have seen their
		// clients go.
		time.Sleep(2 * time.Second)
		close(stop)
		hw.Wait()
		after := rss(b, pid)

		began := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		err := p.wait()
		took := time.Since(began)
		if err != nil {
			b.Errorf("exit after SIGTERM: %v", err)
		}
		b.Logf("requests: %v; RSS %d MB before, %d MB after; slowest /healthz %v; SIGTERM %v",
			codes, before>>20, after>>20, slowest.Round(time.Millisecond), took.Round(time.Millisecond))
		b.ReportMetric(float64(after)/float64(before), "rss-ratio")
		b.ReportMetric(slowest.Seconds()*1e3, "healthz-max-ms")
		b.ReportMetric(took.Seconds()*1e3, "sigterm-ms")
	}
}

// goroutines reads go_goroutines from the daemon's /metrics.
func goroutines(tb testing.TB, base string) int {
	_, body := get(tb, base+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

// rss reads a process's resident set from /proc, in bytes.
func rss(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/pid/status")
	return 0
}
