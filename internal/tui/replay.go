package tui

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/recording"
)

// Replay is a recording to play in the TUI instead of following a target
// (`inspect-cli top --replay FILE`).
type Replay struct {
	File   string
	Player *recording.Player
	// Paused starts the replay paused at the first update.
	Paused bool
}

// replayKeys are the keys of a replay; none is a key of the live view
// except space, which plays and pauses instead of freezing the display.
var replayKeys = struct {
	Play, Step, Back, Forward10, Back10, First, Last, GoTo, Faster, Slower key.Binding
}{
	Play:      key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "play / pause the replay")),
	Step:      key.NewBinding(key.WithKeys("."), key.WithHelp(".", "next update (pauses)")),
	Back:      key.NewBinding(key.WithKeys(","), key.WithHelp(",", "previous update (pauses)")),
	Forward10: key.NewBinding(key.WithKeys("]"), key.WithHelp("]", "10 updates forward")),
	Back10:    key.NewBinding(key.WithKeys("["), key.WithHelp("[", "10 updates back")),
	First:     key.NewBinding(key.WithKeys("<"), key.WithHelp("<", "first update")),
	Last:      key.NewBinding(key.WithKeys(">"), key.WithHelp(">", "last update")),
	GoTo:      key.NewBinding(key.WithKeys(":"), key.WithHelp(":N", "go to update N (enter; esc cancels)")),
	Faster:    key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "play faster (up to 32x)")),
	Slower:    key.NewBinding(key.WithKeys("-"), key.WithHelp("-", "play slower (down to 0.25x)")),
}

// replaySpeeds are the playback speeds, as factors of the recorded pace.
var replaySpeeds = []float64{0.25, 0.5, 1, 2, 4, 8, 16, 32}

const normalSpeed = 2 // replaySpeeds[2] == 1

// replayCtl is the replay's part of the model. The player works in commands
// (one at a time: busy), never in Update, so a long seek in a big recording
// leaves the screen responsive.
type replayCtl struct {
	on       bool
	file     string
	p        *recording.Player
	header   recording.Header
	metas    []recording.Meta // of each update
	n        int              // updates that can be played
	pos      int              // the update shown; -1 before the first arrives
	want     int              // the update wanted
	busy     bool
	playing  bool
	speed    int // index in replaySpeeds
	gen      int // of the playback timer: a tick of an older one is ignored
	events   []recording.Entry
	after    []recording.Entry // what follows the last update
	err      error
	goingTo  bool
	input    string
	interval time.Duration
	end      *recording.End // the end line, if the recorder stopped cleanly
}

// replayStateMsg is the state at update k, or why it could not be read.
type replayStateMsg struct {
	k      int
	snap   *api.Snapshot
	events []recording.Entry
	after  []recording.Entry
	n      int
	err    error
}

// replayTickMsg is the playback timer.
type replayTickMsg struct{ gen int }

func newReplayCtl(r *Replay) replayCtl {
	c := replayCtl{on: true, file: r.File, p: r.Player, pos: -1, speed: normalSpeed, playing: !r.Paused}
	c.header = r.Player.Reader().Header
	c.n = r.Player.Len()
	for k := range c.n {
		c.metas = append(c.metas, r.Player.Meta(k))
	}
	c.interval = time.Duration(c.header.IntervalNS)
	if c.interval <= 0 {
		c.interval = time.Second
	}
	c.err = r.Player.Err
	if e, ok := r.Player.Reader().Ended(); ok {
		c.end = &e
	}
	// Init loads the first update.
	c.busy = c.n > 0
	return c
}

// start is Init's command: the first update (busy is set already, as Init
// cannot change the model).
func (c *replayCtl) start() tea.Cmd {
	if c.n == 0 {
		return nil
	}
	return c.load(0)
}

// seek asks the player for update want, unless it is already busy.
func (c *replayCtl) seek() tea.Cmd {
	if c.busy || c.n == 0 || c.want == c.pos {
		return nil
	}
	c.busy = true
	return c.load(c.want)
}

// load is the command that reads update k.
func (c *replayCtl) load(k int) tea.Cmd {
	p := c.p
	return func() tea.Msg {
		snap, err := p.At(k)
		msg := replayStateMsg{k: k, snap: snap, err: err}
		if err == nil {
			msg.events, _ = p.Events(k)
			if k == p.Len()-1 {
				msg.after, _ = p.Events(k + 1)
			}
		}
		msg.n = p.Len()
		return msg
	}
}

// tick schedules the next update at the recorded pace, speeded up.
func (c *replayCtl) tick() tea.Cmd {
	if !c.playing || c.busy || c.pos < 0 || c.pos >= c.n-1 {
		return nil
	}
	d := c.interval
	if a, b := c.metas[c.pos].Time, c.metas[c.pos+1].Time; !a.IsZero() && !b.IsZero() && b.After(a) {
		d = b.Sub(a)
	}
	// An outage is shown, not waited for.
	d = min(d, 3*c.interval)
	d = time.Duration(float64(d) / replaySpeeds[c.speed])
	gen := c.gen
	return tea.Tick(max(d, 10*time.Millisecond), func(time.Time) tea.Msg { return replayTickMsg{gen: gen} })
}

