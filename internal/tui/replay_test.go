package tui

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/recording"
)

var rec0 = time.Date(2026, 11, 27, 17, 2, 3, 0, time.FixedZone("CET", 3600))

// testRecording records n updates 10s apart; update k (from 0) has k+3
// tasks, task 1 busy for k ms. gapBefore > 0 puts an outage before that
// update. cut drops the last bytes.
func testRecording(t *testing.T, n, gapBefore int, cut int) *recording.Player {
	t.Helper()
	var b bytes.Buffer
	w, err := recording.NewWriter(&b, recording.Header{Target: "127.0.0.1:7777", Started: rec0, IntervalNS: 10e9, WindowNS: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	var prev *api.Snapshot
	for k := range n {
		at := rec0.Add(time.Duration(k) * 10 * time.Second)
		s := &api.Snapshot{Time: at, WindowNS: 5e9, Source: "trace+dump", Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2}}
		for id := int64(1); id <= int64(k+3); id++ {
			s.Tasks = append(s.Tasks, task(id, fmt.Sprintf("worker-%d", id), "waiting", 1e6, map[string]string{"workload": "pool"}))
		}
		s.Tasks[0].Stats.BusyNS = int64(k+1) * 1e6
		u := api.Diff(prev, s)
		u.Seq = int64(k + 1)
		prev = s
		if k == gapBefore && k > 0 {
			w.Conn(at.Add(-4*time.Second), recording.Conn{State: recording.ConnDown, Error: "connection refused"})
			w.Conn(at, recording.Conn{State: recording.ConnUp, DownNS: 3e9, Lost: 3})
		}
		if err := w.Update(at, u); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(rec0.Add(time.Hour), "interrupted")
	data := b.Bytes()[:b.Len()-cut]
	r, err := recording.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return recording.NewPlayer(r)
}

func newReplay(t *testing.T, p *recording.Player, paused bool) (Model, tea.Cmd) {
	t.Helper()
	m := New(Config{Target: "rec.jsonl.gz", Window: 5 * time.Second, Replay: &Replay{File: "rec.jsonl.gz", Player: p, Paused: paused}})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 30})
	return settle(t, m, m.Init())
}

// settle runs the replay's seek commands until the state arrives, as the
// program would. It returns the command left: a playback tick (not run: the
// recording's pace is 10s), or nil. A command is a seek when the model is
// busy after making it.
func settle(t *testing.T, m Model, cmd tea.Cmd) (Model, tea.Cmd) {
	t.Helper()
	for cmd != nil && m.replay.busy {
		msg := cmd()
		if _, ok := msg.(replayStateMsg); !ok {
			t.Fatalf("unexpected message %T", msg)
		}
		m, cmd = send(t, m, msg)
	}
	return m, cmd
}

func keysSettled(t *testing.T, m Model, names ...string) Model {
	t.Helper()
	for _, n := range names {
		var cmd tea.Cmd
		m, cmd = send(t, m, press(n))
		m, _ = settle(t, m, cmd)
	}
	return m
}

func headerHas(t *testing.T, m Model, wants ...string) {
	t.Helper()
	s := screen(m)
	head := strings.Join(strings.SplitN(s, "\n", 5)[:4], "\n")
	for _, w := range wants {
		if !strings.Contains(head, w) {
			t.Errorf("header lacks %q:\n%s", w, head)
		}
	}
}

