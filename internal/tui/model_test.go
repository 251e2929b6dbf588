package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/inspectd/inspectd/internal/api"
)

// press builds the key message of a key name as tea.KeyPressMsg.String
// spells it: "enter", "esc", "space", "up", "backspace", or one character.
func press(name string) tea.KeyPressMsg {
	special := map[string]rune{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"left": tea.KeyLeft, "right": tea.KeyRight, "backspace": tea.KeyBackspace, "end": tea.KeyEnd,
	}
	if c, ok := special[name]; ok {
		return tea.KeyPressMsg{Code: c}
	}
	if name == "space" {
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	}
	r := []rune(name)[0]
	return tea.KeyPressMsg{Code: r, Text: name}
}

// send runs msgs through Update, as the program would, and returns the model
// and the last command.
func send(t *testing.T, m Model, msgs ...tea.Msg) (Model, tea.Cmd) {
	t.Helper()
	var cmd tea.Cmd
	for _, msg := range msgs {
		var tm tea.Model
		tm, cmd = m.Update(msg)
		m = tm.(Model)
	}
	return m, cmd
}

// typeKeys presses each key of keys in turn.
func typeKeys(t *testing.T, m Model, names ...string) Model {
	t.Helper()
	for _, n := range names {
		m, _ = send(t, m, press(n))
	}
	return m
}

// screen is the rendered text without colours.
func screen(m Model) string { return ansi.Strip(m.Render()) }

// rowIDs lists the ids of the task rows on the screen, top to bottom.
func rowIDs(s string) []string {
	var ids []string
	inTable := false
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && (f[0] == "ID" || strings.HasPrefix(f[0], "ID") || (f[0] == "Warn" || strings.HasPrefix(f[0], "Warn"))) {
			inTable = true
			continue
		}
		if !inTable || len(f) == 0 {
			continue
		}
		if strings.HasPrefix(f[0], "⚠") {
			f = f[2:]
		}
		ids = append(ids, f[0])
	}
	return ids
}

func task(id int64, name, state string, busy int64, labels map[string]string) api.Task {
	return api.Task{
		ID: id, Name: name, State: state, Labels: labels,
		WaitReason: map[bool]string{true: "sync.Mutex.Lock"}[state == "waiting"],
		Location:   api.Frame{Function: "example.com/w.run", File: "/src/w/run.go", Line: int(id)},
		Stats:      api.TaskStats{TotalNS: 5e9, BusyNS: busy, SchedNS: 1e6, IdleNS: 5e9 - busy - 1e6, Polls: busy / 1e6},
	}
}

func fixture() api.Update {
	return api.Update{
		Seq: 1, Full: true, WindowNS: 5e9, Source: "trace+profile",
		Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2},
		Notes:   []string{"labels may be stale"},
		Tasks: []api.Task{
			task(1, "main.main", "waiting", 1e6, nil),
			task(2, "blocking-lock/holder", "running", 900e6, map[string]string{"workload": "blocking-lock", "role": "holder"}),
			task(3, "blocking-lock/waiter", "waiting", 3e6, map[string]string{"workload": "blocking-lock", "role": "waiter"}),
			task(4, "blocking-lock/waiter", "waiting", 2e6, map[string]string{"workload": "blocking-lock", "role": "waiter"}),
			task(5, "hello/main", "runnable", 40e6, map[string]string{"workload": "hello", "role": "main"}),
		},
		Sites: []api.Site{{Reason: "sync.Mutex.Lock", Location: api.Frame{Function: "example.com/w.lockIt", File: "/src/w/lock.go", Line: 52},
			Waiting: 2, WaitNS: 9e9, Wakeups: 17, Waker: []api.Frame{{Function: "sync.(*Mutex).Unlock"}, {Function: "example.com/w.unlockIt", File: "/src/w/lock.go", Line: 60}}}},
	}
}

func newTest(t *testing.T) Model {
	t.Helper()
	m := New(Config{Target: "127.0.0.1:7777", Window: 5 * time.Second})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 30}, ConnMsg{State: Connected}, UpdateMsg{Update: fixture()})
	return m
}

