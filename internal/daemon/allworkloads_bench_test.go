package daemon

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkAllWorkloads: the daemon running every workload of the lab at
// once (`--workloads all`), in its default configuration otherwise, beside
// the same daemon with no workload, in the same run. For a minute after a
// 10 s warm-up it asks /healthz every 100 ms and follows three watch
// streams at the default interval of 1 s, as three `inspect-cli top` would.
// It reports /healthz's median, p99 and slowest answer (target: 100 ms) and
// the longest gap between two updates of any watcher (target: 2 s, twice
// the interval), and logs the load average before and after.
//
//	go test -run '^$' -bench AllWorkloads -benchtime 1x ./internal/daemon
func BenchmarkAllWorkloads(b *testing.B) {
	for _, workloads := range []string{"none", "all"} {
		b.Run("workloads="+workloads, func(b *testing.B) {
			for range b.N {
				measureDaemon(b, workloads)
			}
		})
	}
}

func measureDaemon(b *testing.B, workloads string) {
	load := func() string {
		l, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(l))[:3], " ")
	}
	loadBefore := load()
	p := startProc(b, b.TempDir(), "--workloads", workloads, "--gops-addr", "off")
	base := "http://" + p.addr
	time.Sleep(10 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var healthz []time.Duration
	failed := 0
	wg.Go(func() {
		for ctx.Err() == nil {
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
			resp, err := http.DefaultClient.Do(req)
			took := time.Since(t0)
			if err != nil {
				if ctx.Err() == nil {
					failed++
				}
				continue
			}
			resp.Body.Close()
			healthz = append(healthz, took)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	var gaps []time.Duration
	updates := make([]int, 3)
	for i := range updates {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/watch?interval=1s&limit=50", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Errorf("watch: %v", err)
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 256<<20)
			last := time.Now()
			for sc.Scan() {
				if !strings.HasPrefix(sc.Text(), "event: update") {
					continue
				}
				now := time.Now()
				mu.Lock()
				if updates[i] > 0 {
					gaps = append(gaps, now.Sub(last))
				}
				updates[i]++
				mu.Unlock()
				last = now
			}
		})
	}
	wg.Wait()
	if len(healthz) == 0 || len(gaps) == 0 {
		b.Fatalf("no measurement: %d /healthz answers (%d failed), updates %v", len(healthz), failed, updates)
	}
	slices.Sort(healthz)
	slices.Sort(gaps)
	pct := func(d []time.Duration, q float64) time.Duration { return d[min(len(d)-1, int(float64(len(d))*q))] }
	b.Logf("--workloads %s: /healthz: %d answers, %d failed, median %v, p99 %v, slowest %v; watchers: %v updates, gaps median %v, longest %v; load average %s before, %s after",
		workloads, len(healthz), failed, pct(healthz, 0.5).Round(time.Millisecond), pct(healthz, 0.99).Round(time.Millisecond),
		healthz[len(healthz)-1].Round(time.Millisecond), updates, pct(gaps, 0.5).Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond),
		loadBefore, load())
	b.ReportMetric(pct(healthz, 0.5).Seconds()*1e3, "healthz-p50-ms")
	b.ReportMetric(pct(healthz, 0.99).Seconds()*1e3, "healthz-p99-ms")
	b.ReportMetric(healthz[len(healthz)-1].Seconds()*1e3, "healthz-max-ms")
	b.ReportMetric(gaps[len(gaps)-1].Seconds()*1e3, "update-gap-max-ms")
}
