package tui

import (
	"cmp"
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
	title   string
	width   int  // fixed width; 0: sized to the visible rows, up to max
	max     int  // cap of a sized column
	right   bool // right-aligned (numbers)
	numeric bool // sorts largest first
	cell    func(t *api.Task) string
	cmp     func(a, b *api.Task) int // nil: compare the formatted cells
	// key, when set, is an integer that orders like cmp: sorting on it is
	// several times faster than calling cmp (100,000 tasks every update).
	key func(t *api.Task) int64
}

var stateRank = map[string]int{"running": 0, "runnable": 1, "syscall": 2, "waiting": 3}

// taskColumns are tokio-console's columns, in its order.
var taskColumns = []column{
	{title: "Warn", width: 4, right: true, numeric: true,
		cell: func(t *api.Task) string {
			if len(t.Warnings) == 0 {
				return ""
			}
			return "⚠ " + strconv.Itoa(len(t.Warnings))
		},
		cmp: func(a, b *api.Task) int { return cmp.Compare(len(a.Warnings), len(b.Warnings)) },
		key: func(t *api.Task) int64 { return int64(len(t.Warnings)) }},
	{title: "ID", max: 10, right: true,
		cell: func(t *api.Task) string { return strconv.FormatInt(t.ID, 10) },
		cmp:  func(a, b *api.Task) int { return 0 },
		key:  func(t *api.Task) int64 { return 0 }},
	{title: "State", width: 8,
		cell: func(t *api.Task) string { return t.State },
		cmp: func(a, b *api.Task) int {
			ra, oka := stateRank[a.State]
			rb, okb := stateRank[b.State]
			if !oka {
				ra = 9
			}
			if !okb {
				rb = 9
			}
			return cmp.Compare(ra, rb)
		},
		key: func(t *api.Task) int64 {
			if r, ok := stateRank[t.State]; ok {
				return int64(r)
			}
			return 9
		}},
	{title: "Name", max: 32,
		cell: func(t *api.Task) string { return t.Name },
		cmp:  func(a, b *api.Task) int { return strings.Compare(a.Name, b.Name) }},
	{title: "Total", width: 7, right: true, numeric: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.TotalNS) },
		cmp:  func(a, b *api.Task) int { return cmp.Compare(a.Stats.TotalNS, b.Stats.TotalNS) },
		key:  func(t *api.Task) int64 { return t.Stats.TotalNS }},
	{title: "Busy", width: 7, right: true, numeric: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.BusyNS) },
		cmp:  func(a, b *api.Task) int { return cmp.Compare(a.Stats.BusyNS, b.Stats.BusyNS) },
		key:  func(t *api.Task) int64 { return t.Stats.BusyNS }},
	{title: "Sched", width: 7, right: true, numeric: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.SchedNS) },
		cmp:  func(a, b *api.Task) int { return cmp.Compare(a.Stats.SchedNS, b.Stats.SchedNS) },
		key:  func(t *api.Task) int64 { return t.Stats.SchedNS }},
	{title: "Idle", width: 7, right: true, numeric: true,
		cell: func(t *api.Task) string { return format.Nanos(t.Stats.IdleNS) },
		cmp:  func(a, b *api.Task) int { return cmp.Compare(a.Stats.IdleNS, b.Stats.IdleNS) },
		key:  func(t *api.Task) int64 { return t.Stats.IdleNS }},
	{title: "Polls", width: 7, right: true, numeric: true,
		cell: func(t *api.Task) string { return strconv.FormatInt(t.Stats.Polls, 10) },
		cmp:  func(a, b *api.Task) int { return cmp.Compare(a.Stats.Polls, b.Stats.Polls) },
		key:  func(t *api.Task) int64 { return t.Stats.Polls }},
	{title: "Wait", max: 24,
		cell: WaitString,
		cmp: func(a, b *api.Task) int {
			if c := strings.Compare(a.WaitReason, b.WaitReason); c != 0 {
				return c
			}
			return cmp.Compare(b.WaitMinutes, a.WaitMinutes)
		}},
	{title: "Location", max: locationWidth,
		cell: func(t *api.Task) string { return ShortFrameIn(t.Location, locationWidth) },
		cmp: func(a, b *api.Task) int {
			return cmp.Or(strings.Compare(format.Func(a.Location.Function), format.Func(b.Location.Function)),
				strings.Compare(a.Location.File, b.Location.File), cmp.Compare(a.Location.Line, b.Location.Line))
		}},
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
type TasksModel struct {
	all     []api.Task
	order   []int32 // indexes of all that pass the filter, sorted
	items   []sortItem
	byState map[string]int

	sortCol int
	reverse bool
	filter  string

	list       // over order; rows is the height less the column header
	selectedID int64
	width      int
}

