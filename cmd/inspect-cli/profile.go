package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/pprofui"
	"github.com/inspectd/inspectd/internal/source/remote"
	"github.com/inspectd/inspectd/internal/tracewin"
)

// profiles are the profiles `profile` downloads, with their default duration
// (0: the current profile, no ?seconds).
var profiles = []struct {
	name    string
	path    string
	seconds int
}{
	{"cpu", "/debug/pprof/profile", 10},
	{"heap", "/debug/pprof/heap", 0},
	{"allocs", "/debug/pprof/allocs", 0},
	{"goroutine", "/debug/pprof/goroutine", 0},
	{"mutex", "/debug/pprof/mutex", 0},
	{"block", "/debug/pprof/block", 0},
	{"fgprof", "/debug/fgprof", 10},
	{"goroutineleak", "/debug/pprof/goroutineleak", 0},
}

func profileNames() string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.name
	}
	return strings.Join(names, "|")
}

func newProfileCmd(e *env) *cobra.Command {
	var (
		seconds int
		out     string
		web     bool
		force   bool
	)
	cmd := &cobra.Command{
		Use:   "profile " + profileNames() + " [target]",
		Short: "Download a pprof profile, then print how to open it",
		Long: `profile downloads a pprof profile from the target's /debug/pprof/<name>
(fgprof: /debug/fgprof, a wall-clock profile of on- and off-CPU time) into a
file, and prints the command that opens it: go tool pprof -http : FILE.

--seconds N: cpu and fgprof profile for N seconds (default 10); heap, allocs,
goroutine, mutex and block give the current profile by default, and with N a
delta profile over N seconds. goroutineleak forces a full GC on the target.
While it waits, a progress line on stderr shows the seconds and bytes received.
An answer that is not a gzipped profile (a page, garbage) is refused, and a
profile past --max-bytes profile=SIZE (default 64MiB) is cut: either way
nothing is kept, and the exit status is 2.
The default file name is <name>-<time>.pb.gz (with -2, -3, ... added when that
file exists); -o FILE will not overwrite FILE unless --force.

--web then serves pprof's web UI for the profile on a loopback port, prints
the flame graph's URL and serves until interrupted (ctrl-c): the same UI as
go tool pprof -http, and as the daemon's /ui/.`,
		Example: `  inspect-cli profile cpu --seconds 10
  inspect-cli profile heap -o heap.pb.gz
  inspect-cli profile fgprof http://service:6060 --seconds 30
  inspect-cli profile mutex --seconds 5 --web
  go tool pprof -http : heap.pb.gz`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			i := -1
			for j, p := range profiles {
				if p.name == args[0] {
					i = j
				}
			}
			if i < 0 {
				return failf(2, "profile %q: want one of %s", args[0], profileNames())
			}
			p := profiles[i]
			t, err := e.resolve(cmd.Context(), args, 1)
			if err != nil {
				return err
			}
			if t.http == nil {
				return t.lacks("profile", needHTTP)
			}
			secs := p.seconds
			if cmd.Flags().Changed("seconds") {
				secs = seconds
			}
			if secs < 0 || (p.seconds > 0 && secs == 0) {
				want := "0 or more"
				if p.seconds > 0 {
					want = "1 or more: a " + p.name + " profile covers a duration"
				}
				return failf(2, "--seconds %d: want %s", secs, want)
			}
			path := p.path
			if secs > 0 {
				path += fmt.Sprintf("?seconds=%d", secs)
			}
			f, err := createOutput(out, fmt.Sprintf("%s-%s.pb.gz", p.name, time.Now().Format("20060102-150405")), force)
			if err != nil {
				return err
			}
			n, err := download(cmd, e, t, path, p.name+" profile", secs, f, false)
			if err != nil {
				return err
			}
			out = f.name // with its number, if another capture took the name
			if err := written(cmd, e, out, n, "go tool pprof -http : "+out); err != nil || !web {
				return err
			}
			return serveWeb(cmd, out)
		},
	}
	cmd.Flags().BoolVar(&web, "web", false, "then serve pprof's web UI for it on a loopback port until interrupted")
	cmd.Flags().IntVar(&seconds, "seconds", 0, "profile duration in seconds (cpu, fgprof: default 10; others: 0, the current profile)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "file to write (default <name>-<time>.pb.gz)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the -o file if it exists")
	return cmd
}

