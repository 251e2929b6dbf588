package recording

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// bigRecording records n updates of tasks goroutines in which a tenth
// change at each update (the watch stream sends only those), keyframes as
// the writer makes them by default.
func bigRecording(b *testing.B, n, tasks int) []byte {
	all := make([]api.Task, tasks)
	for i := range all {
		all[i] = testTask(int64(i+1), int64(i%1000)*1e6)
		all[i].Labels = map[string]string{"workload": "pool", "role": fmt.Sprintf("worker-%d", i%13)}
		all[i].CreatedBy = api.Frame{Function: "example.com/pool.New", File: "/src/pool/pool.go", Line: 20}
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Target: "x", Started: t0, IntervalNS: 1e9, WindowNS: 5e9})
	if err != nil {
		b.Fatal(err)
	}
	changed := make([]api.Task, 0, tasks/10)
	for k := range n {
		u := api.Update{Seq: int64(k + 1), Time: t0.Add(time.Duration(k) * time.Second), WindowNS: 5e9, Source: "trace+dump"}
		if k == 0 {
			u.Full, u.Tasks = true, all
		} else {
			changed = changed[:0]
			for i := k % 10; i < tasks; i += 10 {
				all[i].Stats.BusyNS += 1e6
				all[i].Stats.Polls++
				changed = append(changed, all[i])
			}
			u.Tasks = changed
		}
		if err := w.Update(u.Time, u); err != nil {
			b.Fatal(err)
		}
	}
	w.Close(t0.Add(time.Hour), "duration")
	return buf.Bytes()
}

// BenchmarkReplay measures a player on a recording of 100,000 tasks and 90
// updates: indexing the file, the first look at its last update (cold), a
// step back and a step forward, and a jump to a random update.
func BenchmarkReplay(b *testing.B) {
	const tasks, n = 100_000, 90
	start := time.Now()
	data := bigRecording(b, n, tasks)
	b.Logf("recording: %d updates of %d tasks, %.1f MB, written in %v", n, tasks, float64(len(data))/1e6, time.Since(start).Round(time.Millisecond))
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
	at := func(b *testing.B, p *Player, k int) {
		if _, err := p.At(k); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("last-cold", func(b *testing.B) {
		r := open(b, data)
		for b.Loop() {
			p := NewPlayer(r)
			at(b, p, n-1)
		}
	})
	b.Run("step-forward", func(b *testing.B) {
		p := NewPlayer(open(b, data))
		k := 0
		for b.Loop() {
			at(b, p, k%n)
			k++
		}
	})
	b.Run("step-back", func(b *testing.B) {
		p := NewPlayer(open(b, data))
		at(b, p, n-1)
		k := n - 1
		for b.Loop() {
			k--
			if k < 0 {
				k = n - 1
			}
			at(b, p, k)
		}
	})
	b.Run("jump", func(b *testing.B) {
		p := NewPlayer(open(b, data))
		k := 0
		for b.Loop() {
			k = (k*7919 + 13) % n
			at(b, p, k)
		}
	})
}
