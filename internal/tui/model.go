// Package tui is the terminal UI of `inspect-cli top`: a live view of a Go
// program's goroutines as tasks, like tokio-console's task view.
//
// The data comes from GET /api/v1/watch (server-sent events): a Stream
// follows it, reconnecting with backoff, and hands each message to the
// program through Listen, a command re-issued after each message. The model
// keeps the state with api.Apply. With Config.Replay it plays a recording
// (internal/recording) instead, with pause, step, seek and speed keys
// (replay.go). Each view (tasks, detail, sites, findings,
// help) is a model with Update and View in its own file; only commands do
// I/O.
//
//	s := tui.NewStream(client.Base, client.Token, time.Second, 5*time.Second)
//	go s.Run(ctx)
//	m := tui.New(tui.Config{Target: addr, Window: 5 * time.Second, Updates: s.C, Fetch: client.Task, Context: ctx})
//	_, err := tea.NewProgram(m, tea.WithContext(ctx)).Run()
package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

// Config is what the model needs from outside.
type Config struct {
	Target  string
	Window  time.Duration
	Updates <-chan tea.Msg // Stream.C
	Fetch   FetchTask      // reads one task for the detail view
	Context context.Context
	// Replay, when set, plays a recording instead of following Updates.
	Replay *Replay
	// Saved says Updates come from a saved file (an execution trace): the
	// header shows no connection.
	Saved bool
	// Query, when set, asks the target for the tasks to show (the
	// Stream's SetQuery): the table is paged, and only what it shows
	// travels.
	Query func(api.Query)
}

type viewID int

const (
	viewTasks viewID = iota
	viewDetail
	viewSites
	viewFindings
	viewHelp
)

// staleTickMsg redraws the header while updates bring the same snapshot.
type staleTickMsg struct{}

func staleTick() tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return staleTickMsg{} })
}

// staleAfter is how long updates may bring the same snapshot before the
// header says so (the target's notes say why): a few intervals.
const staleAfter = 3 * time.Second

// headerLines is the height of the header above each view.
const headerLines = 4

// Model is the whole TUI: the watched state, the connection, and the views.
type Model struct {
	cfg   Config
	state api.Snapshot // up to date, paused or not
	shown api.Snapshot // what the header shows: state, or its copy at the pause

	conn    ConnState
	connErr error
	retry   time.Duration
	status  string // the latest event worth a line: reconnection, missed updates, a target error
	missed  int64  // updates missed in all
	// snapAt is the time of the target's last snapshot, and freshAt when
	// this client first had it: updates that bring the same snapshot (the
	// target's CPU budget spaces its builds out) leave both.
	snapAt, freshAt time.Time
	ticking         bool // a staleTickMsg is due
	updates         int64
	paused          bool
	filtering       bool
	asked           *api.Query // the page the paged table last asked for
	input           string

	view, back viewID
	tasks      TasksModel
	detail     DetailModel
	sites      SitesModel
	findings   FindingsModel
	help       HelpModel
	replay     replayCtl // on: playing a recording (replay.go)

	width, height int
}

// New returns the model; Init starts listening to cfg.Updates.
func New(cfg Config) Model {
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	m := Model{cfg: cfg, tasks: NewTasksModel()}
	if cfg.Query != nil && cfg.Replay == nil {
		m.tasks.SetPaged()
	}
	m.state.Target = cfg.Target
	if cfg.Replay != nil {
		m.replay = newReplayCtl(cfg.Replay)
		m.help.Replay = true
	}
	m.shown = m.state
	m.resize(120, 40)
	return m
}

// Init listens to the stream.
func (m Model) Init() tea.Cmd {
	if m.replay.on {
		return m.replay.start()
	}
	if m.cfg.Updates == nil {
		return nil
	}
	return Listen(m.cfg.Updates)
}

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	body := max(1, h-headerLines)
	m.tasks.SetSize(w, body)
	m.detail.SetSize(w, body)
	m.sites.SetSize(w, body)
	m.findings.SetSize(w, body)
}

// refresh shows the current state.
func (m *Model) refresh() {
	m.shown = m.state
	m.shown.Target = m.cfg.Target
	if m.tasks.Paged() {
		m.tasks.SetView(m.state.View)
	}
	m.tasks.Set(m.state.Tasks)
	m.sites.Set(m.state.Sites)
	m.findings.Set(m.state.Findings, m.state.Notes)
}

