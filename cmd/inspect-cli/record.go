package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/recording"
	"github.com/inspectd/inspectd/internal/tui"
)

func newRecordCmd(e *env) *cobra.Command {
	var (
		out                        string
		interval, window, duration time.Duration
		force                      bool
	)
	cmd := &cobra.Command{
		Use:   "record [target] -o FILE",
		Short: "Record the task table over time to a file, to play it back with top --replay",
		Long: `record follows the target's /api/v1/watch stream, as top does, and writes every
update to FILE until ctrl+c (or SIGTERM), or for --duration. Play it back with
inspect-cli top --replay FILE: pause, step, seek and speed. inspect-cli tasks FILE
and sites FILE print its last update.

Each update is written as it arrives, so the file is complete and readable
after ctrl+c, and a recording cut short by a crash keeps every update before the
cut. When the target goes away, record keeps trying to reconnect and writes
down the outage (how long, how many updates it cost); replay shows it there.
A target that cannot be reached at the start fails at once (exit 2). Progress
(updates, size, time, connection) goes to stderr.

The file is gzip'd JSON lines (zcat FILE | jq reads it): a header line
{"format":"inspectd-recording","version":1,"target",...}, then one line per
update (the api.Update of the watch stream; a full one every 30 updates or
sooner, so that replay can seek) and per connection change, and an end line.
Each line is a gzip member of its own, indexed in its gzip header, so that
replay seeks without decompressing the file. The size grows with the goroutines
and how many change: the default inspectd (a few hundred goroutines, most of
them busy) makes about 1 MB a minute at --interval 1s.

A program that serves only net/http/pprof, or a gops agent, has no watch stream:
record then writes the snapshots computed here one after the other (one per
--window at most, as top shows them; see inspect-cli --help for their cost).
It will not overwrite FILE unless --force.`,
		Example: `  inspect-cli record -o session.jsonl.gz                  # ctrl+c stops
  inspect-cli record 127.0.0.1:7777 -o leak.jsonl.gz --duration 5m --interval 2s
  inspect-cli top --replay leak.jsonl.gz
  inspect-cli tasks leak.jsonl.gz --sort busy              # its last update
  zcat leak.jsonl.gz | jq -c 'select(.kind=="conn")'       # its outages`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return failf(2, "record needs -o FILE, the file to write (see inspect-cli record --help)")
			}
			if interval < 100*time.Millisecond {
				return failf(2, "--interval %s: want 100ms or more", interval)
			}
			if duration < 0 {
				return failf(2, "--duration %s: want a positive duration (0: until interrupted)", duration)
			}
			if !force {
				if _, err := os.Stat(out); err == nil {
					return failf(2, "%s exists: pass --force to overwrite it", out)
				}
			}
			t, err := e.resolve(cmd.Context(), args, 0)
			if err != nil {
				return err
			}
			if t.watch == nil || t.saved {
				return t.lacks("record", needLive)
			}
			return record(cmd, e, t, recordOptions{out: out, interval: interval, window: window, duration: duration, force: force})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "file to write (required)")
	f.DurationVar(&interval, "interval", time.Second, "how often the target sends an update")
	addWindowFlag(cmd, &window)
	f.DurationVar(&duration, "duration", 0, "stop after this long (default: until ctrl+c or SIGTERM)")
	f.BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}

type recordOptions struct {
	out                        string
	interval, window, duration time.Duration
	force                      bool
}

// recorder writes the stream's messages to the file, which it creates at
// the first update.
type recorder struct {
	o       recordOptions
	target  string
	f       *os.File
	w       *recording.Writer
	began   time.Time
	down    bool // the stream is down (a "down" line was written)
	outages int
	downFor time.Duration
	conn    string // for the progress line
}

func record(cmd *cobra.Command, e *env, t *target, o recordOptions) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if o.duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, o.duration)
		defer stop()
	}
	// The watch stream of inspectd or an agent; for a net/http/pprof program
	// or a gops agent, the snapshots computed here one after the other.
	f, err := t.watch.watch(ctx, o.interval, o.window, nil)
	if err != nil {
		return err
	}

	r := &recorder{o: o, target: f.name, began: time.Now(), conn: "connecting"}
	tty := isTerminal(e.stderr)
	progress := time.NewTicker(250 * time.Millisecond)
	defer progress.Stop()
	lastLine := time.Now()
	drawn := false
	say := func(format string, args ...any) {
		if drawn {
			fmt.Fprint(e.stderr, "\r\033[K")
			drawn = false
		}
		fmt.Fprintf(e.stderr, format+"\n", args...)
	}
	// Said once the target answered: a target that fails at once gets its
	// one error line only.
	started := false

	var werr error
loop:
	for {
		select {
		case msg, ok := <-f.updates:
			if !ok {
				break loop
			}
			switch msg := msg.(type) {
			case tui.UpdateMsg:
				if !started && !tty {
					say("recording %s to %s (ctrl+c stops)", t.name, o.out)
				}
				started = true
				if werr = r.update(msg.Update); werr != nil {
					cancel()
					break loop
				}
			case tui.ConnMsg:
				if r.w == nil && msg.State == tui.Reconnecting {
					// Never connected: the target is wrong or away.
					cancel()
					if msg.Err == nil {
						msg.Err = errors.New("no answer")
					}
					return f.fail(msg.Err)
				}
				note, err := r.connChange(msg)
				if err != nil {
					werr = err
					cancel()
					break loop
				}
				if note != "" && !tty {
					say("%s", note)
				}
			}
		case <-progress.C:
			if tty {
				fmt.Fprintf(e.stderr, "\r\033[K%s", r.progress())
				drawn = true
			} else if time.Since(lastLine) >= 10*time.Second {
				say("%s", r.progress())
				lastLine = time.Now()
			}
		}
	}
	if drawn {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if r.w == nil {
		if werr != nil {
			return werr
		}
		return failf(exitInterrupted, "interrupted before the first update from %s: nothing recorded", t.name)
	}
	reason := "interrupted"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = "duration"
	}
	if werr == nil {
		werr = r.w.Close(time.Now(), reason)
	}
	if err := r.f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return failf(2, "writing %s: %v (the %d updates before are kept)", o.out, werr, r.w.Updates())
	}
	return r.report(cmd.OutOrStdout(), e)
}