func TestHeader(t *testing.T) {
	s := screen(newTest(t))
	for _, want := range []string{"target 127.0.0.1:7777", "go1.27.3", "GOMAXPROCS 2", "● connected", "window 5s", "notes 1",
		"tasks 5 (running 1, runnable 1, waiting 3, syscall 0)", "sort ID ↑",
		"Warn", "State", "Name", "Total", "Busy", "Sched", "Idle", "Polls", "Wait", "Location", "Labels",
		"blocking-lock/holder", "role=waiter,workload=blocking-lock", "w.run run.go:3", "sync.Mutex.Lock", "900ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
}

// A saved trace has no connection to show.
func TestHeaderSavedFile(t *testing.T) {
	m := New(Config{Target: "run.trace", Saved: true})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 30}, ConnMsg{State: Connected}, UpdateMsg{Update: fixture()})
	if s := screen(m); !strings.Contains(s, "■ saved file") || strings.Contains(s, "connected") {
		t.Errorf("header of a saved trace:\n%s", s)
	}
}

func TestSort(t *testing.T) {
	m := newTest(t)
	if got := strings.Join(rowIDs(screen(m)), " "); got != "1 2 3 4 5" {
		t.Fatalf("by id: rows %s", got)
	}
	// ID -> State -> Name -> Total -> Busy.
	m = typeKeys(t, m, "right", "l", "right", "l")
	s := screen(m)
	if !strings.Contains(s, "sort Busy ↓") || !strings.Contains(s, "Busy↓") {
		t.Errorf("header does not name the sort column:\n%s", s)
	}
	if got := strings.Join(rowIDs(s), " "); got != "2 5 3 4 1" {
		t.Errorf("by busy: rows %s, want 2 5 3 4 1\n%s", got, s)
	}
	m = typeKeys(t, m, "i")
	if got := strings.Join(rowIDs(screen(m)), " "); got != "1 4 3 5 2" || !strings.Contains(screen(m), "sort Busy ↑") {
		t.Errorf("reversed: rows %s, want 1 4 3 5 2", got)
	}
	// Back to State (h twice, left once): running, runnable, then waiting.
	m = typeKeys(t, m, "i", "h", "left", "h")
	if got := strings.Join(rowIDs(screen(m)), " "); got != "2 5 1 3 4" || !strings.Contains(screen(m), "sort State ↑") {
		t.Errorf("by state: rows %s, want 2 5 1 3 4\n%s", got, screen(m))
	}
	// Labels, the last column, reached by wrapping left from ID past Warn.
	if got := strings.Join(rowIDs(screen(typeKeys(t, New(Config{}), "h"))), " "); got != "" {
		t.Errorf("empty model rows: %s", got)
	}
	m2 := typeKeys(t, newTest(t), "h", "h")
	if s := screen(m2); !strings.Contains(s, "sort Labels ↑") || strings.Join(rowIDs(s), " ") != "1 2 5 3 4" {
		t.Errorf("by labels: rows %s, want 1 2 5 3 4\n%s", strings.Join(rowIDs(s), " "), s)
	}
	// The selection follows its task across sorts and updates.
	if sel, _ := m.tasks.Selected(); sel.ID != 1 {
		t.Fatalf("selected %d, want 1 (selected before sorting)", sel.ID)
	}
	m = typeKeys(t, m, "down") // task 3
	u := api.Update{Seq: 2, WindowNS: 5e9, Tasks: []api.Task{task(3, "blocking-lock/waiter", "running", 1e6, nil)}}
	m, _ = send(t, m, UpdateMsg{Update: u})
	if sel, _ := m.tasks.Selected(); sel.ID != 3 || sel.State != "running" {
		t.Errorf("after the update selected %d %s, want 3 running", sel.ID, sel.State)
	}
	if got := strings.Join(rowIDs(screen(m)), " "); got != "2 3 5 1 4" {
		t.Errorf("after the update: rows %s, want 2 3 5 1 4", got)
	}
}