// detailRefresh reads the task whose details are open again when a new
// snapshot came: its numbers, and the findings that name it, stay live (a
// finding may come after the details were opened, or go).
func (m Model) detailRefresh(fresh bool) tea.Cmd {
	if !fresh || m.paused || m.view != viewDetail || m.cfg.Fetch == nil || m.replay.on || m.detail.loading {
		return nil
	}
	return fetchTask(m.cfg.Context, m.cfg.Fetch, m.detail.ID, m.cfg.Window)
}

func (m Model) listen() tea.Cmd {
	if m.cfg.Updates == nil {
		return nil
	}
	return Listen(m.cfg.Updates)
}

// Update handles the stream's messages, fetched tasks and keys.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		cmd := m.requery()
		return m, cmd
	case UpdateMsg:
		u := msg.Update
		api.Apply(&m.state, u)
		m.updates++
		fresh := m.freshAt.IsZero() || !m.state.Time.Equal(m.snapAt)
		if fresh {
			m.snapAt, m.freshAt = m.state.Time, time.Now()
		}
		if u.Missed > 0 {
			m.missed += u.Missed
			m.status = missedStatus(u.Missed, u.MissedBuilding)
		}
		if !m.paused {
			m.refresh()
		}
		if !fresh && !m.ticking && m.cfg.Updates != nil && !m.cfg.Saved && !m.replay.on {
			// The same snapshot again: the header counts how long it has
			// shown it, so it is drawn each second, not only on updates,
			// which a target building slowly sends seconds apart.
			m.ticking = true
			return m, tea.Batch(m.listen(), staleTick())
		}
		return m, tea.Batch(m.listen(), m.detailRefresh(fresh))
	case staleTickMsg:
		m.ticking = time.Since(m.freshAt) >= time.Second
		if m.ticking {
			return m, staleTick()
		}
		return m, nil
	case ConnMsg:
		m.conn, m.retry = msg.State, msg.Retry
		if msg.State == Reconnecting {
			m.connErr = msg.Err
		} else {
			m.connErr = nil
			if msg.Err != nil {
				m.status = "target error: " + msg.Err.Error()
			}
		}
		if msg.Reconnected {
			m.missed += msg.Lost
			m.status = fmt.Sprintf("reconnected after %s; %d updates missed", format.Duration(msg.Down), msg.Lost)
		}
		return m, m.listen()
	case TaskMsg:
		var cmd tea.Cmd
		if msg.Findings == nil {
			msg.Findings = m.state.Findings
		}
		m.detail, cmd = m.detail.Update(msg)
		return m, cmd
	case replayStateMsg, replayTickMsg:
		return m.replayUpdate(msg)
	case tea.KeyPressMsg:
		if m.replay.on {
			if rm, cmd, ok := m.replayKey(msg); ok {
				return rm, cmd
			}
		}
		next, cmd := m.key(msg)
		if nm, ok := next.(Model); ok {
			if q := nm.requery(); q != nil {
				return nm, tea.Batch(cmd, q)
			}
		}
		return next, cmd
	}
	return m, nil
}

// requery asks the target for another page when the table moved, sorted
// or filtered past the one it has (a paged table).
func (m *Model) requery() tea.Cmd {
	if !m.tasks.Paged() || m.cfg.Query == nil {
		return nil
	}
	if m.asked != nil && m.tasks.Covers(*m.asked) {
		return nil
	}
	q := m.tasks.Query()
	m.asked = &q
	set := m.cfg.Query
	return func() tea.Msg {
		set(q)
		return nil
	}
}