func newTraceCmd(e *env) *cobra.Command {
	var (
		force   bool
		seconds int
		out     string
	)
	cmd := &cobra.Command{
		Use:   "trace [target]",
		Short: "Download an execution trace, then print how to open it",
		Long: `trace records an execution trace of the target for --seconds (from
/debug/pprof/trace?seconds=N) into a file and prints the command that opens it:
go tool trace FILE. A busy program writes tens of MB of trace per second:
the download is capped per second traced (--max-bytes trace=SIZE, default
128MiB a second), and an answer that does not start as a Go execution trace
("go 1.NN trace") is refused. Either way nothing is kept, and the exit status
is 2. The default file name is trace-<time>.out.`,
		Example: `  inspect-cli trace --seconds 2
  inspect-cli trace http://service:6060 --seconds 5 -o service.trace
  go tool trace service.trace`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.resolve(cmd.Context(), args, 0)
			if err != nil {
				return err
			}
			if t.http == nil {
				return t.lacks("trace", needHTTP)
			}
			if seconds <= 0 {
				return failf(2, "--seconds %d: want 1 or more", seconds)
			}
			f, err := createOutput(out, fmt.Sprintf("trace-%s.out", time.Now().Format("20060102-150405")), force)
			if err != nil {
				return err
			}
			n, err := download(cmd, e, t, fmt.Sprintf("/debug/pprof/trace?seconds=%d", seconds), "execution trace", seconds, f, true)
			if err != nil {
				return err
			}
			return written(cmd, e, f.name, n, "go tool trace "+f.name)
		},
	}
	cmd.Flags().IntVar(&seconds, "seconds", 5, "trace duration in seconds")
	cmd.Flags().StringVarP(&out, "out", "o", "", "file to write (default trace-<time>.out, with -2, -3, ... added when it exists)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the -o file if it exists")
	return cmd
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// written reports a downloaded file and the command that opens it.
func written(cmd *cobra.Command, e *env, file string, n int64, open string) error {
	w := cmd.OutOrStdout()
	if e.output == "json" {
		return writeJSON(w, struct {
			File  string `json:"file"`
			Bytes int64  `json:"bytes"`
			Open  string `json:"open"`
		}{file, n, open})
	}
	fmt.Fprintf(w, "wrote %s (%s)\nopen it with: %s\n", file, format.Bytes(n), open)
	return nil
}

