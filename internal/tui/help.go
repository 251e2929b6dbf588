package tui

import (
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
)

// HelpModel lists the keys; esc or ? closes it.
type HelpModel struct {
	Replay bool // list the keys of a replay too
}

// View renders the key list.
func (h HelpModel) View() string {
	groups := []struct {
		title string
		keys  []key.Binding
	}{
		{"move", []key.Binding{keys.Up, keys.Down, keys.PageUp, keys.PageDown, keys.Home, keys.End}},
		{"tasks", []key.Binding{keys.SortLeft, keys.SortRight, keys.Reverse, keys.Filter, keys.Details, keys.Back, keys.Pause}},
		{"views", []key.Binding{keys.Tasks, keys.Sites, keys.Findings, keys.Help, keys.Quit}},
	}
	if h.Replay {
		rk := replayKeys
		groups[1].keys = slices.DeleteFunc(slices.Clone(groups[1].keys), func(b key.Binding) bool { return b.Help() == keys.Pause.Help() })
		groups = append(groups, struct {
			title string
			keys  []key.Binding
		}{"replay", []key.Binding{rk.Play, rk.Step, rk.Back, rk.Forward10, rk.Back10, rk.First, rk.Last, rk.GoTo, rk.Faster, rk.Slower}})
	}
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(headStyle.Render(g.title) + "\n")
		for _, k := range g.keys {
			h := k.Help()
			b.WriteString("  " + pad(h.Key, 10, false) + h.Desc + "\n")
		}
	}
	b.WriteString("\nColumns: Warn (findings naming the task), Total/Busy/Sched/Idle (time in the window:\n" +
		"existing, running, runnable but not running, waiting), Polls (times scheduled).")
	return b.String()
}