func TestReplayStepSeek(t *testing.T) {
	m, _ := newReplay(t, testRecording(t, 30, 0, 0), true)
	headerHas(t, m, "replay rec.jsonl.gz │ update 1/30 │ 2026-11-27 17:02:03 │  PAUSED  │ 1x │ target 127.0.0.1:7777 │ go1.27.3 │ GOMAXPROCS 2 │ window 5s",
		"tasks 3 (", ",/. step", "[/] ±10")
	if ids := rowIDs(screen(m)); strings.Join(ids, " ") != "1 2 3" {
		t.Errorf("rows %v", ids)
	}
	for _, c := range []struct {
		keys  []string
		wants []string
	}{
		{[]string{"."}, []string{"update 2/30", "17:02:13", "tasks 4 ("}},
		{[]string{".", ".", ","}, []string{"update 3/30", "17:02:23", "tasks 5 ("}},
		{[]string{"]"}, []string{"update 13/30", "17:04:03", "tasks 15 ("}},
		{[]string{"[", "["}, []string{"update 1/30", "tasks 3 ("}},
		{[]string{">"}, []string{"update 30/30", " END ", "tasks 32 (", "end of the recording (30 updates; stopped: interrupted)"}},
		{[]string{"]"}, []string{"update 30/30"}},
		{[]string{"<"}, []string{"update 1/30", " PAUSED "}},
		{[]string{","}, []string{"update 1/30"}},
		{[]string{":", "1", "7"}, []string{"go to update: 17█", "update 1/30"}},
		{[]string{"enter"}, []string{"update 17/30", "tasks 19 ("}},
		{[]string{":", "9", "esc"}, []string{"update 17/30"}},
		{[]string{"+"}, []string{"│ 2x │"}},
		{[]string{"-", "-"}, []string{"│ 0.5x │"}},
	} {
		m = keysSettled(t, m, c.keys...)
		headerHas(t, m, c.wants...)
	}
	// The live view's keys still work: sort, filter.
	m = keysSettled(t, m, "/", "w", "o", "r", "k", "e", "r", "-", "1", "7", "enter")
	headerHas(t, m, `filter "worker-17": 1 of 19`)
	m = keysSettled(t, m, ".")
	headerHas(t, m, "update 18/30", `filter "worker-17": 1 of 20`)
}

func TestReplayPlays(t *testing.T) {
	m, tick := newReplay(t, testRecording(t, 5, 0, 0), false)
	headerHas(t, m, "update 1/5", "▶ playing")
	if tick == nil {
		t.Fatal("playing, yet no timer to the next update")
	}
	m, cmd := send(t, m, replayTickMsg{gen: m.replay.gen})
	m, _ = settle(t, m, cmd)
	headerHas(t, m, "update 2/5", "▶ playing")

	// Pause: a tick of before the pause is ignored.
	old := m.replay.gen
	m = keysSettled(t, m, "space")
	m, cmd = send(t, m, replayTickMsg{gen: old})
	m, _ = settle(t, m, cmd)
	headerHas(t, m, "update 2/5", " PAUSED ")

	// Play to the end: it stops there; play again starts over.
	m, _ = send(t, m, press("space"))
	for range 3 {
		m, cmd = send(t, m, replayTickMsg{gen: m.replay.gen})
		m, _ = settle(t, m, cmd)
	}
	headerHas(t, m, "update 5/5", " END ")
	if m.replay.playing {
		t.Error("still playing at the end")
	}
	m = keysSettled(t, m, "space")
	headerHas(t, m, "update 1/5", "▶ playing")
}

func TestReplayGap(t *testing.T) {
	m, _ := newReplay(t, testRecording(t, 10, 5, 0), true)
	m = keysSettled(t, m, ":", "6", "enter")
	headerHas(t, m, "update 6/10", "the target went down at 17:02:49 (connection refused)", "back at 17:02:53 after 3s down; 3 updates lost")
	m = keysSettled(t, m, ".")
	if s := screen(m); strings.Contains(s, "went down") {
		t.Errorf("the outage is still shown at the next update:\n%s", s)
	}
}

func TestReplayDamaged(t *testing.T) {
	// Cut inside the end line: all the updates play, and it says so.
	m, _ := newReplay(t, testRecording(t, 10, 0, 60), true)
	m = keysSettled(t, m, ">")
	headerHas(t, m, "update 10/10", "the recording is damaged at line 12: cut short", "it plays up to update 10")
}