func TestFilter(t *testing.T) {
	m := newTest(t)
	m = typeKeys(t, m, "/", "W", "a", "i", "t", "x", "backspace")
	if s := screen(m); !strings.Contains(s, "filter: /Wait█") || len(rowIDs(s)) != 5 {
		t.Errorf("while typing, the filter shows and is not applied yet:\n%s", s)
	}
	m = typeKeys(t, m, "e", "r", "enter")
	s := screen(m)
	if got := strings.Join(rowIDs(s), " "); got != "3 4" {
		t.Errorf("filter Waiter: rows %s, want 3 4\n%s", got, s)
	}
	if !strings.Contains(s, `filter "Waiter": 2 of 5`) {
		t.Errorf("header lacks the filter:\n%s", s)
	}
	m = typeKeys(t, m, "esc")
	if got := strings.Join(rowIDs(screen(m)), " "); got != "1 2 3 4 5" {
		t.Errorf("esc: rows %s, want all", got)
	}
	// key=value matches a label exactly.
	m = typeKeys(t, m, "/", "r", "o", "l", "e", "=", "h", "o", "l", "d", "e", "r", "enter")
	if got := strings.Join(rowIDs(screen(m)), " "); got != "2" {
		t.Errorf("role=holder: rows %s, want 2", got)
	}
	m = typeKeys(t, m, "/", "esc")
	if got := strings.Join(rowIDs(screen(m)), " "); got != "1 2 3 4 5" {
		t.Errorf("esc in the input clears: rows %s", got)
	}
	m = typeKeys(t, m, "/", "n", "o", "p", "e", "enter")
	if s := screen(m); !strings.Contains(s, `no task matches the filter "nope"`) {
		t.Errorf("no match:\n%s", s)
	}
}

func TestPause(t *testing.T) {
	m := newTest(t)
	m = typeKeys(t, m, "space")
	u := api.Update{Seq: 2, WindowNS: 5e9, Process: api.Process{GoVersion: "go1.27.3", GOMAXPROCS: 2},
		Tasks: []api.Task{task(2, "renamed", "waiting", 0, nil), task(6, "newcomer", "running", 0, nil)}, Removed: []int64{5}}
	m, cmd := send(t, m, UpdateMsg{Update: u})
	if cmd != nil {
		t.Error("paused: the stream must still be listened to, but got no command")
	}
	s := screen(m)
	if !strings.Contains(s, "PAUSED") || strings.Contains(s, "renamed") || strings.Contains(s, "newcomer") ||
		!strings.Contains(s, "hello/main") || !strings.Contains(s, "tasks 5 ") {
		t.Errorf("paused display changed:\n%s", s)
	}
	m = typeKeys(t, m, "space")
	s = screen(m)
	if strings.Contains(s, "PAUSED") || !strings.Contains(s, "renamed") || !strings.Contains(s, "newcomer") ||
		strings.Contains(s, "hello/main") || !strings.Contains(s, "tasks 5 ") {
		t.Errorf("resumed display is not up to date:\n%s", s)
	}
}

