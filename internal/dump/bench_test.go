package dump_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"

	"github.com/inspectd/inspectd/internal/dump"
)

// bigDump renumbers and repeats the goroutines of the three fixtures (a third
// of them with Go 1.27 labels, a third with Go 1.26 labels) to about size
// bytes. It returns the dump and its goroutine count.
func bigDump(tb testing.TB, size int) ([]byte, int) {
	return bigDumpLabels(tb, size, false)
}

// bigDumpLabels is bigDump; with unique, every labelled goroutine gets a
// label of its own (req: <n>), so that no two label sets are the same.
func bigDumpLabels(tb testing.TB, size int, unique bool) ([]byte, int) {
	var blocks [][]byte
	for _, name := range []string{fixture127, fixture126, fixture126TL} {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, blk := range bytes.Split(bytes.TrimSpace(b), []byte("\n\n")) {
			// drop "goroutine N" to renumber
			blocks = append(blocks, blk[bytes.IndexByte(blk[len("goroutine "):], ' ')+len("goroutine "):])
		}
	}
	out := make([]byte, 0, size+100<<10)
	n := 0
	for len(out) < size {
		for _, blk := range blocks {
			if n > 0 {
				out = append(out, '\n')
			}
			n++
			out = append(out, "goroutine "...)
			out = strconv.AppendInt(out, int64(n+1), 10)
			if i := bytes.Index(blk, []byte("] {")); unique && i >= 0 {
				out = append(out, blk[:i+3]...)
				out = append(out, "req: "...)
				out = strconv.AppendInt(out, int64(n), 10)
				out = append(out, ", "...)
				out = append(out, blk[i+3:]...)
			} else if i := bytes.Index(blk, []byte("labels:{")); unique && i >= 0 {
				out = append(out, blk[:i+8]...)
				out = append(out, `"req": "`...)
				out = strconv.AppendInt(out, int64(n), 10)
				out = append(out, `", `...)
				out = append(out, blk[i+8:]...)
			} else {
				out = append(out, blk...)
			}
			out = append(out, '\n')
		}
	}
	return out, n
}

// benchParse runs parse over dump (n goroutines) and reports throughput,
// time, allocated bytes and allocations per goroutine, and the heap the
// result keeps alive per goroutine.
func benchParse(b *testing.B, text []byte, n int, parse func([]byte) ([]dump.Goroutine, error)) {
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var gs []dump.Goroutine
	for b.Loop() {
		var err error
		gs, err = parse(text)
		if err != nil || len(gs) != n {
			b.Fatalf("%d goroutines (want %d), %v", len(gs), n, err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	per := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/goroutine")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/goroutine")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/goroutine")

	// What the result keeps alive.
	runtime.GC()
	runtime.ReadMemStats(&before)
	runtime.KeepAlive(gs)
	gs = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(before.HeapAlloc)-int64(after.HeapAlloc))/float64(n), "live-B/goroutine")
}

// BenchmarkParseDumpBytes parses a ~50 MB dump made of the fixtures (2/3 of
// the goroutines with labelled headers).
//
//	go test -run x -bench ParseDump -benchtime 20x ./internal/dump
func BenchmarkParseDumpBytes(b *testing.B) {
	text, n := bigDump(b, 50<<20)
	benchParse(b, text, n, dump.ParseDumpBytes)
}

// BenchmarkParseDumpUniqueLabels is BenchmarkParseDumpBytes with a label set
// of its own on every labelled goroutine (the worst case for label sharing).
func BenchmarkParseDumpUniqueLabels(b *testing.B) {
	text, n := bigDumpLabels(b, 50<<20, true)
	benchParse(b, text, n, dump.ParseDumpBytes)
}

// BenchmarkParseDumpReader is BenchmarkParseDumpBytes through the io.Reader API.
func BenchmarkParseDumpReader(b *testing.B) {
	text, n := bigDump(b, 50<<20)
	benchParse(b, text, n, func(d []byte) ([]dump.Goroutine, error) {
		return dump.ParseDump(bytes.NewReader(d))
	})
}

// BenchmarkParseLiveDump parses runtime.Stack of this process with 100k parked
// goroutines, half of them labelled, in a few states.
func BenchmarkParseLiveDump(b *testing.B) {
	const count = 100_000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	mu.Lock()
	for i := range count {
		wg.Add(1)
		work := func(context.Context) {
			defer wg.Done()
			switch i % 4 {
			case 0:
				<-stop
			case 1:
				select {
				case <-stop:
				case <-make(chan int):
				}
			case 2:
				mu.Lock()
				mu.Unlock()
			case 3:
				parkDeep(5, stop)
			}
		}
		if i%2 == 0 {
			go pprof.Do(context.Background(), pprof.Labels("workload", "bench", "worker", strconv.Itoa(i%16)), work)
		} else {
			go work(context.Background())
		}
	}
	defer func() {
		close(stop)
		mu.Unlock()
		wg.Wait()
	}()
	var text []byte
	var gs []dump.Goroutine
	for range 50 {
		text = stackAll()
		gs, _ = dump.ParseDumpBytes(text)
		if len(gs) >= count {
			break
		}
	}
	n := len(gs)
	b.Logf("dump of %d goroutines, %d bytes (%d bytes/goroutine)", n, len(text), len(text)/max(n, 1))
	benchParse(b, text, n, dump.ParseDumpBytes)
}

//go:noinline
func parkDeep(n int, stop chan struct{}) {
	if n == 0 {
		<-stop
		return
	}
	parkDeep(n-1, stop)
}

func TestBigDumpParses(t *testing.T) {
	text, n := bigDump(t, 1<<20)
	gs := mustParseDump(t, text)
	if len(gs) != n {
		t.Fatalf("%d goroutines, want %d", len(gs), n)
	}
	labelled := 0
	for _, g := range gs {
		if g.Labels != nil {
			labelled++
		}
	}
	if want := n / 3 * 52 / 108 * 2; labelled < want*9/10 {
		t.Errorf("%d labelled goroutines, want about %d", labelled, want)
	}
	text, n = bigDumpLabels(t, 1<<20, true)
	gs = mustParseDump(t, text)
	seen := map[string]bool{}
	for _, g := range gs {
		if g.Labels != nil {
			if seen[g.Labels["req"]] {
				t.Fatalf("goroutine %d: label req=%q seen twice", g.ID, g.Labels["req"])
			}
			seen[g.Labels["req"]] = true
		}
	}
	if len(gs) != n || len(seen) != labelled {
		t.Errorf("unique labels: %d goroutines (want %d), %d labelled (want %d)", len(gs), n, len(seen), labelled)
	}
}
