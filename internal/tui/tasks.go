package tui

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

// column is one column of the tasks table.
type column struct {
	title string
	width int  // fixed width; 0: sized to the visible rows, up to max
	max   int  // cap of a sized column
	right bool // right-aligned (numbers)
	cell  func(t *api.Task) string
}

// sortKey is the column's key in api.SortKeys: the target sorts by it too.
func (c column) sortKey() string { return strings.ToLower(c.title) }

// numeric says the column sorts largest first.
func (c column) numeric() bool { return api.SortKeys[c.sortKey()].Numeric }

// taskColumns are tokio-console's columns, in its order.
var taskColumns = []column{
	{title: "Warn", width: 4, right: true,
		cell: func(t *api.Task) string {
			if len(t.Warnings()) == 0 {
				return ""
			}
			return "⚠ " + strconv.Itoa(len(t.Warnings()))
		}},
	{title: "ID", max: 10, right: true,
		cell: func(t *api.Task) string { return strconv.FormatInt(t.ID, 10) }},
	{title: "State", width: 8,
		cell: func(t *api.Task) string { return t.State }},
	{title: "Name", max: 32,
		cell: func(t *api.Task) string { return t.Name }},
	{title: "Total", width: 7, right: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.TotalNS) }},
	{title: "Busy", width: 7, right: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.BusyNS) }},
	{title: "Sched", width: 7, right: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.SchedNS) }},
	{title: "Idle", width: 7, right: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.IdleNS) }},
	{title: "Polls", width: 7, right: true,
		cell: func(t *api.Task) string { return strconv.FormatInt(t.Stats.Polls, 10) }},
	{title: "Wait", max: 24,
		cell: WaitString},
	{title: "Location", max: locationWidth,
		cell: func(t *api.Task) string { return ShortFrameIn(t.Location, locationWidth) }},
	{title: "Labels", max: 1 << 20,
		cell: func(t *api.Task) string { return LabelString(t.Labels) }},
}

const idColumn = 1

// locationWidth bounds the Location column: a long function name is
// clipped, its file and line kept.
const locationWidth = 56

// TasksModel is the task table: every task, filtered and sorted, rendered
// a screenful at a time. Sorting and filtering run once per update (Set),
// never per frame.
//
// Paged, the target does the filtering and sorting (api.Query) and sends
// only a page of the tasks around what the table shows: the table asks for
// the page it needs (Query) and places the page it gets (SetView).
type TasksModel struct {
	all     []api.Task
	order   []int32 // indexes of all that pass the filter, sorted
	byState map[string]int

	sortCol int
	reverse bool
	filter  string

	list       // over order (paged: over the matched tasks); rows is the height less the column header
	selectedID int64
	width      int

	paged   bool
	base    int // paged: the place among the matched tasks of the page's first
	matched int // paged: the tasks that pass the query
	count   int // paged: the tasks in all
}

// NewTasksModel returns an empty table sorted by id.
func NewTasksModel() TasksModel {
	return TasksModel{sortCol: idColumn, list: list{rows: 20}, width: 120, byState: map[string]int{}}
}

// SetPaged makes the table paged: the target selects what it sends.
func (m *TasksModel) SetPaged() { m.paged = true }

// Paged says the target selects the table's tasks.
func (m TasksModel) Paged() bool { return m.paged }

// SetView places the page of tasks the next Set gives, paged: its place
// among the matched tasks, and the counts of the whole.
func (m *TasksModel) SetView(v api.View) {
	m.base, m.matched, m.count = v.Offset, v.Matched, v.TaskCount
	clear(m.byState)
	maps.Copy(m.byState, v.ByState)
}

// Query is what a paged table asks the target for: its sort and filter,
// and a page of three screens around the visible rows.
func (m TasksModel) Query() api.Query {
	return api.Query{Sort: taskColumns[m.sortCol].sortKey(), Reverse: m.reverse, Filter: m.filter,
		Offset: max(0, m.offset-m.rows), Limit: 3 * m.rows}
}