func TestDetail(t *testing.T) {
	m := New(Config{Target: "x:1", Window: 5 * time.Second, Fetch: func(ctx context.Context, id int64, w time.Duration) (*api.Task, error) {
		if id != 3 {
			return nil, &api.StatusError{Code: 404, Message: "no goroutine"}
		}
		tk := task(3, "blocking-lock/waiter", "waiting", 3e6, map[string]string{"role": "waiter"})
		tk.ParentID, tk.CreatedBy = 2, api.Frame{Function: "example.com/w.spawn", File: "/src/w/spawn.go", Line: 9}
		tk.TaskDetail = &api.TaskDetail{
			RunTimes:   &api.Histogram{Count: 10, P50NS: 2000, P90NS: 4000, P99NS: 9000, MaxNS: 9500, Buckets: []int64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5}},
			SchedDelay: &api.Histogram{Count: 10, P50NS: 1e5, P90NS: 1e6, P99NS: 2e6, MaxNS: 2e6},
			Stack:      []api.Frame{{Function: "sync.(*Mutex).Lock", File: "/go/sync/mutex.go", Line: 80}, {Function: "example.com/w.lockIt", File: "/src/w/lock.go", Line: 52}},
		}
		return &tk, nil
	}})
	u := fixture()
	u.Findings = []api.Finding{{Rule: "lock-held-blocking", Severity: "warning", Title: "lock held across a blocking call at lock.go:40",
		Evidence: api.Evidence{Tasks: []int64{3}}, Advice: "do the slow call outside the critical section"},
		{Rule: "goroutine-leak", Severity: "critical", Title: "not this task", Evidence: api.Evidence{Tasks: []int64{9}}}}
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 150, Height: 60}, UpdateMsg{Update: u})
	m = typeKeys(t, m, "down", "down")
	m, cmd := send(t, m, press("enter"))
	if s := screen(m); !strings.Contains(s, "loading task 3") {
		t.Errorf("no loading line:\n%s", s)
	}
	if cmd == nil {
		t.Fatal("enter gave no fetch command")
	}
	m, _ = send(t, m, cmd())
	s := screen(m)
	for _, want := range []string{"task 3  blocking-lock/waiter  waiting", "wait site   w.lockIt lock.go:52",
		"created by  w.spawn spawn.go:9  in goroutine 2 (parent)", "labels      role=waiter",
		"busy", "0.06%", "sched", "idle", "polls", "run times: n=10  p50 2µs  p90 4µs  p99 9µs  max 9.5µs", "█",
		"sched delays: n=10  p50 100µs  p90 1ms  p99 2ms", "stack:", "example.com/w.lockIt", "/src/w/lock.go:52", "task 3  esc back",
		"findings", "WARNING  lock-held-blocking: lock held across a blocking call at lock.go:40", "advice: do the slow call outside the critical section"} {
		if !strings.Contains(s, want) {
			t.Errorf("detail lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "not this task") {
		t.Errorf("detail shows a finding that does not name the task:\n%s", s)
	}
	m = typeKeys(t, m, "esc")
	if s := screen(m); !strings.Contains(s, "blocking-lock/holder") || strings.Contains(s, "stack:") {
		t.Errorf("esc did not go back to the tasks:\n%s", s)
	}
	// A task that has exited.
	m = typeKeys(t, m, "up")
	m, cmd = send(t, m, press("enter"))
	m, _ = send(t, m, cmd())
	if s := screen(m); !strings.Contains(s, "task 2 has exited") {
		t.Errorf("404:\n%s", s)
	}
}

// The details stay live: each new snapshot reads the task again, so a
// finding that names it after the details were opened shows, and one that
// no longer names it goes.
func TestDetailStaysLive(t *testing.T) {
	fetches := 0
	m := New(Config{Target: "x:1", Window: 5 * time.Second, Fetch: func(ctx context.Context, id int64, w time.Duration) (*api.Task, error) {
		fetches++
		tk := task(3, "blocking-lock/waiter", "waiting", int64(fetches)*1e6, nil)
		return &tk, nil
	}})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 150, Height: 60}, UpdateMsg{Update: fixture()})
	m = typeKeys(t, m, "down", "down")
	m, cmd := send(t, m, press("enter"))
	m, _ = send(t, m, cmd())
	if s := screen(m); !strings.Contains(s, "task 3  blocking-lock/waiter") || strings.Contains(s, "lock-held-blocking") {
		t.Fatalf("details before the finding:\n%s", s)
	}
	run := func(cmd tea.Cmd) {
		t.Helper()
		if cmd == nil {
			t.Fatal("a new snapshot with the details open gave no command")
		}
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				if c != nil {
					m, _ = send(t, m, c())
				}
			}
			return
		}
		m, _ = send(t, m, msg)
	}
	next := api.Update{Seq: 2, Time: time.Unix(100, 0), WindowNS: 5e9, Source: "trace",
		Findings: []api.Finding{{Rule: "lock-held-blocking", Severity: "warning", Title: "lock held across a blocking call", Evidence: api.Evidence{Tasks: []int64{3}}}}}
	m, cmd = send(t, m, UpdateMsg{Update: next})
	run(cmd)
	if s := screen(m); !strings.Contains(s, "WARNING  lock-held-blocking") || fetches != 2 {
		t.Errorf("after a snapshot with a finding naming the task (%d fetches):\n%s", fetches, s)
	}
	gone := api.Update{Seq: 3, Time: time.Unix(101, 0), WindowNS: 5e9, Source: "trace", Findings: []api.Finding{}}
	m, cmd = send(t, m, UpdateMsg{Update: gone})
	run(cmd)
	if s := screen(m); strings.Contains(s, "lock-held-blocking") || fetches != 3 {
		t.Errorf("after a snapshot without it (%d fetches):\n%s", fetches, s)
	}
	// The same snapshot again reads nothing.
	m, cmd = send(t, m, UpdateMsg{Update: api.Update{Seq: 4, Time: time.Unix(101, 0), WindowNS: 5e9, Source: "trace", Findings: []api.Finding{}}})
	if cmd != nil {
		if msg := cmd(); msg != nil {
			if _, ok := msg.(TaskMsg); ok {
				t.Error("the same snapshot again read the task again")
			}
		}
	}
}

