package tui

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

// A poll sends a full update, then differences; a failure is a
// reconnection, and the next success says how long it was down and starts
// over with a full update. The model shows it like a watch stream.
func TestPoll(t *testing.T) {
	var calls atomic.Int32
	snapshot := func(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
		if window != 3*time.Second {
			t.Errorf("window %v, want 3s", window)
		}
		switch n := calls.Add(1); n {
		case 1:
			return &api.Snapshot{Source: "trace", Tasks: []api.Task{{ID: 1, State: "running"}, {ID: 2, State: "waiting"}}}, nil
		case 2:
			return &api.Snapshot{Source: "trace", Tasks: []api.Task{{ID: 1, State: "waiting"}, {ID: 3, State: "running"}}}, nil
		case 3:
			return nil, errors.New("connection refused")
		default:
			return &api.Snapshot{Source: "trace", Tasks: []api.Task{{ID: 9, State: "running"}}}, nil
		}
	}
	p := NewPoll(snapshot, 10*time.Millisecond, 3*time.Second)
	p.MinBackoff = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	next := func() tea.Msg {
		select {
		case m := <-p.C:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message from the poll")
			return nil
		}
	}
	m := New(Config{Target: "test", Window: 3 * time.Second, Updates: p.C})
	apply := func(msg tea.Msg) {
		mm, _ := m.Update(msg)
		m = mm.(Model)
	}
	if msg, ok := next().(ConnMsg); !ok || msg.State != Connected || msg.Reconnected {
		t.Errorf("first: %#v, want connected", msg)
	}
	msg1, ok := next().(UpdateMsg)
	if !ok || !msg1.Update.Full || len(msg1.Update.Tasks) != 2 || msg1.Update.Seq != 1 {
		t.Errorf("second: %#v, want a full update of 2 tasks", msg1)
	}
	apply(msg1)
	msg2, ok := next().(UpdateMsg)
	if !ok || msg2.Update.Full || len(msg2.Update.Tasks) != 2 || len(msg2.Update.Removed) != 1 || msg2.Update.Removed[0] != 2 {
		t.Errorf("third: %#v, want task 1 changed, 3 new, 2 removed", msg2)
	}
	apply(msg2)
	if ids := []int64{m.state.Tasks[0].ID, m.state.Tasks[1].ID}; len(m.state.Tasks) != 2 || ids[0] != 1 || ids[1] != 3 || m.state.Tasks[0].State != "waiting" {
		t.Errorf("state after two updates: %+v", m.state.Tasks)
	}
	msg3, ok := next().(ConnMsg)
	if !ok || msg3.State != Reconnecting || msg3.Err == nil || msg3.Retry != 20*time.Millisecond {
		t.Errorf("fourth: %#v, want reconnecting with the error", msg3)
	}
	apply(msg3)
	if r := m.Render(); !strings.Contains(r, "reconnecting") || !strings.Contains(r, "connection refused") {
		t.Errorf("screen does not show the failure:\n%s", r)
	}
	if msg, ok := next().(ConnMsg); !ok || msg.State != Connected || !msg.Reconnected || msg.Down <= 0 {
		t.Errorf("fifth: %#v, want reconnected", msg)
	}
	if msg, ok := next().(UpdateMsg); !ok || !msg.Update.Full || len(msg.Update.Tasks) != 1 || msg.Update.Tasks[0].ID != 9 {
		t.Errorf("sixth: %#v, want a full update after the reconnection", msg)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for range p.C {
	}
}