// Covers says the page asked for with q holds the visible rows, in the
// table's order: no need to ask for another.
func (m TasksModel) Covers(q api.Query) bool {
	want := m.Query()
	if q.Sort != want.Sort || q.Reverse != want.Reverse || q.Filter != want.Filter || q.Limit < m.rows {
		return false
	}
	end := min(m.offset+m.rows, max(m.matched, m.offset+1))
	return q.Offset <= m.offset && end <= q.Offset+q.Limit
}

// Set replaces the tasks (kept, not copied) and recomputes the order,
// keeping the selected task selected.
func (m *TasksModel) Set(tasks []api.Task) {
	m.all = tasks
	if m.paged {
		m.recompute()
		return
	}
	var running, runnable, waiting, syscall int
	clear(m.byState)
	for i := range tasks {
		switch tasks[i].State {
		case "waiting":
			waiting++
		case "running":
			running++
		case "runnable":
			runnable++
		case "syscall":
			syscall++
		default:
			m.byState[tasks[i].State]++
		}
	}
	m.byState["running"], m.byState["runnable"], m.byState["waiting"], m.byState["syscall"] = running, runnable, waiting, syscall
	m.recompute()
}

// Freeze copies the tasks so that later changes to the caller's slice do
// not show (pause).
func (m *TasksModel) Freeze() { m.all = slices.Clone(m.all) }

// SetSize sets the area the table may use.
func (m *TasksModel) SetSize(width, height int) {
	m.width, m.rows = width, max(1, height-1)
	m.clamp(m.Len())
}

// SetFilter sets the filter: text, or key=value of a label.
func (m *TasksModel) SetFilter(f string) {
	m.filter = strings.TrimSpace(f)
	if m.paged {
		m.cursor, m.offset = 0, 0
	}
	m.recompute()
}

// Filter is the active filter.
func (m TasksModel) Filter() string { return m.filter }

// Len is the number of tasks that pass the filter; Total of all tasks.
func (m TasksModel) Len() int {
	if m.paged {
		return m.matched
	}
	return len(m.order)
}

func (m TasksModel) Total() int {
	if m.paged {
		return m.count
	}
	return len(m.all)
}

// SortTitle names the sort column and its direction.
func (m TasksModel) SortTitle() string {
	c := taskColumns[m.sortCol]
	if c.numeric() != m.reverse {
		return c.title + " ↓"
	}
	return c.title + " ↑"
}

// Selected is the task under the cursor.
func (m TasksModel) Selected() (*api.Task, bool) {
	i := m.cursor
	if m.paged {
		i -= m.base
	}
	if i < 0 || i >= len(m.order) {
		return nil, false
	}
	return &m.all[m.order[i]], true
}

func (m *TasksModel) recompute() {
	m.order = m.order[:0]
	match := api.Matcher(m.filter)
	for i := range m.all {
		if m.filter == "" || match(&m.all[i]) {
			m.order = append(m.order, int32(i))
		}
	}
	// all is in ascending id order (api.Apply keeps it so).
	api.SortOrder(m.all, m.order, taskColumns[m.sortCol].sortKey(), m.reverse)
	if m.paged {
		// The cursor keeps its place among the matched tasks.
		m.clamp(m.matched)
		return
	}
	// Keep the selected task selected; else keep the cursor's place.
	if m.selectedID != 0 {
		for i, j := range m.order {
			if m.all[j].ID == m.selectedID {
				m.cursor = i
				break
			}
		}
	}
	m.clamp(len(m.order))
	m.remember()
}

func (m *TasksModel) remember() {
	if t, ok := m.Selected(); ok {
		m.selectedID = t.ID
	}
}

// Update handles the table's keys: moving and sorting.
func (m TasksModel) Update(msg tea.Msg) (TasksModel, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	if m.move(k, m.Len()) {
		if !m.paged {
			m.remember()
		}
		return m, nil
	}
	switch {
	case key.Matches(k, keys.SortLeft):
		m.sortCol = (m.sortCol + len(taskColumns) - 1) % len(taskColumns)
	case key.Matches(k, keys.SortRight):
		m.sortCol = (m.sortCol + 1) % len(taskColumns)
	case key.Matches(k, keys.Reverse):
		m.reverse = !m.reverse
	default:
		return m, nil
	}
	if m.paged {
		// Another order: from its top, once the target sends it.
		m.cursor, m.offset = 0, 0
	}
	m.recompute()
	return m, nil
}