func TestSitesAndFindings(t *testing.T) {
	m := newTest(t)
	m = typeKeys(t, m, "r")
	s := screen(m)
	for _, want := range []string{"Reason", "Location", "Waiting", "Wakeups", "Waker", "sync.Mutex.Lock", "w.lockIt lock.go:52", "9s", "17", "w.unlockIt lock.go:60"} {
		if !strings.Contains(s, want) {
			t.Errorf("sites view lacks %q:\n%s", want, s)
		}
	}
	m = typeKeys(t, m, "f")
	if s := screen(m); !strings.Contains(s, "no findings") || !strings.Contains(s, "notes") || !strings.Contains(s, "labels may be stale") {
		t.Errorf("findings view without findings, with the snapshot's notes:\n%s", s)
	}
	u := fixture()
	u.Full, u.Seq = false, 2
	u.Tasks = nil
	u.Findings = []api.Finding{{Rule: "mutex-contention", Severity: "warning", Title: "8 goroutines queue on one mutex",
		Evidence: api.Evidence{Tasks: []int64{3, 4}}, Advice: "shorten the critical section"}}
	m, _ = send(t, m, UpdateMsg{Update: u})
	s = screen(m)
	for _, want := range []string{"f findings (1)", "WARNING  mutex-contention: 8 goroutines queue on one mutex", "tasks: 3, 4", "advice: shorten the critical section"} {
		if !strings.Contains(s, want) {
			t.Errorf("findings view lacks %q:\n%s", want, s)
		}
	}
	m = typeKeys(t, m, "?")
	if s := screen(m); !strings.Contains(s, "reverse the sort order") {
		t.Errorf("help:\n%s", s)
	}
	m = typeKeys(t, m, "?", "t")
	if s := screen(m); !strings.Contains(s, "blocking-lock/holder") {
		t.Errorf("t: not the tasks view:\n%s", s)
	}
	if _, cmd := send(t, m, press("q")); cmd == nil || fmt.Sprint(cmd()) != fmt.Sprint(tea.Quit()) {
		t.Error("q does not quit")
	}
}

func TestReconnect(t *testing.T) {
	m := newTest(t)
	m, cmd := send(t, m, ConnMsg{State: Reconnecting, Err: errors.New("connection refused"), Retry: 2 * time.Second})
	s := screen(m)
	if !strings.Contains(s, "○ reconnecting (retry in 2s)") || !strings.Contains(s, "disconnected: connection refused") {
		t.Errorf("down:\n%s", s)
	}
	if !strings.Contains(s, "blocking-lock/holder") {
		t.Errorf("the last state should stay on screen:\n%s", s)
	}
	if cmd != nil {
		t.Error("a ConnMsg must re-issue the listen command (Updates is nil here)")
	}
	m, _ = send(t, m, ConnMsg{State: Connected, Reconnected: true, Down: 4200 * time.Millisecond, Lost: 3})
	s = screen(m)
	if !strings.Contains(s, "reconnected after 4.2s; 3 updates missed") || !strings.Contains(s, "● connected missed 3") {
		t.Errorf("reconnected:\n%s", s)
	}
	u := fixture()
	u.Missed = 2
	m, _ = send(t, m, UpdateMsg{Update: u})
	s = screen(m)
	if !strings.Contains(s, "the target skipped 2 updates: this client read too slowly") || !strings.Contains(s, "missed 5") {
		t.Errorf("missed:\n%s", s)
	}
	// Skipped while the target built the update: the target was slow.
	u.Missed, u.MissedBuilding = 3, 3
	m, _ = send(t, m, UpdateMsg{Update: u})
	if s = screen(m); !strings.Contains(s, "the target skipped 3 updates: building one took longer than the interval") {
		t.Errorf("missed while building:\n%s", s)
	}
}

