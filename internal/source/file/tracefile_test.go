package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	rtrace "runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// A saved trace read as a target: whole, then stepped window by window,
// each window taking up where the last ended, until io.EOF.
func TestTraceFileSteps(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	began := time.Now()
	data := recordTrace(t, func() {
		go func() { // a sleeper: 10ms a time, all along the trace
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		time.Sleep(1600 * time.Millisecond)
	})
	took := time.Since(began)
	close(stop)
	<-done
	path := filepath.Join(t.TempDir(), "run.trace")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsTraceFile(path) {
		t.Fatalf("IsTraceFile(%s) = false", path)
	}
	tf, err := OpenTraceFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := tf
	ctx := context.Background()
	whole, err := r.Snapshot(ctx, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	total := time.Duration(whole.WindowNS)
	if total < 1500*time.Millisecond || total > took {
		t.Errorf("the whole trace covers %v, want 1.6s or more, within the %v tracing took", total, took)
	}
	if whole.Time.IsZero() || time.Since(whole.Time) > time.Minute {
		t.Errorf("snapshot time %v: want the trace's end on the wall clock", whole.Time)
	}
	if !strings.Contains(strings.Join(whole.Notes, "\n"), "the whole trace") {
		t.Errorf("notes do not say the snapshot covers the whole trace: %q", whole.Notes)
	}
	if again, _ := r.Snapshot(ctx, 500*time.Millisecond); again != whole {
		t.Error("a second snapshot of the whole trace parsed it again")
	}

	sleeperPolls := func(s *api.Snapshot) int64 {
		for _, task := range s.Tasks {
			if strings.Contains(task.CreatedBy.Function, "TestTraceFileSteps") {
				return task.Stats.Polls
			}
		}
		return -1
	}
	wholePolls := sleeperPolls(whole)
	if wholePolls < 50 {
		t.Errorf("the sleeper was scheduled %d times in the whole trace, want about 160", wholePolls)
	}
	// A busy machine stretches the trace past the 1.6s asked; the windows
	// are as many as fit it at about 500ms each.
	want := max(1, int((total+250*time.Millisecond)/(500*time.Millisecond)))

	tf.Step()
	var (
		covered time.Duration
		last    time.Time
		windows int
		polls   int64
	)
	for {
		s, err := r.Snapshot(ctx, 500*time.Millisecond)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		windows++
		w := time.Duration(s.WindowNS)
		if w < 300*time.Millisecond || w > 800*time.Millisecond {
			t.Errorf("window %d covers %v, want about 500ms", windows, w)
		}
		if !s.Time.After(last) {
			t.Errorf("window %d ends at %v, not after the last (%v)", windows, s.Time, last)
		}
		last = s.Time
		covered += w
		// The sleeper wakes all along the trace: every window sees it,
		// and the windows' polls add up to the whole trace's.
		p := sleeperPolls(s)
		if p < 1 {
			t.Errorf("window %d: the sleeper was scheduled %d times, want some", windows, p)
		}
		polls += p
		if windows > 10 {
			t.Fatal("the windows never end")
		}
	}
	if windows != want {
		t.Errorf("%d windows of about 500ms in a %v trace, want %d", windows, total, want)
	}
	if d := polls - wholePolls; d < -int64(windows) || d > int64(windows) {
		t.Errorf("the windows count %d polls of the sleeper, the whole trace %d", polls, wholePolls)
	}
	if d := covered - total; d < -10*time.Millisecond || d > 10*time.Millisecond {
		t.Errorf("the windows cover %v of a %v trace", covered, total)
	}
	if !last.Equal(whole.Time) {
		t.Errorf("the last window ends at %v, the trace at %v", last, whole.Time)
	}
}

func TestTraceFileBad(t *testing.T) {
	dir := t.TempDir()
	notTrace := filepath.Join(dir, "dump.txt")
	os.WriteFile(notTrace, []byte("goroutine 1 [running]:\nmain.main()\n"), 0o644)
	if IsTraceFile(notTrace) {
		t.Error("a dump taken for a trace")
	}
	if _, err := OpenTraceFile(notTrace); err == nil || !strings.Contains(err.Error(), "not an execution trace") {
		t.Errorf("OpenTraceFile of a dump: %v", err)
	}
	garbage := filepath.Join(dir, "bad.trace")
	os.WriteFile(garbage, []byte("go 1.26 trace\x00\x00\x00 and then garbage"), 0o644)
	tf, err := OpenTraceFile(garbage)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tf.Snapshot(context.Background(), time.Second)
	if err == nil || !strings.Contains(err.Error(), "not a readable execution trace") {
		t.Errorf("a corrupt trace: %v", err)
	}
}

// recordTrace runs body under runtime/trace and returns the trace.
func recordTrace(t testing.TB, body func()) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Fatalf("starting the tracer: %v", err)
	}
	body()
	rtrace.Stop()
	return buf.Bytes()
}