var (
	stateStyles = map[string]lipgloss.Style{
		"running":  lipgloss.NewStyle().Foreground(lipgloss.Color("2")),
		"runnable": lipgloss.NewStyle().Foreground(lipgloss.Color("3")),
		"waiting":  lipgloss.NewStyle().Foreground(lipgloss.Color("4")),
		"syscall":  lipgloss.NewStyle().Foreground(lipgloss.Color("5")),
	}
	warnStyle     = lipgloss.NewStyle().Foreground(lipgloss.Color("3")).Bold(true)
	headStyle     = lipgloss.NewStyle().Bold(true)
	sortHeadStyle = lipgloss.NewStyle().Bold(true).Underline(true)
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	dimStyle      = lipgloss.NewStyle().Faint(true)
)

// View renders the column header and the visible rows only.
func (m TasksModel) View() string {
	if m.Total() == 0 && len(m.all) == 0 {
		return dimStyle.Render("no tasks yet")
	}
	if m.Len() == 0 {
		return dimStyle.Render("no task matches the filter " + strconv.Quote(m.filter))
	}
	// The visible rows, as indexes in all; -1 for a row of a page not yet
	// come (paged).
	var visible []int32
	if m.paged {
		for g := m.offset; g < min(m.matched, m.offset+m.rows); g++ {
			if i := g - m.base; i >= 0 && i < len(m.order) {
				visible = append(visible, m.order[i])
			} else {
				visible = append(visible, -1)
			}
		}
	} else {
		visible = m.order[m.offset:min(len(m.order), m.offset+m.rows)]
	}
	cells := make([][]string, len(visible))
	widths := make([]int, len(taskColumns))
	for c, col := range taskColumns {
		widths[c] = max(col.width, textWidth(col.title)+2)
	}
	for r, i := range visible {
		if i < 0 {
			continue
		}
		t := &m.all[i]
		cells[r] = make([]string, len(taskColumns))
		for c, col := range taskColumns {
			s := col.cell(t)
			cells[r][c] = s
			if col.width == 0 {
				widths[c] = min(max(widths[c], textWidth(s)), col.max)
			}
		}
	}
	var b strings.Builder
	b.Grow((len(visible) + 1) * (m.width + 16))
	// Column header.
	var line strings.Builder
	for c, col := range taskColumns {
		title := col.title
		st := headStyle
		if c == m.sortCol {
			title += map[bool]string{true: "↓", false: "↑"}[col.numeric() != m.reverse]
			st = sortHeadStyle
		}
		if c > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(st.Render(pad(title, widths[c], col.right)))
	}
	b.WriteString(truncate(line.String(), m.width))
	for r, i := range visible {
		b.WriteByte('\n')
		selected := m.offset+r == m.cursor
		if i < 0 {
			row := dimStyle.Render(pad("…", m.width, false))
			if selected {
				row = selectedStyle.Render(pad("…", m.width, false))
			}
			b.WriteString(row)
			continue
		}
		t := &m.all[i]
		line.Reset()
		for c, col := range taskColumns {
			if c > 0 {
				line.WriteByte(' ')
			}
			s := pad(cells[r][c], widths[c], col.right)
			if !selected {
				switch c {
				case 0:
					if cells[r][c] != "" {
						s = warnStyle.Render(s)
					}
				case 2:
					if st, ok := stateStyles[t.State]; ok {
						s = st.Render(s)
					}
				}
			}
			line.WriteString(s)
		}
		row := truncate(line.String(), m.width)
		if selected {
			row = selectedStyle.Render(pad(row, m.width, false))
		}
		b.WriteString(row)
	}
	return b.String()
}