// moveTo wants update k (clamped).
func (c *replayCtl) moveTo(k int) tea.Cmd {
	c.want = max(0, min(k, c.n-1))
	c.gen++
	return c.seek()
}

// replayUpdate handles the replay's messages.
func (m Model) replayUpdate(msg tea.Msg) (tea.Model, tea.Cmd) {
	c := &m.replay
	switch msg := msg.(type) {
	case replayStateMsg:
		c.busy = false
		c.n = msg.n
		if msg.err != nil {
			c.err = msg.err
			c.want = max(0, min(c.want, c.n-1))
			if c.pos >= c.n {
				// The update shown is past the damage: what is left of the
				// recording no longer holds it, so load the one wanted.
				c.pos = -1
			}
		}
		if msg.snap != nil {
			c.pos, c.events, c.after = msg.k, msg.events, msg.after
			m.state = *msg.snap
			m.refresh()
			if m.view == viewDetail {
				m.detail = m.replayDetail(m.detail.ID, m.detail.offset)
			}
		}
		if c.want != c.pos {
			return m, c.seek()
		}
		if c.playing && c.pos >= c.n-1 {
			c.playing = false
		}
		return m, c.tick()
	case replayTickMsg:
		if msg.gen != c.gen || !c.playing || c.busy {
			return m, nil
		}
		c.want = c.pos + 1
		return m, c.seek()
	}
	return m, nil
}

// replayKey handles the replay's keys; ok is false for the others.
func (m Model) replayKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd, bool) {
	c := &m.replay
	if m.filtering {
		return m, nil, false
	}
	if c.goingTo {
		switch k.String() {
		case "enter":
			c.goingTo = false
			n, err := strconv.Atoi(c.input)
			c.input = ""
			if err != nil {
				return m, nil, true
			}
			return m, c.moveTo(n - 1), true
		case "esc":
			c.goingTo, c.input = false, ""
		case "ctrl+c":
			return m, tea.Quit, true
		case "backspace":
			if c.input != "" {
				c.input = c.input[:len(c.input)-1]
			}
		default:
			if len(k.Text) == 1 && k.Text[0] >= '0' && k.Text[0] <= '9' && len(c.input) < 9 {
				c.input += k.Text
			}
		}
		return m, nil, true
	}
	rk := replayKeys
	switch {
	case key.Matches(k, rk.Play):
		c.playing = !c.playing
		c.gen++
		if c.playing && c.want >= c.n-1 && c.pos >= c.n-1 {
			// Play at the end starts again.
			return m, c.moveTo(0), true
		}
		return m, c.tick(), true
	case key.Matches(k, rk.Step):
		c.playing = false
		return m, c.moveTo(c.want + 1), true
	case key.Matches(k, rk.Back):
		c.playing = false
		return m, c.moveTo(c.want - 1), true
	case key.Matches(k, rk.Forward10):
		return m, c.moveTo(c.want + 10), true
	case key.Matches(k, rk.Back10):
		return m, c.moveTo(c.want - 10), true
	case key.Matches(k, rk.First):
		return m, c.moveTo(0), true
	case key.Matches(k, rk.Last):
		return m, c.moveTo(c.n - 1), true
	case key.Matches(k, rk.GoTo):
		c.goingTo, c.input = true, ""
		return m, nil, true
	case key.Matches(k, rk.Faster):
		c.speed = min(c.speed+1, len(replaySpeeds)-1)
		c.gen++
		return m, c.tick(), true
	case key.Matches(k, rk.Slower):
		c.speed = max(c.speed-1, 0)
		c.gen++
		return m, c.tick(), true
	}
	return m, nil, false
}

// speedString is 1x, 0.5x, 16x.
func speedString(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "x" }