// download GETs path from t into the file out, reporting progress on stderr,
// and returns the bytes written; trace: the answer must be an execution
// trace. It reads at most the cap of its kind (--max-bytes).
func download(cmd *cobra.Command, e *env, t *target, path, what string, secs int, out *outputFile, trace bool) (n int64, err error) {
	defer func() {
		if err == nil {
			err = out.commit()
		} else {
			out.abort()
		}
	}()
	// No client timeout: the capture lasts secs; the context bounds it,
	// and a target that sends nothing for secs and a margin is given up.
	c := *t.http
	c.HTTP = &http.Client{Transport: api.NewTransport(time.Duration(secs)*time.Second + api.AnswerTimeout)}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Duration(secs)*time.Second+2*time.Minute)
	defer cancel()
	tty := isTerminal(e.stderr)
	began := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	cw := &counter{}
	// The progress reporter: on a terminal a line redrawn 4 times a second;
	// otherwise one line once the request is under way (an unreachable
	// target fails at once, with its one error line only).
	go func() {
		defer close(stopped)
		started := time.NewTimer(300 * time.Millisecond)
		defer started.Stop()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		drawn := false
		for {
			select {
			case <-done:
				if drawn {
					fmt.Fprintln(e.stderr)
				}
				return
			case <-started.C:
				if !tty {
					fmt.Fprintf(e.stderr, "fetching %s from %s%s ...\n", what, t.name, forSeconds(secs))
				}
			case <-tick.C:
				if !tty {
					continue
				}
				elapsed, total := time.Since(began).Seconds(), ""
				if secs > 0 {
					total = fmt.Sprintf("/%ds", secs)
					if elapsed > float64(secs) {
						elapsed, total = float64(secs), total+" (waiting for the target's answer)"
					}
				}
				fmt.Fprintf(e.stderr, "\r%s from %s: %.0fs%s, %s received   ", what, t.name, elapsed, total, format.Bytes(cw.n.Load()))
				drawn = true
			}
		}
	}()
	err = func() error {
		resp, err := c.Open(ctx, path)
		var ue *url.Error
		if err != nil && errors.As(err, &ue) && closedUnanswered(ue.Err) && time.Since(began) > time.Second {
			// It took the request and waited with it: an HTTP server, gone.
			return failf(2, "%s closed the connection %s into the capture, before answering: the target exited or dropped it",
				t.name, format.Duration(time.Since(began)))
		}
		if err != nil {
			return t.fail(err)
		}
		defer resp.Body.Close()
		// What is kept must be what was asked for: an execution trace
		// starts "go 1.NN trace"; a pprof profile, as net/http/pprof and
		// fgprof write it, is gzipped (a page or garbage is neither).
		body := remote.Limit(resp.Body, e.limits.Profile, remote.CapProfile, "the "+what, remote.ParseBytes)
		head := make([]byte, 2)
		is, want := func(b []byte) bool { return b[0] == 0x1f && b[1] == 0x8b }, "a pprof profile (gzipped protobuf)"
		if trace {
			body = remote.Limit(resp.Body, e.limits.Trace(float64(secs)), remote.CapTrace, fmt.Sprintf("the execution trace of %ds", secs), remote.ParseBytes)
			head = make([]byte, 16)
			is = func(b []byte) bool { _, ok := tracewin.GoVersion(b); return ok }
			want = "a Go execution trace (which starts \"go 1.NN trace\")"
		}
		k, err := io.ReadFull(body, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			if le, ok := remote.AsLimit(err); ok {
				return failLimit(t.name, le)
			}
			return failf(2, "receiving %s from %s: %v", what, t.name, err)
		}
		if k < len(head) || !is(head) {
			return failf(2, "%s answered %s with %s, not %s: nothing kept",
				t.name, strings.SplitN(path, "?", 2)[0], startOf(head[:k], resp.Header.Get("Content-Type")), want)
		}
		cw.w = out.f
		if _, err := cw.Write(head[:k]); err != nil {
			return failf(2, "writing %s: %v", out.name, err)
		}
		cw.w = out.f
		if _, err = io.Copy(cw, body); err != nil {
			if cmd.Context().Err() != nil {
				return failf(exitInterrupted, "interrupted: no %s written", what)
			}
			if le, ok := remote.AsLimit(err); ok {
				return failLimit(t.name, le)
			}
			return failf(2, "receiving %s from %s: %v", what, t.name, err)
		}
		if cw.n.Load() == 0 {
			return failf(2, "%s from %s was empty", what, t.name)
		}
		return nil
	}()
	close(done)
	<-stopped
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(e.stderr, "received %s in %s\n", format.Bytes(cw.n.Load()), format.Duration(time.Since(began)))
	return cw.n.Load(), nil
}

// outputFile is a capture being written: to a temporary file beside its
// name, so that a failed capture leaves no partial file and keeps the one
// it would have replaced.
type outputFile struct {
	f    *os.File
	name string
	// def is the default name the name was made from ("" for -o FILE);
	// force: replace a file of that name.
	def   string
	force bool
}