func (m Model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if m.filtering {
		switch k.String() {
		case "enter":
			m.filtering = false
			m.tasks.SetFilter(m.input)
		case "esc":
			m.filtering = false
			m.input = ""
			m.tasks.SetFilter("")
		case "ctrl+c":
			return m, tea.Quit
		case "backspace":
			if r := []rune(m.input); len(r) > 0 {
				m.input = string(r[:len(r)-1])
			}
		case "space":
			m.input += " "
		default:
			if k.Text != "" {
				m.input += k.Text
			}
		}
		return m, nil
	}
	switch {
	case key.Matches(k, keys.Quit):
		return m, tea.Quit
	case key.Matches(k, keys.Pause):
		m.paused = !m.paused
		if m.paused {
			m.tasks.Freeze()
		} else {
			m.refresh()
		}
		return m, nil
	case key.Matches(k, keys.Help):
		if m.view == viewHelp {
			m.view = m.back
		} else {
			m.back, m.view = m.view, viewHelp
		}
		return m, nil
	case key.Matches(k, keys.Tasks):
		m.view = viewTasks
		return m, nil
	case key.Matches(k, keys.Sites):
		m.view = viewSites
		return m, nil
	case key.Matches(k, keys.Findings):
		m.view = viewFindings
		return m, nil
	case key.Matches(k, keys.Back):
		switch m.view {
		case viewHelp:
			m.view = m.back
		case viewTasks:
			if m.tasks.Filter() != "" {
				m.input = ""
				m.tasks.SetFilter("")
			}
		default:
			m.view = viewTasks
		}
		return m, nil
	}
	var cmd tea.Cmd
	switch m.view {
	case viewTasks:
		switch {
		case key.Matches(k, keys.Filter):
			m.filtering = true
			m.input = m.tasks.Filter()
			return m, nil
		case key.Matches(k, keys.Details):
			t, ok := m.tasks.Selected()
			if !ok {
				return m, nil
			}
			if m.replay.on {
				m.detail, m.view = m.replayDetail(t.ID, 0), viewDetail
				return m, nil
			}
			m.detail = NewDetailModel(t.ID, m.cfg.Window, m.width, max(1, m.height-headerLines))
			m.view = viewDetail
			if m.cfg.Fetch == nil {
				return m, nil
			}
			return m, fetchTask(m.cfg.Context, m.cfg.Fetch, t.ID, m.cfg.Window)
		}
		m.tasks, cmd = m.tasks.Update(k)
	case viewDetail:
		m.detail, cmd = m.detail.Update(k)
	case viewSites:
		m.sites, cmd = m.sites.Update(k)
	case viewFindings:
		m.findings, cmd = m.findings.Update(k)
	}
	return m, cmd
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("6"))
	pausedStyle = lipgloss.NewStyle().Bold(true).Reverse(true).Foreground(lipgloss.Color("3"))
	badStyle    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("1"))
	goodStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	tabStyle    = lipgloss.NewStyle().Bold(true).Reverse(true)
)

// View renders the header and the current view, in the alternate screen.
func (m Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	return v
}

// Render is the screen's text (View's content).
func (m Model) Render() string {
	var b strings.Builder
	b.WriteString(m.header())
	b.WriteByte('\n')
	switch m.view {
	case viewTasks:
		b.WriteString(m.tasks.View())
	case viewDetail:
		b.WriteString(m.detail.View())
	case viewSites:
		b.WriteString(m.sites.View())
	case viewFindings:
		b.WriteString(m.findings.View())
	case viewHelp:
		b.WriteString(m.help.View())
	}
	return b.String()
}

