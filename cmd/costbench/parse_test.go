//go:build linux

package main

import (
	"strings"
	"testing"
	"testing/iotest"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

func TestCountWriterCountsDumpHeaders(t *testing.T) {
	dump := "goroutine 1 [running]:\nmain.main()\n\ngoroutine 7 [chan receive] {workload: parked}:\nnot goroutine here\n  goroutine 3\ngoroutine 9 [select]:\n"
	var w countWriter
	// One byte at a time: headers cut across writes still count.
	if _, err := readAllInto(&w, iotest.OneByteReader(strings.NewReader(dump))); err != nil {
		t.Fatal(err)
	}
	if w.goroutines != 3 || w.n != int64(len(dump)) {
		t.Errorf("goroutines %d, bytes %d: want 3 and %d", w.goroutines, w.n, len(dump))
	}
}

func readAllInto(w *countWriter, r interface{ Read([]byte) (int, error) }) (int64, error) {
	buf := make([]byte, 1)
	var n int64
	for {
		k, err := r.Read(buf)
		w.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestWatcherFollowsEvents(t *testing.T) {
	big := strings.Repeat("x", 3<<20) // longer than the reader's buffer
	stream := "event: update\ndata: {\"seq\":1,\"time\":\"t\",\"full\":true,\"window_ns\":4000000000,\"source\":\"trace+dump\",\"tasks\":[\"" + big + "\"],\"observed_ns\":1250000000}\n\n" +
		"event: error\ndata: {\"error\":\"building the snapshot: slow\"}\n\n" +
		"event: update\ndata: {\"seq\":2,\"time\":\"t\",\"window_ns\":4000000000,\"tasks\":[]}\n\n"
	w := &watcher{}
	err := w.follow(strings.NewReader(stream))
	if err == nil || !strings.Contains(err.Error(), "closed the stream") {
		t.Errorf("follow: %v, want the stream closed", err)
	}
	if len(w.updates) != 2 {
		t.Fatalf("%d updates, want 2", len(w.updates))
	}
	if first := w.updates[0]; !first.full || first.source != "trace+dump" || first.time != "t" || first.traced != 0.25 ||
		first.bytes != len(`{"seq":1,"time":"t","full":true,"window_ns":4000000000,"source":"trace+dump","tasks":["`)+len(big)+len(`"],"observed_ns":1250000000}`) {
		t.Errorf("first update: full %v, source %q, traced %.3g, %d bytes", first.full, first.source, first.traced, first.bytes)
	}
	// Without observed_ns, the whole window was traced: 4 s of the 5 s asked.
	if second := w.updates[1]; second.full || second.traced != 0.8 || second.bytes != len(`{"seq":2,"time":"t","window_ns":4000000000,"tasks":[]}`) {
		t.Errorf("second update: full %v, traced %.3g, %d bytes", second.full, second.traced, second.bytes)
	}
	if w.bytes != int64(len(stream)) || !strings.Contains(w.lastErr, "slow") {
		t.Errorf("stream bytes %d (want %d), last error %q", w.bytes, len(stream), w.lastErr)
	}
}

func TestPausesBetween(t *testing.T) {
	r := target.Ready{PauseBucketsGC: []float64{0, 1e-6, 1e-3, 1.7976931348623157e308}, PauseBucketsOther: []float64{0, 1e-6, 1e-3, 1.7976931348623157e308}}
	a := target.Stat{PausesGC: []uint64{5, 1, 0}, PauseOther: []uint64{0, 0, 0}}
	b := target.Stat{PausesGC: []uint64{7, 1, 0}, PauseOther: []uint64{0, 0, 1}}
	p := pausesBetween(r, a, b)
	if p.count != 3 || p.longest != 1e-3 {
		t.Errorf("pauses %+v: want 3, the longest at least 1ms (the last bucket has no upper bound)", p)
	}
	if p := pausesBetween(r, a, a); p.count != 0 || p.longest != 0 {
		t.Errorf("no change: %+v", p)
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int{"10000": 10000, "10k": 10000, "100K": 100000, "1M": 1000000} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5", "ten", "11M"} {
		if _, err := parseCount(in); err == nil {
			t.Errorf("parseCount(%q): no error", in)
		}
	}
}