// replayTitle is the header's first line in a replay:
// replay FILE │ update 12/340 │ 2026-11-27 17:02:03 │ ‖ paused │ 1x │ target ...
func (m Model) replayTitle(sep string) string {
	c := &m.replay
	s := &m.shown
	parts := []string{titleStyle.Render("replay") + " " + c.file}
	pos := "update -"
	if c.pos >= 0 {
		pos = fmt.Sprintf("update %d", c.pos+1)
	}
	pos += fmt.Sprintf("/%d", c.n)
	if c.busy && c.want != c.pos {
		pos += fmt.Sprintf(" → %d", c.want+1)
	}
	parts = append(parts, pos)
	if !s.Time.IsZero() {
		parts = append(parts, s.Time.Format("2006-01-02 15:04:05"))
	}
	switch {
	case c.n == 0:
		parts = append(parts, badStyle.Render("no updates"))
	case c.playing:
		parts = append(parts, goodStyle.Render("▶ playing"))
	case c.pos >= c.n-1:
		parts = append(parts, pausedStyle.Render(" END "))
	default:
		parts = append(parts, pausedStyle.Render(" PAUSED "))
	}
	parts = append(parts, speedString(replaySpeeds[c.speed]))
	parts = append(parts, "target "+c.header.Target)
	if s.Process.GoVersion != "" {
		parts = append(parts, s.Process.GoVersion)
	}
	if s.Process.GOMAXPROCS > 0 {
		parts = append(parts, "GOMAXPROCS "+strconv.Itoa(s.Process.GOMAXPROCS))
	}
	window := time.Duration(s.WindowNS)
	if window == 0 {
		window = time.Duration(c.header.WindowNS)
	}
	parts = append(parts, "window "+format.Duration(window), fmt.Sprintf("notes %d", len(s.Notes)))
	return strings.Join(parts, sep)
}

// replayStatus is the header's event line in a replay: the prompt, a
// corrupt line, an outage before the update shown, the end.
func (m Model) replayStatus() string {
	c := &m.replay
	if c.goingTo {
		return fmt.Sprintf("go to update: %s█  (1 to %d; enter goes, esc cancels)", c.input, c.n)
	}
	var out []string
	for _, e := range c.events {
		out = append(out, eventString(e, true))
	}
	if m.status != "" {
		out = append(out, m.status)
	}
	if c.pos >= 0 && c.pos == c.n-1 {
		for _, e := range c.after {
			if e.Kind == recording.KindConn {
				out = append(out, eventString(e, false))
			}
		}
		end := "end of the recording"
		if e := c.end; e != nil && c.err == nil {
			end += fmt.Sprintf(" (%d updates; stopped: %s)", e.Updates, e.Reason)
		} else if c.err == nil {
			end += " (no end line: the recorder did not stop cleanly)"
		}
		out = append(out, end)
	}
	line := strings.Join(out, "; ")
	if c.err != nil {
		line = badStyle.Render(fmt.Sprintf("the recording is damaged at %v: it plays up to update %d", c.err, c.n)) + "  " + line
	}
	return line
}

// eventString says what a conn line tells: before says it happened before
// the update shown (else after the last one).
func eventString(e recording.Entry, before bool) string {
	if e.Conn == nil {
		return ""
	}
	at := e.Time.Format("15:04:05")
	switch e.Conn.State {
	case recording.ConnDown:
		s := "the target went down at " + at
		if e.Conn.Error != "" {
			s += " (" + e.Conn.Error + ")"
		}
		if !before {
			s += " and was not back before the recording stopped"
		}
		return badStyle.Render(s)
	case recording.ConnUp:
		return fmt.Sprintf("back at %s after %s down; %d updates lost", at, format.Nanos(e.Conn.DownNS), e.Conn.Lost)
	case recording.ConnError:
		return "target error at " + at + ": " + e.Conn.Error
	}
	return ""
}

// replayHint is the key hint of the header's last line.
const replayHint = "  space play/pause  ,/. step  [/] ±10  </> ends  :N go to  +/- speed  q quit"

// replayDetail is the detail view of task id at the update shown: what the
// recording has, without asking the target.
func (m Model) replayDetail(id int64, offset int) DetailModel {
	d := NewDetailModel(id, m.cfg.Window, m.width, max(1, m.height-headerLines))
	d.loading = false
	i, ok := slices.BinarySearchFunc(m.state.Tasks, id, func(t api.Task, id int64) int {
		switch {
		case t.ID < id:
			return -1
		case t.ID > id:
			return 1
		}
		return 0
	})
	c := &m.replay
	if !ok {
		d.err = fmt.Errorf("not in the recording at update %d (esc: back)", c.pos+1)
		return d
	}
	t := m.state.Tasks[i]
	var b strings.Builder
	note := fmt.Sprintf("as recorded at update %d (%s); nothing is asked of the target.",
		c.pos+1, m.state.Time.Format("2006-01-02 15:04:05"))
	WriteRecordedTask(&b, &t, note, time.Duration(m.state.WindowNS))
	d.lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	d.offset = max(0, min(offset, len(d.lines)-d.height))
	return d
}

// WriteRecordedTask prints a task as a recording keeps it: what WriteTask
// prints but the histograms and the stack, which only a live target gives
// (GET /api/v1/tasks/{id}). note says where it comes from.
func WriteRecordedTask(w io.Writer, t *api.Task, note string, window time.Duration) {
	note += fmt.Sprintf("\nA recording keeps the task table only: no run-time or sched-delay histograms, no stack\n"+
		"(`inspect-cli task %d TARGET` shows them from a live target).", t.ID)
	WriteTask(w, t, note, window)
	fmt.Fprintf(w, "\nover the trace window (%s) at that update:\n", format.Duration(window))
	writeStats(w, &t.Stats)
}