// createOutput opens the capture's file before the capture, so that a path
// that cannot be written fails at once. name is the -o flag; without it the
// default, with -2, -3, ... added when a file of that name exists.
func createOutput(name, def string, force bool) (*outputFile, error) {
	o := &outputFile{name: name, force: force}
	switch {
	case name == "":
		o.name, o.def = def, def
		for i := 2; fileExists(o.name); i++ {
			o.name = numbered(def, i)
		}
	case isDir(name):
		return nil, failf(2, "%s is a directory: name a file (in it, say)", name)
	case !force && fileExists(name):
		return nil, failf(2, "%s exists: pass --force to overwrite it", name)
	}
	// Beside the file, so that putting it in place is a rename; created
	// with the umask's permissions, as the file itself would be.
	dir, prefix := filepath.Dir(o.name), "."+filepath.Base(o.name)
	for i := 0; ; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s.%08x.part", prefix, rand.Uint32())), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if os.IsExist(err) && i < 100 {
			continue
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, failf(2, "cannot write %s: %v", o.name, err)
		}
		o.f = f
		return o, nil
	}
}

// numbered is def with -i before its extension.
func numbered(def string, i int) string {
	ext := ".out"
	if strings.HasSuffix(def, ".pb.gz") {
		ext = ".pb.gz"
	}
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(def, ext), i, ext)
}

func isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

func fileExists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// commit puts the file in place. Without --force it never replaces a file,
// not even one made during the capture (another capture under the same
// default name): a default name then takes the next number.
func (o *outputFile) commit() error {
	tmp := o.f.Name()
	defer os.Remove(tmp)
	if err := o.f.Close(); err != nil {
		return failf(2, "writing %s: %v", o.name, err)
	}
	if o.force {
		if err := os.Rename(tmp, o.name); err != nil {
			return failf(2, "writing %s: %v", o.name, err)
		}
		return nil
	}
	for i := 2; ; i++ {
		err := os.Link(tmp, o.name)
		if err != nil && !os.IsExist(err) && !fileExists(o.name) {
			// A file system without hard links.
			err = os.Rename(tmp, o.name)
		}
		switch {
		case err == nil:
			return nil
		case !os.IsExist(err):
			return failf(2, "writing %s: %v", o.name, err)
		case o.def == "":
			return failf(2, "%s was made during the capture: pass --force to overwrite it", o.name)
		}
		o.name = numbered(o.def, i)
	}
}

// abort drops the file.
func (o *outputFile) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

func forSeconds(secs int) string {
	if secs <= 0 {
		return ""
	}
	return fmt.Sprintf(" for %ds", secs)
}

// serveWeb serves pprof's web UI for the profile in file on 127.0.0.1 until
// the command's context ends.
func serveWeb(cmd *cobra.Command, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return failf(2, "%v", err)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		return failf(2, "%s: %v", file, err)
	}
	handlers, err := pprofui.Handlers(p, slog.New(slog.DiscardHandler))
	if err != nil {
		return failf(2, "pprof web UI: %v", err)
	}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.Handle(path, h)
	}
	mux.Handle("/{$}", http.RedirectHandler("/flamegraph", http.StatusSeeOther))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return failf(2, "pprof web UI: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.OutOrStdout(), "flame graph: http://%s/flamegraph (ctrl-c to stop)\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return failf(2, "pprof web UI: %v", err)
	case <-cmd.Context().Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return nil
}

// startOf says what an answer that is not what was asked for starts with:
// a page, text or bytes.
func startOf(b []byte, contentType string) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")):
		return "a page (" + contentType + ")"
	}
	printable := true
	for _, c := range b {
		if c < ' ' && c != '\n' && c != '\r' && c != '\t' || c >= 0x7f {
			printable = false
		}
	}
	if printable {
		return fmt.Sprintf("text starting %q", b)
	}
	return fmt.Sprintf("bytes starting %x", b)
}
