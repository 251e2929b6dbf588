package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

// FetchTask reads one task with its histograms and stack: GET
// /api/v1/tasks/{id} (api.Client.Task).
type FetchTask func(ctx context.Context, id int64, window time.Duration) (*api.Task, error)

// TaskMsg is the answer of fetchTask.
type TaskMsg struct {
	ID   int64
	Task *api.Task
	Err  error
	// Findings are the snapshot's, of which the view shows those naming
	// the task.
	Findings []api.Finding
}

// fetchTask is the command that reads task id.
func fetchTask(ctx context.Context, fetch FetchTask, id int64, window time.Duration) tea.Cmd {
	return func() tea.Msg {
		t, err := fetch(ctx, id, window)
		return TaskMsg{ID: id, Task: t, Err: err}
	}
}

// DetailModel is one task in detail: its numbers with percentages, the
// run-time and scheduling-delay histograms, wait site, creator, parent,
// labels and full stack, scrollable.
type DetailModel struct {
	ID      int64
	window  time.Duration
	loading bool
	err     error
	raw     []string // the detail's lines, before wrapLines
	lines   []string
	offset  int
	width   int
	height  int
}

// NewDetailModel returns the detail view of task id, loading.
func NewDetailModel(id int64, window time.Duration, width, height int) DetailModel {
	return DetailModel{ID: id, window: window, loading: true, width: width, height: height}
}

// SetSize sets the area the view may use.
func (m *DetailModel) SetSize(width, height int) {
	m.width, m.height = width, max(1, height)
	m.lines = wrapLines(m.lines[:0], m.raw, m.width)
	m.offset = max(0, min(m.offset, len(m.lines)-m.height))
}

// Update takes the fetched task and the scrolling keys.
func (m DetailModel) Update(msg tea.Msg) (DetailModel, tea.Cmd) {
	switch msg := msg.(type) {
	case TaskMsg:
		if msg.ID != m.ID {
			return m, nil
		}
		m.loading = false
		m.err = msg.Err
		if msg.Err == nil && msg.Task != nil {
			var b strings.Builder
			WriteTask(&b, msg.Task, "", m.window)
			writeTaskFindings(&b, msg.ID, msg.Findings)
			m.raw = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
			m.lines = wrapLines(m.lines[:0], m.raw, m.width)
		}
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, keys.Up):
			m.offset--
		case key.Matches(msg, keys.Down):
			m.offset++
		case key.Matches(msg, keys.PageUp):
			m.offset -= m.height
		case key.Matches(msg, keys.PageDown):
			m.offset += m.height
		case key.Matches(msg, keys.Home):
			m.offset = 0
		case key.Matches(msg, keys.End):
			m.offset = len(m.lines)
		}
		m.offset = max(0, min(m.offset, len(m.lines)-m.height))
	}
	return m, nil
}

// View renders the visible lines.
func (m DetailModel) View() string {
	switch {
	case m.loading:
		return fmt.Sprintf("loading task %d…", m.ID)
	case api.IsNotFound(m.err):
		return fmt.Sprintf("task %d has exited (esc: back)", m.ID)
	case m.err != nil:
		return fmt.Sprintf("task %d: %v (esc: back)", m.ID, m.err)
	}
	end := min(len(m.lines), m.offset+m.height)
	out := make([]string, 0, end-m.offset)
	for _, l := range m.lines[m.offset:end] {
		out = append(out, truncate(l, m.width))
	}
	return strings.Join(out, "\n")
}

// writeTaskFindings lists the findings that name task id, with their advice.
func writeTaskFindings(b *strings.Builder, id int64, fs []api.Finding) {
	first := true
	for _, f := range fs {
		if !slices.Contains(f.Evidence.Tasks, id) {
			continue
		}
		if first {
			b.WriteString("\nfindings\n")
			first = false
		}
		fmt.Fprintf(b, "  %s  %s: %s\n", strings.ToUpper(f.Severity), f.Rule, f.Title)
		if f.Advice != "" {
			fmt.Fprintf(b, "    advice: %s\n", f.Advice)
		}
	}
}
