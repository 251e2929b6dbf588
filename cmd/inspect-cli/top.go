package main

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/tui"
)

func newTopCmd(e *env) *cobra.Command {
	var window, interval time.Duration
	var replay string
	cmd := &cobra.Command{
		Use:   "top [target]",
		Short: "Watch the tasks live, like tokio-console: sort, filter, details, wait sites, findings",
		Long: `top follows the target's /api/v1/watch stream and shows the task table live:
warnings, ID, state, name, total, busy, sched, idle, polls, wait reason, location
and labels, with the goroutines by state, the target's Go version and GOMAXPROCS
above. It reconnects by itself when the target goes away and says how many
updates were lost.

Against a program that serves only net/http/pprof, or a gops agent, there is
no watch stream: top takes one snapshot after the other, each computed here
from a trace of --window (a gops agent's lasts 5s), so the table changes
about once per window; the header names the source and the dump budget
(--dump-budget).

Keys: ↑/↓ or j/k move; ←/→ or h/l choose the sort column, i reverses it;
/ filters by text or key=value (enter applies, esc clears); space pauses the
display; enter shows the selected task (histograms, stack), esc goes back;
t tasks, r wait sites, f findings, ? help; q or ctrl+c quits.

--replay FILE plays a recording made by inspect-cli record instead, in the same
view: the header shows the file, the update shown of how many (update 12/340),
its time, playing or paused, and the speed, and says where the target was down.
space plays and pauses; . and , step one update forward and back; ] and [ jump
10 updates; < and > go to the first and last; :N then enter goes to update N;
+ and - change the speed (0.25x to 32x; an outage is not waited for). Details
(enter) show what the recording holds: the task's numbers, not its histograms
or stack, and nothing is asked of the target.`,
		Example: `  inspect-cli top
  inspect-cli top --replay session.jsonl.gz     # a recording made by inspect-cli record
  inspect-cli top 127.0.0.1:7777 --window 10s --interval 2s
  inspect-cli top http://service:6060 --window 2s     # net/http/pprof only
  inspect-cli top 4242                                 # a pid with a gops agent`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if replay != "" {
				if len(args) > 0 {
					return failf(2, "top --replay FILE takes no target: the recording names its own")
				}
				return runReplay(cmd, e, replay)
			}
			if interval < 100*time.Millisecond {
				return failf(2, "--interval %s: want 100ms or more", interval)
			}
			t, err := e.resolve(cmd.Context(), args, 0)
			if err != nil {
				return err
			}
			if t.watch == nil {
				return t.lacks("top", needLive)
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// Only the rows top shows travel, where the target can select
			// them: it asks for a first page, then for what it scrolls to.
			f, err := t.watch.watch(ctx, interval, window, &api.Query{Sort: "id", Limit: 120})
			if err != nil {
				return err
			}
			shown := window
			if f.whole {
				shown = 0 // task details cover the whole trace
			}
			m := tui.New(tui.Config{Target: f.name, Window: shown, Updates: f.updates, Fetch: f.fetch, Context: ctx, Saved: f.whole, Query: f.query})
			p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(e.stdout))
			if _, err := p.Run(); err != nil && ctx.Err() == nil {
				return failf(2, "top: %v", err)
			}
			return nil
		},
	}
	addWindowFlag(cmd, &window)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often the target sends an update")
	cmd.Flags().StringVar(&replay, "replay", "", "play the recording FILE (made by inspect-cli record) instead of a live target")
	return cmd
}
