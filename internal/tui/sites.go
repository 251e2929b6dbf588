package tui

import (
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

// SitesModel is the wait sites table, tokio-console's resources: where
// goroutines wait, how many now, for how long in the window, how often they
// were woken and by whom.
type SitesModel struct {
	sites []api.Site
	list
	width int
}

// Set replaces the sites.
func (m *SitesModel) Set(sites []api.Site) {
	m.sites = sites
	m.clamp(len(sites))
}

// SetSize sets the area the table may use.
func (m *SitesModel) SetSize(width, height int) {
	m.width, m.rows = width, max(1, height-1)
	m.clamp(len(m.sites))
}

// Update moves the cursor.
func (m SitesModel) Update(msg tea.Msg) (SitesModel, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	m.move(k, len(m.sites))
	return m, nil
}

var siteColumns = []struct {
	title string
	max   int
	right bool
}{{"Reason", 24, false}, {"Location", 50, false}, {"Waiting", 8, true}, {"Wait", 12, true}, {"Wakeups", 8, true}, {"Waker", 60, false}}

// View renders the visible rows.
func (m SitesModel) View() string {
	if len(m.sites) == 0 {
		return dimStyle.Render("no wait sites in the window")
	}
	end := min(len(m.sites), m.offset+m.rows)
	cells := make([][]string, 0, end-m.offset)
	widths := make([]int, len(siteColumns))
	for c, col := range siteColumns {
		widths[c] = textWidth(col.title)
	}
	for _, s := range m.sites[m.offset:end] {
		row := []string{s.Reason, format.Frame(s.Location), strconv.Itoa(s.Waiting), format.Nanos(s.WaitNS),
			strconv.FormatInt(s.Wakeups, 10), WakerFrame(s.Waker)}
		for c, v := range row {
			widths[c] = min(max(widths[c], textWidth(v)), siteColumns[c].max)
		}
		cells = append(cells, row)
	}
	var b strings.Builder
	join := func(row []string) string {
		parts := make([]string, len(row))
		for c, v := range row {
			parts[c] = pad(v, widths[c], siteColumns[c].right)
		}
		return truncate(strings.Join(parts, "  "), m.width)
	}
	head := make([]string, len(siteColumns))
	for c, col := range siteColumns {
		head[c] = col.title
	}
	b.WriteString(headStyle.Render(join(head)))
	for r, row := range cells {
		b.WriteByte('\n')
		line := join(row)
		if m.offset+r == m.cursor {
			line = selectedStyle.Render(pad(line, m.width, false))
		}
		b.WriteString(line)
	}
	return b.String()
}