// NewTasksModel returns an empty table sorted by id.
func NewTasksModel() TasksModel {
	return TasksModel{sortCol: idColumn, list: list{rows: 20}, width: 120, byState: map[string]int{}}
}

// Set replaces the tasks (kept, not copied) and recomputes the order,
// keeping the selected task selected.
func (m *TasksModel) Set(tasks []api.Task) {
	m.all = tasks
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
	m.clamp(len(m.order))
}

// SetFilter sets the filter: text, or key=value of a label.
func (m *TasksModel) SetFilter(f string) {
	m.filter = strings.TrimSpace(f)
	m.recompute()
}

// Filter is the active filter.
func (m TasksModel) Filter() string { return m.filter }

// Len is the number of tasks that pass the filter; Total of all tasks.
func (m TasksModel) Len() int   { return len(m.order) }
func (m TasksModel) Total() int { return len(m.all) }

// SortTitle names the sort column and its direction.
func (m TasksModel) SortTitle() string {
	c := taskColumns[m.sortCol]
	if c.numeric != m.reverse {
		return c.title + " ↓"
	}
	return c.title + " ↑"
}

// Selected is the task under the cursor.
func (m TasksModel) Selected() (*api.Task, bool) {
	if m.cursor < 0 || m.cursor >= len(m.order) {
		return nil, false
	}
	return &m.all[m.order[m.cursor]], true
}

func (m *TasksModel) recompute() {
	m.order = m.order[:0]
	match := Matcher(m.filter)
	for i := range m.all {
		if m.filter == "" || match(&m.all[i]) {
			m.order = append(m.order, int32(i))
		}
	}
	col := taskColumns[m.sortCol]
	less := col.cmp
	if m.sortCol == idColumn {
		// all is in ascending id order (api.Apply keeps it so).
		if m.reverse {
			slices.Reverse(m.order)
		}
	} else if col.key != nil {
		m.sortByKey(col)
	} else if less == nil { // labels: format each task's labels once
		keys := make([]string, len(m.all))
		for _, i := range m.order {
			keys[i] = col.cell(&m.all[i])
		}
		slices.SortFunc(m.order, func(a, b int32) int {
			return m.dir(cmp.Or(strings.Compare(keys[a], keys[b]), cmp.Compare(m.all[a].ID, m.all[b].ID)), false)
		})
	} else {
		slices.SortFunc(m.order, func(a, b int32) int {
			ta, tb := &m.all[a], &m.all[b]
			return m.dir(cmp.Or(less(ta, tb), cmp.Compare(ta.ID, tb.ID)), col.numeric)
		})
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

// sortItem is one task's sort key, id and index.
type sortItem struct {
	key, id int64
	i       int32
}

// sortByKey sorts order by col.key, then id, in the column's direction.
func (m *TasksModel) sortByKey(col column) {
	items := m.items[:0]
	for _, i := range m.order {
		t := &m.all[i]
		items = append(items, sortItem{key: col.key(t), id: t.ID, i: i})
	}
	desc := col.numeric != m.reverse
	slices.SortFunc(items, func(a, b sortItem) int {
		c := cmp.Compare(a.key, b.key)
		if c == 0 {
			c = cmp.Compare(a.id, b.id)
		}
		if desc {
			return -c
		}
		return c
	})
	for j := range items {
		m.order[j] = items[j].i
	}
	m.items = items
}

// dir applies the direction: numbers largest first, text ascending, i
// reverses. Ties (by id) follow the same direction.
func (m TasksModel) dir(c int, numeric bool) int {
	if numeric != m.reverse {
		return -c
	}
	return c
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
	if m.move(k, len(m.order)) {
		m.remember()
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
	if len(m.all) == 0 {
		return dimStyle.Render("no tasks yet")
	}
	if len(m.order) == 0 {
		return dimStyle.Render("no task matches the filter " + strconv.Quote(m.filter))
	}
	end := min(len(m.order), m.offset+m.rows)
	visible := m.order[m.offset:end]
	cells := make([][]string, len(visible))
	widths := make([]int, len(taskColumns))
	for c, col := range taskColumns {
		widths[c] = max(col.width, textWidth(col.title)+2)
	}
	for r, i := range visible {
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
			title += map[bool]string{true: "↓", false: "↑"}[col.numeric != m.reverse]
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
		t := &m.all[i]
		selected := m.offset+r == m.cursor
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
