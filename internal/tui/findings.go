package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

// FindingsModel lists the snapshot's findings: what is wrong, the evidence
// and the advice.
type FindingsModel struct {
	raw    []string // as set: one per item, indented
	lines  []string // raw wrapped to the width
	offset int
	width  int
	height int
}

// Set replaces the findings, and the snapshot's notes shown below them
// (what is approximate or missing, how the model was built).
func (m *FindingsModel) Set(fs []api.Finding, notes []string) {
	m.lines = m.lines[:0]
	defer m.wrap()
	if len(fs) == 0 {
		m.lines = append(m.lines, dimStyle.Render("no findings"))
	}
	for i, f := range fs {
		if i > 0 {
			m.lines = append(m.lines, "")
		}
		m.lines = append(m.lines, fmt.Sprintf("%s  %s: %s", strings.ToUpper(f.Severity), f.Rule, f.Title))
		if f.Message != "" {
			m.lines = append(m.lines, "  "+f.Message)
		}
		if n := len(f.Evidence.Tasks); n > 0 {
			ids := make([]string, 0, min(n, 10))
			for _, id := range f.Evidence.Tasks[:min(n, 10)] {
				ids = append(ids, fmt.Sprint(id))
			}
			more := ""
			if all := f.TaskCount(); all > 10 {
				more = fmt.Sprintf(" and %d more", all-10)
			}
			m.lines = append(m.lines, fmt.Sprintf("  tasks: %s%s", strings.Join(ids, ", "), more))
		}
		for _, s := range f.Evidence.Sites {
			m.lines = append(m.lines, "  site: "+format.Frame(s))
		}
		for _, miss := range f.Evidence.Missing {
			m.lines = append(m.lines, "  missing: "+miss)
		}
		if f.Advice != "" {
			m.lines = append(m.lines, "  advice: "+f.Advice)
		}
	}
	if len(notes) > 0 {
		m.lines = append(m.lines, "", "notes")
		for _, n := range notes {
			m.lines = append(m.lines, "  "+n)
		}
	}
	m.raw = append(m.raw[:0], m.lines...)
}

// wrap fits the lines to the width (wrapLines).
func (m *FindingsModel) wrap() {
	m.lines = wrapLines(m.lines[:0], m.raw, m.width)
	m.offset = max(0, min(m.offset, len(m.lines)-m.height))
}

// wrapLines appends raw to out fitted to width: a long message or advice
// continues on the next lines, indented under its start, rather than being
// cut.
func wrapLines(out, raw []string, width int) []string {
	for _, l := range raw {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if width <= indent+20 || textWidth(l) <= width {
			out = append(out, l)
			continue
		}
		pad := strings.Repeat(" ", indent+2)
		w := ansi.Wordwrap(strings.TrimLeft(l, " "), width-indent-2, "")
		for i, part := range strings.Split(w, "\n") {
			if i == 0 {
				out = append(out, l[:indent]+part)
			} else {
				out = append(out, pad+part)
			}
		}
	}
	return out
}

// SetSize sets the area the view may use.
func (m *FindingsModel) SetSize(width, height int) {
	m.width, m.height = width, max(1, height)
	m.wrap()
}

// Update scrolls.
func (m FindingsModel) Update(msg tea.Msg) (FindingsModel, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, keys.Up):
			m.offset--
		case key.Matches(k, keys.Down):
			m.offset++
		case key.Matches(k, keys.PageUp):
			m.offset -= m.height
		case key.Matches(k, keys.PageDown):
			m.offset += m.height
		}
		m.offset = max(0, min(m.offset, len(m.lines)-m.height))
	}
	return m, nil
}

// View renders the visible lines.
func (m FindingsModel) View() string {
	if len(m.lines) == 0 {
		return dimStyle.Render("no findings")
	}
	end := min(len(m.lines), m.offset+m.height)
	out := make([]string, 0, end-m.offset)
	for _, l := range m.lines[m.offset:end] {
		out = append(out, truncate(l, m.width))
	}
	return strings.Join(out, "\n")
}