// Updates that bring the same snapshot for seconds (the target's CPU
// budget spaces its builds) show it in the header; a new one clears it.
func TestHeaderSaysTheSnapshotIsTheSame(t *testing.T) {
	built := time.Now()
	u := fixture()
	u.Time = built
	m := New(Config{Target: "127.0.0.1:7777", Window: 5 * time.Second})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 30}, ConnMsg{State: Connected}, UpdateMsg{Update: u})
	if s := screen(m); strings.Contains(s, "same snapshot") {
		t.Errorf("a fresh snapshot is called the same:\n%s", s)
	}
	m.freshAt = m.freshAt.Add(-5 * time.Second)
	m, _ = send(t, m, UpdateMsg{Update: api.Update{Seq: 2, Time: built}})
	if s := screen(m); !strings.Contains(s, "same snapshot for 5s") {
		t.Errorf("5s of the same snapshot:\n%s", s)
	}
	// Between updates, a tick each second redraws the count, and stops
	// once a new snapshot came.
	m.freshAt = m.freshAt.Add(-2 * time.Second)
	m, cmd := send(t, m, staleTickMsg{})
	if s := screen(m); cmd == nil || !strings.Contains(s, "same snapshot for 7s") {
		t.Errorf("a tick 7s into the same snapshot: command %v,\n%s", cmd != nil, s)
	}
	m, _ = send(t, m, UpdateMsg{Update: api.Update{Seq: 3, Time: time.Now()}})
	if s := screen(m); strings.Contains(s, "same snapshot") {
		t.Errorf("a new snapshot is called the same:\n%s", s)
	}
	if _, cmd := send(t, m, staleTickMsg{}); cmd != nil {
		t.Error("the tick goes on after a new snapshot")
	}
}

func TestMissedStatus(t *testing.T) {
	for _, c := range []struct {
		missed, building int64
		want             string
	}{
		{1, 0, "the target skipped 1 update: this client read too slowly"},
		{4, 4, "the target skipped 4 updates: building one took longer than the interval"},
		{5, 2, "the target skipped 5 updates: 2 while building one took longer than the interval, 3 as this client read too slowly"},
	} {
		if got := missedStatus(c.missed, c.building); got != c.want {
			t.Errorf("missedStatus(%d, %d) = %q, want %q", c.missed, c.building, got, c.want)
		}
	}
}

func TestListenReissued(t *testing.T) {
	c := make(chan tea.Msg, 2)
	m := New(Config{Target: "x:1", Updates: c})
	c <- UpdateMsg{Update: fixture()}
	msg := m.Init()()
	m, cmd := send(t, m, msg)
	if cmd == nil {
		t.Fatal("no command after an update")
	}
	c <- ConnMsg{State: Connected}
	if _, ok := cmd().(ConnMsg); !ok {
		t.Error("the re-issued command does not read the next message")
	}
}

// manyTasks returns n synthetic tasks in ascending id order.
func manyTasks(n int) []api.Task {
	states := []string{"waiting", "waiting", "waiting", "runnable", "running", "syscall"}
	tasks := make([]api.Task, n)
	for i := range tasks {
		id := int64(i + 1)
		tasks[i] = api.Task{
			ID: id, Name: fmt.Sprintf("pool/worker-%d", i%97), State: states[i%len(states)],
			Labels:     map[string]string{"workload": "pool", "role": fmt.Sprintf("worker-%d", i%13)},
			WaitReason: "chan receive", WaitMinutes: i % 3,
			Location:  api.Frame{Function: "example.com/pool.(*Pool).work", File: "/src/pool/pool.go", Line: 40 + i%7},
			CreatedBy: api.Frame{Function: "example.com/pool.New", File: "/src/pool/pool.go", Line: 20},
			Stats:     api.TaskStats{TotalNS: 5e9, BusyNS: int64(i*7919) % 5e8, SchedNS: int64(i*104729) % 1e8, IdleNS: 4e9, Polls: int64(i % 1000)},
		}
		if i%1000 == 0 {
			tasks[i].TaskDetail = &api.TaskDetail{Warnings: []string{"leak"}}
		}
	}
	return tasks
}