func (m Model) header() string {
	s := &m.shown
	sep := dimStyle.Render(" │ ")
	// 1: the target and the connection.
	parts := []string{titleStyle.Render("inspect-cli top"), "target " + s.Target}
	if s.Process.GoVersion != "" {
		parts = append(parts, s.Process.GoVersion)
	}
	if s.Process.GOMAXPROCS > 0 {
		parts = append(parts, "GOMAXPROCS "+strconv.Itoa(s.Process.GOMAXPROCS))
	}
	var conn string
	switch {
	case m.cfg.Saved && m.conn == Connected:
		conn = goodStyle.Render("■ saved file")
	case m.conn == Connected:
		conn = goodStyle.Render("● connected")
	case m.conn == Reconnecting:
		conn = badStyle.Render("○ reconnecting")
		if m.retry > 0 {
			conn += fmt.Sprintf(" (retry in %s)", format.Duration(m.retry))
		}
	default:
		conn = "○ connecting"
	}
	if m.missed > 0 {
		conn += fmt.Sprintf(" missed %d", m.missed)
	}
	parts = append(parts, conn)
	window := time.Duration(s.WindowNS)
	if window == 0 && s.RecordingSince.IsZero() {
		// No window (a dump); a recording that has none yet shows 0s.
		window = m.cfg.Window
	}
	w := "window " + format.Duration(window)
	if s.ObservedNS > 0 && s.WindowNS > 0 {
		// Traced a part of it, within the target's overhead budget.
		w += fmt.Sprintf(" (traced %s)", format.Percent(float64(s.ObservedNS)/float64(s.WindowNS)))
	}
	if !s.RecordingSince.IsZero() && m.cfg.Window > 0 && window < m.cfg.Window*9/10 && !m.cfg.Saved {
		// The target was not traced before this client asked: the window
		// fills as it records.
		w = warnStyle.Render(fmt.Sprintf("recording: %s of the %s window", format.Duration(window), format.Duration(m.cfg.Window)))
		if window == 0 && s.Time.After(s.RecordingSince) {
			// Nothing analysed yet: how long the target has been at it
			// tells a slow start (a busy target) from a fresh one.
			w = warnStyle.Render(fmt.Sprintf("recording for %s: no window yet", format.Duration(s.Time.Sub(s.RecordingSince).Round(time.Second))))
		}
	}
	parts = append(parts, w)
	if age := time.Since(m.freshAt); m.conn == Connected && !m.cfg.Saved && !m.freshAt.IsZero() && age >= staleAfter {
		// In whole seconds: the header counts them.
		parts = append(parts, warnStyle.Render("same snapshot for "+format.Duration(age.Round(time.Second))))
	}
	parts = append(parts, fmt.Sprintf("notes %d (f)", len(s.Notes)))
	line1 := strings.Join(parts, sep)
	if m.replay.on {
		line1 = m.replayTitle(sep)
	}
	if m.paused {
		line1 = pausedStyle.Render(" PAUSED ") + " " + line1
	}

	// 2: the tasks by state, the sort and the filter.
	counts := fmt.Sprintf("tasks %d", m.tasks.Total())
	var st []string
	for _, k := range []string{"running", "runnable", "waiting", "syscall"} {
		st = append(st, stateStyles[k].Render(k)+" "+strconv.Itoa(m.tasks.byState[k]))
	}
	line2 := counts + " (" + strings.Join(st, ", ") + ")" + sep + "sort " + m.tasks.SortTitle()
	if f := m.tasks.Filter(); f != "" {
		line2 += sep + fmt.Sprintf("filter %q: %d of %d", f, m.tasks.Len(), m.tasks.Total())
	}

	// 3: the filter being typed, or the latest event.
	var line3 string
	switch {
	case m.filtering:
		line3 = "filter: /" + m.input + "█  (text or key=value; enter applies, esc clears)"
	case m.replay.on:
		line3 = m.replayStatus()
	case m.conn == Reconnecting && m.connErr != nil:
		line3 = badStyle.Render("disconnected: " + m.connErr.Error())
	case m.status != "":
		line3 = m.status
	}

	// 4: the views.
	tabs := []struct {
		v     viewID
		label string
	}{{viewTasks, "t tasks"}, {viewSites, "r sites"}, {viewFindings, fmt.Sprintf("f findings (%d)", len(s.Findings))}, {viewHelp, "? help"}}
	var line4 []string
	for _, t := range tabs {
		l := " " + t.label + " "
		if m.view == t.v || (t.v == viewTasks && m.view == viewDetail) {
			l = tabStyle.Render(l)
		}
		line4 = append(line4, l)
	}
	hint := "  space pause  / filter  enter details  q quit"
	if m.replay.on {
		hint = replayHint
	}
	if m.view == viewDetail {
		hint = fmt.Sprintf("  task %d  esc back", m.detail.ID)
	}
	return strings.Join([]string{truncate(line1, m.width), truncate(line2, m.width), truncate(line3, m.width),
		truncate(strings.Join(line4, " ")+dimStyle.Render(hint), m.width)}, "\n")
}

// missedStatus says why the target skipped updates: it built them slower
// than the interval (building of them), or this client read too slowly.
func missedStatus(missed, building int64) string {
	what := "1 update"
	if missed != 1 {
		what = fmt.Sprintf("%d updates", missed)
	}
	switch building = min(building, missed); building {
	case missed:
		return fmt.Sprintf("the target skipped %s: building one took longer than the interval", what)
	case 0:
		return fmt.Sprintf("the target skipped %s: this client read too slowly", what)
	default:
		return fmt.Sprintf("the target skipped %s: %d while building one took longer than the interval, %d as this client read too slowly",
			what, building, missed-building)
	}
}
