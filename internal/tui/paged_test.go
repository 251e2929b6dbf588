package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

// pagedTarget stands for a target that selects: it answers each query with
// the view api.Query.Select gives of all.
type pagedTarget struct {
	all  *api.Snapshot
	asks []api.Query
}

func (p *pagedTarget) update(q api.Query) api.Update {
	return api.Diff(nil, q.Select(p.all))
}

// run sends the model what the target answers to the queries it asked.
func (p *pagedTarget) run(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	for cmd != nil {
		// The command calls Config.Query, which records the query.
		n := len(p.asks)
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				if c != nil {
					c()
				}
			}
		}
		cmd = nil
		if len(p.asks) > n {
			m, cmd = send(t, m, UpdateMsg{Update: p.update(p.asks[len(p.asks)-1])})
		}
	}
	return m
}

// A paged table asks the target only for the page around what it shows:
// scrolling past it, sorting or filtering asks for another; the header
// counts all the target's tasks.
func TestPagedTable(t *testing.T) {
	p := &pagedTarget{all: &api.Snapshot{WindowNS: 5e9, Tasks: manyTasks(100_000)}}
	m := New(Config{Target: "x:1", Query: func(q api.Query) { p.asks = append(p.asks, q) }})
	first := api.Query{Sort: "id", Limit: 120}
	m, _ = send(t, m, UpdateMsg{Update: p.update(first)})
	m, cmd := send(t, m, tea.WindowSizeMsg{Width: 160, Height: 30})
	m = p.run(t, m, cmd)
	if len(p.asks) != 1 || p.asks[0].Limit > 3*30 || p.asks[0].Offset != 0 {
		t.Fatalf("queries %+v; want one page of three screens", p.asks)
	}
	if len(m.state.Tasks) > 90 {
		t.Errorf("the table holds %d tasks; want a page", len(m.state.Tasks))
	}
	s := screen(m)
	if !strings.Contains(s, "tasks 100000") {
		t.Errorf("header does not count all the target's tasks:\n%s", s)
	}
	// Scrolling within the page asks for nothing; past it, for the next.
	asked := len(p.asks)
	m = typeKeys(t, m, "down", "down")
	if len(p.asks) != asked {
		t.Errorf("a move within the page asked the target again: %+v", p.asks[asked:])
	}
	var cmd2 tea.Cmd
	for range 6 {
		m, cmd2 = send(t, m, tea.KeyPressMsg{Code: tea.KeyPgDown})
		m = p.run(t, m, cmd2)
	}
	if len(p.asks) == asked {
		t.Fatal("paging down past the page asked for nothing")
	}
	last := p.asks[len(p.asks)-1]
	if last.Offset == 0 || last.Limit > 90 {
		t.Errorf("page asked after scrolling: %+v", last)
	}
	if ids := rowIDs(screen(m)); len(ids) == 0 || ids[0] == "…" || ids[0] == "1" {
		t.Errorf("rows after scrolling: %v", ids)
	}
	// The end, sorted by busy: the target sorts, the table shows its order.
	m = typeKeys(t, m, "end")
	m, cmd2 = send(t, m, press("l"), press("l"), press("l"), press("l"))
	m = p.run(t, m, cmd2)
	if last := p.asks[len(p.asks)-1]; last.Sort != "busy" || last.Offset != 0 {
		t.Errorf("after sorting by busy: %+v", last)
	}
	if ids := rowIDs(screen(m)); len(ids) == 0 || ids[0] == "…" {
		t.Errorf("rows sorted by busy: %v", ids)
	}
	// A filter is the target's too.
	m = typeKeys(t, m, "/", "w", "o", "r", "k", "e", "r", "-", "9", "6")
	m, cmd2 = send(t, m, press("enter"))
	m = p.run(t, m, cmd2)
	if last := p.asks[len(p.asks)-1]; last.Filter != "worker-96" {
		t.Errorf("after filtering: %+v", last)
	}
	if s := screen(m); !strings.Contains(s, `filter "worker-96": `) {
		t.Errorf("header after filtering:\n%s", s)
	}
}

// The header says when the target records from this client's request on
// (the window fills), and what share of the window it traced.
func TestHeaderRecordingAndTraced(t *testing.T) {
	m := New(Config{Target: "x:1", Window: 5 * time.Second})
	u := fixture()
	u.WindowNS, u.RecordingSince = 1e9, time.Now()
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 30}, ConnMsg{State: Connected}, UpdateMsg{Update: u})
	if s := screen(m); !strings.Contains(s, "recording: 1s of the 5s window") {
		t.Errorf("header of a window being recorded:\n%s", s)
	}
	// Before the first window: how long it has recorded.
	u.WindowNS, u.Time = 0, u.RecordingSince.Add(9*time.Second)
	m, _ = send(t, m, UpdateMsg{Update: u})
	if s := screen(m); !strings.Contains(s, "recording for 9s: no window yet") {
		t.Errorf("header before the first window:\n%s", s)
	}
	u.WindowNS, u.ObservedNS = 5e9, 4e8
	m, _ = send(t, m, UpdateMsg{Update: u})
	if s := screen(m); !strings.Contains(s, "window 5s (traced 8%)") {
		t.Errorf("header of a window traced in part:\n%s", s)
	}
}
