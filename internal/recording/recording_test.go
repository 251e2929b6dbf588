package recording

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

var t0 = time.Date(2026, 11, 27, 17, 2, 3, 0, time.FixedZone("CET", 3600))

func testTask(id int64, busy int64) api.Task {
	return api.Task{
		ID: id, Name: fmt.Sprintf("pool/worker-%d", id%7), State: []string{"waiting", "running", "runnable"}[id%3],
		Labels:     map[string]string{"workload": "pool"},
		WaitReason: "chan receive",
		Location:   api.Frame{Function: "example.com/pool.work", File: "/src/pool.go", Line: int(id % 50)},
		Stats:      api.TaskStats{TotalNS: 5e9, BusyNS: busy, IdleNS: 5e9 - busy, Polls: busy / 1e6},
	}
}

// stream makes n snapshots of tasks that come, change and go, and the
// updates a watch stream would send for them.
func stream(n, tasks int) ([]api.Snapshot, []api.Update) {
	var snaps []api.Snapshot
	var ups []api.Update
	var prev *api.Snapshot
	for i := range n {
		s := api.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), WindowNS: 5e9, Source: "trace+dump",
			Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2, Goroutines: int64(tasks)}}
		// Tasks i..i+tasks exist at snapshot i; a tenth of them change.
		for id := int64(i + 1); id <= int64(i+tasks); id++ {
			busy := int64(1e6)
			if id%10 == int64(i%10) {
				busy = int64(i+1) * 1e6
			}
			s.Tasks = append(s.Tasks, testTask(id, busy))
		}
		s.Sites = []api.Site{{Reason: "chan receive", Waiting: i}}
		u := api.Diff(prev, &s)
		u.Seq = int64(i + 1)
		snaps = append(snaps, s)
		ups = append(ups, u)
		prev = &snaps[len(snaps)-1]
	}
	return snaps, ups
}

// write records ups, with a connection gap before update gapAt (if > 0).
func write(t testing.TB, ups []api.Update, keyEvery, gapAt int, end bool) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, Header{Target: "127.0.0.1:7777", Started: t0, IntervalNS: 1e9, WindowNS: 5e9, KeyframeEvery: keyEvery})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range ups {
		at := t0.Add(time.Duration(i) * time.Second)
		if i == gapAt && gapAt > 0 {
			w.Conn(at.Add(-900*time.Millisecond), Conn{State: ConnDown, Error: "connection refused"})
			w.Conn(at, Conn{State: ConnUp, DownNS: 3e9, Lost: 3})
		}
		if err := w.Update(at, u); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		if err := w.Close(t0.Add(time.Hour), "interrupted"); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func open(t testing.TB, b []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameTasks(t *testing.T, what string, got, want []api.Task) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %d tasks, want %d (first got %+v, want %+v)", what, len(got), len(want), got[0], want[0])
	}
}

