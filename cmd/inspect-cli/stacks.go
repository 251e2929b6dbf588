package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/format"
)

// maxStacksGoroutines is the most goroutines `stacks` dumps without --force:
// the debug=2 dump stops the target's world for ~6µs per goroutine.
const maxStacksGoroutines = 100_000

// stackGroup is goroutines with an identical stack (functions and lines).
type stackGroup struct {
	Count       int            `json:"count"`
	IDs         []int64        `json:"ids"`
	States      map[string]int `json:"states"`       // "chan receive", "running", ... -> count
	MinMinutes  int            `json:"min_minutes"`  // wait minutes, lowest
	MaxMinutes  int            `json:"max_minutes"`  // and highest
	Labels      []string       `json:"labels"`       // distinct label sets, k=v,k=v
	Leaked      int            `json:"leaked"`       // of them reported leaked
	Stack       []api.Frame    `json:"stack"`        // top first
	CreatedBy   api.Frame      `json:"created_by"`   // the go statement
	ParentCount int            `json:"parent_count"` // distinct creator goroutines
}

func newStacksCmd(e *env) *cobra.Command {
	var (
		force bool
		limit int
	)
	cmd := &cobra.Command{
		Use:   "stacks [target]",
		Short: "Group goroutines by identical stack, with counts (like panicparse)",
		Long: `stacks reads a full goroutine dump and prints the goroutines grouped by identical
stack (the same functions at the same lines, and the same creator), largest group
first: the count, the states and wait minutes, the label sets, then the stack.

The target may be a saved dump file (curl host/debug/pprof/goroutine?debug=2,
a panic's or SIGQUIT's output), any program serving net/http/pprof (inspectd,
an agent, or your own service), or a gops agent. A live dump stops the target's
world for about 6µs per goroutine (0.6s at 100,000 goroutines): stacks first
reads the goroutine count (from /debug/pprof/goroutine?debug=1, or the gops
agent's stats, neither of which stops the world), refuses above 100,000
goroutines unless --force, and notes the pause it caused. It takes one dump on
request: --dump-budget, which spaces the dumps of tasks, task, sites and top,
does not apply.

A saved execution trace file gives the goroutines alive at its end, each with
the latest stack the trace recorded for it (where it waits, or where it last
blocked, yielded or woke), without labels or wait minutes.`,
		Example: `  inspect-cli stacks goroutines.txt
  inspect-cli stacks 127.0.0.1:7777 --limit 5
  inspect-cli stacks http://service:6060 --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return failf(2, "--limit %d: want 0 (all) or more", limit)
			}
			t, err := e.resolve(cmd.Context(), args, 0)
			if err != nil {
				return err
			}
			if t.dump == nil {
				return t.lacks("stacks", needDump)
			}
			gs, notes, err := t.dump.goroutines(cmd.Context(), force)
			if err != nil {
				return err
			}
			groups := groupStacks(gs)
			w := cmd.OutOrStdout()
			if e.output == "json" {
				if limit > 0 && len(groups) > limit {
					groups = groups[:limit]
				}
				return writeJSON(w, struct {
					Target     string       `json:"target"`
					Goroutines int          `json:"goroutines"`
					Notes      []string     `json:"notes,omitempty"`
					Groups     []stackGroup `json:"groups"`
				}{t.name, len(gs), notes, groups})
			}
			fmt.Fprintf(w, "target %s  goroutines %d  stacks %d\n", t.name, len(gs), len(groups))
			for _, n := range notes {
				fmt.Fprintln(w, "note:", n)
			}
			for i := range groups {
				if limit > 0 && i == limit {
					fmt.Fprintf(w, "\n... %d more stacks (--limit 0 shows all)\n", len(groups)-limit)
					break
				}
				writeGroup(w, &groups[i])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "dump even above 100,000 goroutines (stops the target's world ~6µs per goroutine)")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most N stacks, largest first (0: all)")
	return cmd
}

// groupStacks groups goroutines by frames (function, file, line) and
// creator, largest group first, then by lowest id.
func groupStacks(gs []dump.Goroutine) []stackGroup {
	index := map[string]int{}
	var groups []stackGroup
	parents := map[int]map[int64]bool{}
	labelSets := map[int]map[string]bool{}
	var key strings.Builder
	for i := range gs {
		g := &gs[i]
		key.Reset()
		for _, f := range g.Frames {
			fmt.Fprintf(&key, "%s\x00%s\x00%d\x00", f.Func, f.File, f.Line)
		}
		fmt.Fprintf(&key, "c\x00%s\x00%s\x00%d", g.CreatedBy.Func, g.CreatedBy.File, g.CreatedBy.Line)
		k := key.String()
		gi, ok := index[k]
		if !ok {
			gi = len(groups)
			index[k] = gi
			sg := stackGroup{States: map[string]int{}, MinMinutes: g.WaitMinutes, CreatedBy: g.CreatedBy.API()}
			for _, f := range g.Frames {
				sg.Stack = append(sg.Stack, f.API())
			}
			groups = append(groups, sg)
			parents[gi] = map[int64]bool{}
			labelSets[gi] = map[string]bool{}
		}
		sg := &groups[gi]
		sg.Count++
		sg.IDs = append(sg.IDs, g.ID)
		state := g.WaitReason
		if state == "" {
			state = g.State.String()
		}
		sg.States[state]++
		sg.MinMinutes = min(sg.MinMinutes, g.WaitMinutes)
		sg.MaxMinutes = max(sg.MaxMinutes, g.WaitMinutes)
		if g.Leaked {
			sg.Leaked++
		}
		if g.ParentID != 0 {
			parents[gi][g.ParentID] = true
		}
		if len(g.Labels) > 0 {
			labelSets[gi][labelString(g.Labels)] = true
		}
	}
	for i := range groups {
		groups[i].ParentCount = len(parents[i])
		groups[i].Labels = slices.Sorted(maps.Keys(labelSets[i]))
		slices.Sort(groups[i].IDs)
	}
	slices.SortStableFunc(groups, func(a, b stackGroup) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.IDs[0], b.IDs[0])
	})
	return groups
}

func writeGroup(w io.Writer, g *stackGroup) {
	var states []string
	for _, s := range slices.Sorted(maps.Keys(g.States)) {
		if len(g.States) == 1 {
			states = append(states, s)
		} else {
			states = append(states, fmt.Sprintf("%s ×%d", s, g.States[s]))
		}
	}
	line := fmt.Sprintf("%d: %s", g.Count, strings.Join(states, ", "))
	switch {
	case g.MaxMinutes > 0 && g.MinMinutes != g.MaxMinutes:
		line += fmt.Sprintf(" [%d-%d minutes]", g.MinMinutes, g.MaxMinutes)
	case g.MaxMinutes > 0:
		line += fmt.Sprintf(" [%d minutes]", g.MaxMinutes)
	}
	if g.Leaked > 0 {
		line += fmt.Sprintf(" (leaked: %d)", g.Leaked)
	}
	fmt.Fprintf(w, "\n%s\n", line)
	ids := make([]string, 0, 10)
	for _, id := range g.IDs[:min(len(g.IDs), 10)] {
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	more := ""
	if len(g.IDs) > 10 {
		more = fmt.Sprintf(" ... (%d more)", len(g.IDs)-10)
	}
	fmt.Fprintf(w, "    goroutines %s%s\n", strings.Join(ids, " "), more)
	for i, l := range g.Labels {
		if i == 3 {
			fmt.Fprintf(w, "    ... %d more label sets\n", len(g.Labels)-3)
			break
		}
		fmt.Fprintf(w, "    labels {%s}\n", l)
	}
	tw := table(w)
	for _, f := range g.Stack {
		if f.File == "" {
			fmt.Fprintf(tw, "    %s\t\n", format.Func(f.Function))
			continue
		}
		fmt.Fprintf(tw, "    %s\t%s\n", format.Func(f.Function), format.FileLine(f.File, f.Line))
	}
	if g.CreatedBy.Function != "" {
		by := ""
		if g.ParentCount == 1 {
			by = " (one parent)"
		} else if g.ParentCount > 1 {
			by = fmt.Sprintf(" (%d parents)", g.ParentCount)
		}
		fmt.Fprintf(tw, "    created by %s%s\t%s\n", format.Func(g.CreatedBy.Function), by, format.FileLine(g.CreatedBy.File, g.CreatedBy.Line))
	}
	tw.Flush()
}