func TestReplayDetail(t *testing.T) {
	m, _ := newReplay(t, testRecording(t, 5, 0, 0), true)
	m = keysSettled(t, m, "enter")
	s := screen(m)
	for _, want := range []string{"task 1  worker-1  waiting", "as recorded at update 1 (2026-11-27 17:02:03)", "nothing is asked of the target",
		"over the trace window (5s) at that update:", "busy", "1ms", "polls"} {
		if !strings.Contains(s, want) {
			t.Errorf("detail lacks %q:\n%s", want, s)
		}
	}
	m = keysSettled(t, m, ".", ".")
	s = screen(m)
	if !strings.Contains(s, "as recorded at update 3") || !strings.Contains(s, "3ms") {
		t.Errorf("the detail does not follow the replay:\n%s", s)
	}
	m = keysSettled(t, m, "esc", "end", "enter")
	if s := screen(m); !strings.Contains(s, "task 5  worker-5") {
		t.Errorf("detail of the last task:\n%s", s)
	}
	m = keysSettled(t, m, "<")
	if s := screen(m); !strings.Contains(s, "task 5: not in the recording at update 1") {
		t.Errorf("a task that did not exist yet:\n%s", s)
	}
}

func TestReplayHelpAndKeys(t *testing.T) {
	m, _ := newReplay(t, testRecording(t, 3, 0, 0), true)
	m = keysSettled(t, m, "?")
	s := screen(m)
	for _, want := range []string{"replay", "space     play / pause the replay", ",         previous update", "]         10 updates forward", ":N        go to update N", "+         play faster"} {
		if !strings.Contains(s, want) {
			t.Errorf("help lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "freeze the display") {
		t.Errorf("help lists the live pause in a replay:\n%s", s)
	}
	// No replay key is a key of the live view, but space.
	live := map[string]string{}
	v := reflect.ValueOf(keys)
	for i := range v.NumField() {
		for _, k := range v.Field(i).Interface().(key.Binding).Keys() {
			live[k] = v.Type().Field(i).Name
		}
	}
	rv := reflect.ValueOf(replayKeys)
	for i := range rv.NumField() {
		for _, k := range rv.Field(i).Interface().(key.Binding).Keys() {
			if name, ok := live[k]; ok && k != "space" {
				t.Errorf("replay key %q (%s) is also the live key %s", k, rv.Type().Field(i).Name, name)
			}
		}
	}
}

// A recording damaged in the middle: the end plays from a later key frame,
// and an update past the damage, once asked for, shows what the recording
// still holds, not the update shown before.
func TestReplayDamagedInTheMiddle(t *testing.T) {
	var b bytes.Buffer
	w, err := recording.NewWriter(&b, recording.Header{Target: "127.0.0.1:7777", Started: rec0, IntervalNS: 10e9, WindowNS: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	var prev *api.Snapshot
	var offs []int
	for k := range 20 {
		at := rec0.Add(time.Duration(k) * 10 * time.Second)
		s := &api.Snapshot{Time: at, WindowNS: 5e9, Source: "trace+dump", Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2}}
		for id := int64(1); id <= int64(k+3); id++ {
			s.Tasks = append(s.Tasks, task(id, fmt.Sprintf("worker-%d", id), "waiting", 1e6, nil))
		}
		u := api.Diff(prev, s)
		if k%5 == 0 {
			u = api.Diff(nil, s) // a key frame, as inspect-cli record writes
		}
		u.Seq, prev = int64(k+1), s
		offs = append(offs, b.Len())
		if err := w.Update(at, u); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(rec0.Add(time.Hour), "interrupted")
	data := bytes.Clone(b.Bytes())
	data[(offs[6]+offs[7])/2] ^= 0xff // inside update 7
	r, err := recording.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := newReplay(t, recording.NewPlayer(r), true)
	m = keysSettled(t, m, ">")
	headerHas(t, m, "update 20/20", "tasks 22 (")
	m = keysSettled(t, m, ":", "9", "enter")
	headerHas(t, m, "update 6/6", "17:02:53", "tasks 8 (", "damaged")
}