func TestVirtualized(t *testing.T) {
	m := New(Config{Target: "x:1"})
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 160, Height: 30}, UpdateMsg{Update: api.Update{Full: true, Tasks: manyTasks(100_000)}})
	s := screen(m)
	if n := strings.Count(s, "\n") + 1; n != 30 {
		t.Errorf("%d lines, want the 30 of the terminal", n)
	}
	m = typeKeys(t, m, "end")
	if ids := rowIDs(screen(m)); ids[len(ids)-1] != "100000" {
		t.Errorf("end: last row %s", ids[len(ids)-1])
	}
}

// BenchmarkTasksView measures one frame with 100,000 tasks: an update of
// 1,000 changed tasks goes through Update (api.Apply, then filter and sort
// once) and the tasks view renders.
func BenchmarkTasksView(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys []string
	}{
		{"sort=id", nil},
		{"sort=busy", []string{"right", "right", "right", "right"}},
		{"filter=worker-5", []string{"/", "w", "o", "r", "k", "e", "r", "-", "5", "enter"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			all := manyTasks(100_000)
			m := New(Config{Target: "x:1"})
			var tm tea.Model = m
			tm, _ = tm.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
			tm, _ = tm.Update(UpdateMsg{Update: api.Update{Full: true, Tasks: all}})
			for _, k := range bc.keys {
				tm, _ = tm.Update(press(k))
			}
			changed := make([]api.Task, 1000)
			seq := int64(1)
			for b.Loop() {
				seq++
				for j := range changed {
					changed[j] = all[(int(seq)*1000+j*97)%len(all)]
					changed[j].Stats.BusyNS += seq * 1000
				}
				tm, _ = tm.Update(UpdateMsg{Update: api.Update{Seq: seq, Tasks: changed}})
				_ = tm.View()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/frame")
		})
	}
}

// Long messages and advice wrap to the view's width instead of being cut.
func TestFindingsWrap(t *testing.T) {
	var m FindingsModel
	m.SetSize(40, 50)
	m.Set([]api.Finding{{Rule: "lock-contention", Severity: "warning", Title: "contention",
		Advice: "shard the state, do the work outside the lock, and publish the result in a brief critical section at the end"}}, nil)
	s := ansi.Strip(m.View())
	for _, l := range strings.Split(s, "\n") {
		if textWidth(l) > 40 {
			t.Errorf("line wider than 40: %q", l)
		}
	}
	if !strings.Contains(s, "at the end") || strings.Contains(s, "…") {
		t.Errorf("advice cut rather than wrapped:\n%s", s)
	}
}

// In a task's detail too, the advice of a finding that names it wraps.
func TestDetailWrapsAdvice(t *testing.T) {
	m := NewDetailModel(7, 5*time.Second, 40, 60)
	m, _ = m.Update(TaskMsg{ID: 7, Task: &api.Task{ID: 7, State: "waiting", WaitReason: "sync.Mutex.Lock"},
		Findings: []api.Finding{{Rule: "lock-contention", Severity: "warning", Title: "contention", Evidence: api.Evidence{Tasks: []int64{7}},
			Advice: "shard the state, do the work outside the lock, and publish the result in a brief critical section at the end"}}})
	s := ansi.Strip(m.View())
	if !strings.Contains(s, "at the end") {
		t.Errorf("advice cut rather than wrapped:\n%s", s)
	}
	m.SetSize(100, 60)
	if s := ansi.Strip(m.View()); !strings.Contains(s, "advice: shard the state, do the work outside the lock, and publish the result in a brief") {
		t.Errorf("not rewrapped to the wider view:\n%s", s)
	}
}

// A site's wait summed over many goroutines runs into hours: shown whole.
func TestSitesShowLongWaits(t *testing.T) {
	var m SitesModel
	m.SetSize(200, 10)
	m.Set([]api.Site{{Reason: "chan receive", Location: api.Frame{Function: "main.f", File: "/a/main.go", Line: 3}, Waiting: 400,
		WaitNS: int64(124*time.Hour + 31*time.Minute + 12*time.Second)}})
	if s := ansi.Strip(m.View()); !strings.Contains(s, "124h31m12s") {
		t.Errorf("wait clipped:\n%s", s)
	}
}
