package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/tui"
)

func newSitesCmd(e *env) *cobra.Command {
	var (
		window time.Duration
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "sites [target]",
		Short: "Print the wait sites: where goroutines block, how long, and who wakes them",
		Long: `sites prints the places where goroutines wait (tokio-console's resources): a wait
reason at a blocking call site, how many goroutines wait there now, their total
wait in the trace window, how many wake-ups there were, and the top frame of the
stack that most often woke them (WAKER). Sites with the most wait come first.`,
		Example: `  inspect-cli sites
  inspect-cli sites 127.0.0.1:7777 --window 10s --limit 10
  inspect-cli sites --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return failf(2, "--limit %d: want 0 (all) or more", limit)
			}
			t, err := e.resolve(cmd.Context(), args, 0)
			if err != nil {
				return err
			}
			if t.sites == nil {
				return t.lacks("sites", needLive)
			}
			l, err := t.sites.sites(cmd.Context(), window)
			if err != nil {
				return err
			}
			matched := len(l.Sites)
			if limit > 0 && len(l.Sites) > limit {
				l.Sites = l.Sites[:limit]
			}
			w := cmd.OutOrStdout()
			if e.output == "json" {
				return writeJSON(w, l.SiteList)
			}
			writeSites(w, l, matched)
			return nil
		},
	}
	addWindowFlag(cmd, &window)
	cmd.Flags().IntVar(&limit, "limit", 50, "print at most N sites (0: all)")
	return cmd
}

// wakerFrame is the first frame of the waking stack outside the runtime and
// sync: the code that unlocked, sent or closed.
var wakerFrame = tui.WakerFrame

// writeSites prints the wait-site table of l, of matched sites in all.
func writeSites(w io.Writer, l *siteList, matched int) {
	fmt.Fprintf(w, "target %s  window %s  sites %d\n", l.target, format.Nanos(l.WindowNS), matched)
	for _, n := range l.notes {
		fmt.Fprintln(w, "note:", n)
	}
	tw := table(w)
	fmt.Fprintln(tw, "REASON\tLOCATION\tWAITING\tWAIT\tWAKEUPS\tWAKER")
	for _, s := range l.Sites {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", s.Reason, clip(format.Frame(s.Location), 70),
			s.Waiting, format.Nanos(s.WaitNS), s.Wakeups, clip(wakerFrame(s.Waker), 60))
	}
	tw.Flush()
	if matched > len(l.Sites) {
		fmt.Fprintf(w, "... %d more (--limit 0 shows all)\n", matched-len(l.Sites))
	}
}
