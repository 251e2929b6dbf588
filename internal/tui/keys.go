package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// keyMap holds every key binding; the help view lists them.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	SortLeft, SortRight, Reverse          key.Binding
	Filter, Pause, Details, Back          key.Binding
	Tasks, Sites, Findings, Help, Quit    key.Binding
}

var keys = keyMap{
	Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
	Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
	PageUp:    key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
	PageDown:  key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
	Home:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home/g", "first row")),
	End:       key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end/G", "last row")),
	SortLeft:  key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/h", "sort by the column to the left")),
	SortRight: key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→/l", "sort by the column to the right")),
	Reverse:   key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "reverse the sort order")),
	Filter:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter: text or key=value of a label (enter applies, esc clears)")),
	Pause:     key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "pause: freeze the display (updates still arrive)")),
	Details:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details of the selected task")),
	Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back / clear the filter")),
	Tasks:     key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "tasks view")),
	Sites:     key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "wait sites view (tokio-console's resources)")),
	Findings:  key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "findings and notes view")),
	Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "this help")),
	Quit:      key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q/ctrl+c", "quit")),
}

// textWidth is the width of s in cells.
func textWidth(s string) int { return ansi.StringWidth(s) }

// pad fits s to exactly w cells: clipped with an ellipsis, or padded.
func pad(s string, w int, right bool) string {
	n := textWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	if right {
		return strings.Repeat(" ", w-n) + s
	}
	return s + strings.Repeat(" ", w-n)
}

// truncate clips a styled line to w cells.
func truncate(s string, w int) string {
	if w <= 0 || textWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// list is the cursor and scroll offset of a table; the tasks and sites views
// share it.
type list struct {
	cursor int // selected row
	offset int // first visible row
	rows   int // visible rows
}

// move applies a movement key to a table of n rows and reports whether k
// was one.
func (l *list) move(k tea.KeyPressMsg, n int) bool {
	switch {
	case key.Matches(k, keys.Up):
		l.cursor--
	case key.Matches(k, keys.Down):
		l.cursor++
	case key.Matches(k, keys.PageUp):
		l.cursor -= l.rows
	case key.Matches(k, keys.PageDown):
		l.cursor += l.rows
	case key.Matches(k, keys.Home):
		l.cursor = 0
	case key.Matches(k, keys.End):
		l.cursor = n - 1
	default:
		return false
	}
	l.clamp(n)
	return true
}

// clamp keeps the cursor on one of n rows and that row in view.
func (l *list) clamp(n int) {
	l.cursor = max(0, min(l.cursor, n-1))
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+l.rows {
		l.offset = l.cursor - l.rows + 1
	}
	l.offset = max(0, min(l.offset, n-l.rows))
}