func TestRoundTrip(t *testing.T) {
	snaps, ups := stream(20, 50)
	b := write(t, ups, 5, 7, true)
	r := open(t, b)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	h := r.Header
	if h.Format != Format || h.Version != 1 || h.Target != "127.0.0.1:7777" || !h.Started.Equal(t0) || h.IntervalNS != 1e9 || h.WindowNS != 5e9 || h.KeyframeEvery != 5 {
		t.Errorf("header %+v", h)
	}
	// 20 updates, 2 conn lines and the end.
	if len(r.Entries) != 23 {
		t.Fatalf("%d entries, want 23", len(r.Entries))
	}
	var fulls []int
	k := 0
	for _, m := range r.Entries {
		if m.Kind == KindUpdate {
			if m.Full {
				fulls = append(fulls, k)
			}
			k++
		}
	}
	// The first, then every 5th update after a full one.
	if want := []int{0, 5, 10, 15}; !reflect.DeepEqual(fulls, want) {
		t.Errorf("full updates at %v, want %v", fulls, want)
	}
	if e, ok := r.Ended(); !ok || e.Updates != 20 || e.Reason != "interrupted" {
		t.Errorf("ended %+v %v", e, ok)
	}

	p := NewPlayer(r)
	if p.Len() != 20 {
		t.Fatalf("Len %d", p.Len())
	}
	for k := range 20 {
		s, err := p.At(k)
		if err != nil {
			t.Fatal(err)
		}
		sameTasks(t, fmt.Sprintf("update %d", k+1), s.Tasks, snaps[k].Tasks)
		if !s.Time.Equal(snaps[k].Time) || s.Sites[0].Waiting != k || s.Target != "127.0.0.1:7777" {
			t.Errorf("update %d: time %v sites %+v target %q", k+1, s.Time, s.Sites, s.Target)
		}
	}
	// Tasks with the same labels share one map.
	last, _ := p.At(19)
	if a, b := reflect.ValueOf(last.Tasks[0].Labels).UnsafePointer(), reflect.ValueOf(last.Tasks[len(last.Tasks)-1].Labels).UnsafePointer(); a != b {
		t.Error("two tasks with the same labels have a map each")
	}
	ev, err := p.Events(7)
	if err != nil || len(ev) != 2 || ev[0].Conn.State != ConnDown || ev[0].Conn.Error != "connection refused" || ev[1].Conn.Lost != 3 {
		t.Errorf("events before update 8: %+v %v", ev, err)
	}
	if ev, _ := p.Events(20); len(ev) != 1 || ev[0].Kind != KindEnd {
		t.Errorf("events after the last update: %+v", ev)
	}

	// zcat reads it as JSON lines.
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	if len(lines) != 24 || !strings.HasPrefix(lines[0], `{"format":"inspectd-recording","version":1,`) || !strings.HasPrefix(lines[1], `{"kind":"update"`) {
		t.Errorf("as gzip: %d lines, starting %.80q", len(lines), lines[0])
	}

	// So does a plain or re-gzip'd copy of those lines.
	for name, data := range map[string][]byte{"plain": all, "gzip": gz(all)} {
		r := open(t, data)
		if r.Err != nil || len(r.Entries) != 23 {
			t.Fatalf("%s: %d entries, err %v", name, len(r.Entries), r.Err)
		}
		p := NewPlayer(r)
		s, err := p.At(19)
		if err != nil {
			t.Fatal(err)
		}
		sameTasks(t, name+": last", s.Tasks, snaps[19].Tasks)
	}
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// TestSeekEverywhere moves the player around and compares with the
// snapshots, whichever start it picks.
func TestSeekEverywhere(t *testing.T) {
	snaps, ups := stream(60, 30)
	for _, keyEvery := range []int{-1, 7} {
		p := NewPlayer(open(t, write(t, ups, keyEvery, 0, true)))
		p.SetCheckpointBudget(30 * 3) // three checkpoints: they thin out
		for _, k := range []int{59, 0, 30, 29, 28, 45, 3, 59, 58, 57, 10, 11, 12, 40} {
			s, err := p.At(k)
			if err != nil {
				t.Fatal(err)
			}
			sameTasks(t, fmt.Sprintf("keyframes %d: update %d", keyEvery, k+1), s.Tasks, snaps[k].Tasks)
		}
		if len(p.cps)*30 > 90 {
			t.Errorf("%d checkpoints over the budget", len(p.cps))
		}
	}
	// Stepping back undoes updates: nothing to decode.
	p := NewPlayer(open(t, write(t, ups, -1, 0, true)))
	p.At(59)
	p.Decoded = 0
	for k := 58; k >= 40; k-- {
		s, _ := p.At(k)
		sameTasks(t, fmt.Sprintf("undo to update %d", k+1), s.Tasks, snaps[k].Tasks)
	}
	if p.Decoded != 0 {
		t.Errorf("19 steps back decoded %d lines; want none (undo)", p.Decoded)
	}
	// Beyond what it can undo, checkpoints bound the lines to decode.
	p = NewPlayer(open(t, write(t, ups, -1, 0, true)))
	p.undoMaxUpdates = 3
	p.At(59)
	p.Decoded = 0
	for k := 58; k >= 40; k-- {
		s, _ := p.At(k)
		sameTasks(t, fmt.Sprintf("back to update %d", k+1), s.Tasks, snaps[k].Tasks)
	}
	if p.Decoded > 19*8 {
		t.Errorf("19 steps back decoded %d lines; checkpoints should bound each to 8", p.Decoded)
	}
}

func TestTruncated(t *testing.T) {
	snaps, ups := stream(10, 20)
	b := write(t, ups, 0, 0, true)
	full := open(t, b)
	// Cut inside each line: the lines before it stay usable.
	var starts []int64
	starts = append(starts, 0)
	starts = append(starts, full.offs...)
	for i := 1; i < len(starts); i++ {
		cut := b[:starts[i]+(full.lens[i-1])/2]
		r, err := NewReader(bytes.NewReader(cut), int64(len(cut)))
		if err != nil {
			t.Fatal(err)
		}
		var le *LineError
		if !errors.As(r.Err, &le) || le.Line != i+1 || !errors.Is(r.Err, ErrCut) {
			t.Fatalf("cut in line %d: err %v", i+1, r.Err)
		}
		if !strings.Contains(r.Err.Error(), fmt.Sprintf("line %d: cut short", i+1)) {
			t.Errorf("message %q", r.Err)
		}
		p := NewPlayer(r)
		if want := min(i-1, 10); p.Len() != want {
			t.Fatalf("cut in line %d: %d updates usable, want %d", i+1, p.Len(), want)
		}
		if p.Len() > 0 {
			s, err := p.At(p.Len() - 1)
			if err != nil {
				t.Fatal(err)
			}
			sameTasks(t, "before the cut", s.Tasks, snaps[p.Len()-1].Tasks)
		}
		if _, ok := r.Ended(); ok {
			t.Errorf("cut in line %d: says it ended cleanly", i+1)
		}
	}
	// Cut inside the header.
	_, err := NewReader(bytes.NewReader(b[:20]), 20)
	if err == nil || !strings.Contains(err.Error(), "line 1: cut short") {
		t.Errorf("cut header: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	snaps, ups := stream(10, 20)
	b := write(t, ups, -1, 0, true)
	r := open(t, b)

	// A flipped byte inside line 5's compressed data: found when decoded.
	bad := bytes.Clone(b)
	bad[r.offs[3]+r.lens[3]-12] ^= 0xff
	r2 := open(t, bad)
	if r2.Err != nil {
		t.Fatalf("index: %v", r2.Err)
	}
	p := NewPlayer(r2)
	_, err := p.At(9)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 5 || !strings.Contains(err.Error(), "line 5: corrupt") {
		t.Fatalf("At(9): %v", err)
	}
	if p.Len() != 3 || p.Err == nil {
		t.Errorf("after the corrupt line: %d updates usable, Err %v", p.Len(), p.Err)
	}
	s, err := p.At(2)
	if err != nil {
		t.Fatal(err)
	}
	sameTasks(t, "before the corrupt line", s.Tasks, snaps[2].Tasks)

	// Garbage where line 4 starts: indexing stops there.
	bad = bytes.Clone(b)
	copy(bad[r.offs[2]:], "garbage!")
	r3 := open(t, bad)
	if r3.Err == nil || !strings.Contains(r3.Err.Error(), "line 4: corrupt: not the start of a gzip member") || len(r3.Entries) != 2 {
		t.Errorf("garbage: %d entries, %v", len(r3.Entries), r3.Err)
	}

	// A plain line that is not JSON.
	plain := []byte(`{"format":"inspectd-recording","version":1,"target":"x"}` + "\n" + `{"kind":"update","time":"2026-11-27T17:02:03Z","update":{"full":true,"tasks":[]}}` + "\n{oops\n")
	r4 := open(t, plain)
	if r4.Err == nil || !strings.Contains(r4.Err.Error(), "line 3: bad JSON") || len(r4.Entries) != 1 {
		t.Errorf("plain: %d entries, %v", len(r4.Entries), r4.Err)
	}
}

func TestNotARecording(t *testing.T) {
	hdr := func(v int) []byte {
		return []byte(fmt.Sprintf(`{"format":"inspectd-recording","version":%d}`+"\n", v))
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":          {nil, "empty file"},
		"dump":           {[]byte("goroutine 1 [running]:\nmain.main()\n"), "not an inspectd recording"},
		"json":           {[]byte(`{"format":"other"}` + "\n"), "not an inspectd recording"},
		"gzip":           {gz([]byte("hello\n")), "not an inspectd recording"},
		"version 2":      {hdr(2), "recording format version 2; this inspect-cli reads version 1"},
		"version 2 gzip": {gz(hdr(2)), "recording format version 2"},
	} {
		_, err := NewReader(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	var b bytes.Buffer
	if _, err := NewWriter(&b, Header{}); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{hdr(1), b.Bytes()} {
		if r := open(t, data); len(r.Entries) != 0 || r.Err != nil || NewPlayer(r).Len() != 0 {
			t.Errorf("header only: %+v", r)
		}
	}
}

func TestOpenAndIsRecording(t *testing.T) {
	dir := t.TempDir()
	_, ups := stream(3, 5)
	rec := filepath.Join(dir, "rec.jsonl.gz")
	os.WriteFile(rec, write(t, ups, 0, 0, false), 0o644)
	dump := filepath.Join(dir, "dump.txt")
	os.WriteFile(dump, []byte("goroutine 1 [running]:\nmain.main()\n"), 0o644)
	plain := filepath.Join(dir, "plain.jsonl")
	os.WriteFile(plain, []byte(`{"format":"inspectd-recording","version":1}`+"\n"), 0o644)
	for file, want := range map[string]bool{rec: true, dump: false, plain: true, dir: false, filepath.Join(dir, "none"): false} {
		if got := IsRecording(file); got != want {
			t.Errorf("IsRecording(%s) = %v", file, got)
		}
	}
	r, err := Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Entries) != 3 {
		t.Errorf("%d entries", len(r.Entries))
	}
	if _, ok := r.Ended(); ok {
		t.Error("a recording without its end line says it ended")
	}
	if _, err := Open(dump); err == nil || !strings.Contains(err.Error(), "dump.txt: not an inspectd recording") {
		t.Errorf("Open(dump): %v", err)
	}
}

// FuzzReader feeds damaged recordings to the reader: it must not panic,
// must name the line of any damage, and every entry it indexed before the
// damage must decode or fail with its line.
func FuzzReader(f *testing.F) {
	_, ups := stream(4, 3)
	good := write(f, ups, 2, 2, true)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:len(good)-3])
	zr, _ := gzip.NewReader(bytes.NewReader(good))
	plain, _ := io.ReadAll(zr)
	f.Add(plain)
	f.Add(plain[:len(plain)/3])
	f.Add(gz(plain)[:40])
	f.Add([]byte(`{"format":"inspectd-recording","version":1}` + "\n" + `{"kind":"update"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if r.Err != nil {
			var le *LineError
			if !errors.As(r.Err, &le) || le.Line < 2 || !strings.HasPrefix(r.Err.Error(), fmt.Sprintf("line %d: ", le.Line)) {
				t.Fatalf("indexing error without its line: %v", r.Err)
			}
		}
		for i := range r.Entries {
			if _, err := r.Entry(i); err != nil {
				var le *LineError
				if !errors.As(err, &le) || le.Line != i+2 {
					t.Fatalf("entry %d: error without its line: %v", i, err)
				}
			}
		}
		p := NewPlayer(r)
		for k := p.Len() - 1; k >= 0; k-- {
			if k >= p.Len() {
				continue // a corrupt line after it ended the usable part
			}
			if _, err := p.At(k); err != nil {
				if !strings.HasPrefix(err.Error(), "line ") {
					t.Fatalf("At(%d): %v", k, err)
				}
				if p.Len() > k {
					t.Fatalf("At(%d) failed, yet %d updates are said usable", k, p.Len())
				}
			}
		}
	})
}