// update writes u, creating the file at the first one.
func (r *recorder) update(u api.Update) error {
	now := time.Now()
	if r.w == nil {
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if r.o.force {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(r.o.out, flags, 0o644)
		if errors.Is(err, os.ErrExist) {
			return failf(2, "%s exists: pass --force to overwrite it", r.o.out)
		}
		if err != nil {
			return failf(2, "%v", err)
		}
		w, err := recording.NewWriter(f, recording.Header{
			Target: r.target, Started: now, IntervalNS: int64(r.o.interval), WindowNS: int64(r.o.window),
			Recorder: "inspect-cli record",
		})
		if err != nil {
			f.Close()
			return failf(2, "writing %s: %v", r.o.out, err)
		}
		r.f, r.w, r.began = f, w, now
	}
	return r.w.Update(now, u)
}

// connChange writes a change of the connection once the file exists, and
// says it in a line.
func (r *recorder) connChange(msg tui.ConnMsg) (string, error) {
	now := time.Now()
	switch {
	case msg.State == tui.Reconnecting && !r.down:
		r.down, r.conn = true, "reconnecting"
		r.outages++
		c := recording.Conn{State: recording.ConnDown}
		if msg.Err != nil {
			c.Error = msg.Err.Error()
		}
		return fmt.Sprintf("%s: the target is down (%s); reconnecting", now.Format("15:04:05"), c.Error), r.w.Conn(now, c)
	case msg.State == tui.Reconnecting:
		return "", nil
	case msg.Reconnected:
		r.down, r.conn = false, "connected"
		r.downFor += msg.Down
		return fmt.Sprintf("%s: back after %s; %d updates lost", now.Format("15:04:05"), format.Duration(msg.Down), msg.Lost),
			r.w.Conn(now, recording.Conn{State: recording.ConnUp, DownNS: int64(msg.Down), Lost: msg.Lost})
	case msg.Err != nil:
		return fmt.Sprintf("%s: target error: %v", now.Format("15:04:05"), msg.Err),
			r.w.Conn(now, recording.Conn{State: recording.ConnError, Error: msg.Err.Error()})
	default:
		r.conn = "connected"
	}
	return "", nil
}

// progress is the one-line state of the recording.
func (r *recorder) progress() string {
	if r.w == nil {
		return fmt.Sprintf("recording %s: %s…", r.target, r.conn)
	}
	s := fmt.Sprintf("recording %s to %s: %d updates, %s, %s, %s", r.target, r.o.out, r.w.Updates(),
		format.Bytes(r.w.Bytes()), format.Duration(time.Since(r.began).Truncate(time.Second)), r.conn)
	if r.o.duration > 0 {
		s += fmt.Sprintf(" (stops after %s)", r.o.duration)
	}
	return s
}

// report says what was written and how to play it.
func (r *recorder) report(w io.Writer, e *env) error {
	elapsed := time.Since(r.began)
	play := "inspect-cli top --replay " + r.o.out
	if e.output == "json" {
		return writeJSON(w, struct {
			File       string `json:"file"`
			Bytes      int64  `json:"bytes"`
			Updates    int64  `json:"updates"`
			Outages    int    `json:"outages"`
			DurationNS int64  `json:"duration_ns"`
			Play       string `json:"play"`
		}{r.o.out, r.w.Bytes(), r.w.Updates(), r.outages, int64(elapsed), play})
	}
	outages := ""
	if r.outages > 0 {
		outages = fmt.Sprintf(", %d outage%s (%s down)", r.outages, map[bool]string{true: "s"}[r.outages > 1], format.Duration(r.downFor))
	}
	fmt.Fprintf(w, "wrote %s: %d updates over %s%s, %s\nplay it with: %s\n", r.o.out, r.w.Updates(),
		format.Duration(elapsed), outages, format.Bytes(r.w.Bytes()), play)
	return nil
}

// runReplay is top --replay FILE.
func runReplay(cmd *cobra.Command, e *env, file string) error {
	r, err := recording.Open(file)
	if err != nil {
		return failf(2, "%v", err)
	}
	defer r.Close()
	p := recording.NewPlayer(r)
	if p.Len() == 0 {
		if r.Err != nil {
			return failf(2, "%s: no update to play: %v", file, r.Err)
		}
		return failf(2, "%s: no update to play (the recording stopped before the first)", file)
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	m := tui.New(tui.Config{Target: r.Header.Target, Window: time.Duration(r.Header.WindowNS), Context: ctx,
		Replay: &tui.Replay{File: file, Player: p}})
	prog := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(e.stdout))
	if _, err := prog.Run(); err != nil && ctx.Err() == nil {
		return failf(2, "top --replay: %v", err)
	}
	return nil
}
