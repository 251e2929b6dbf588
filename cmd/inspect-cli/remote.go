package main

// Targets whose model is computed here: a program that serves
// net/http/pprof but not the inspection API, and a gops agent (see
// package remote). A host:port or URL is first taken for the inspection API;
// the first answer tells: a 404 under /api/v1/ makes it a net/http/pprof
// target, a connection closed without an HTTP answer (to a name without a
// scheme) a gops agent if it answers gops' version request.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/agent"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/source/remote"
	"github.com/inspectd/inspectd/internal/tui"
)

// remoteOptions are the options of the sources computed here.
func (e *env) remoteOptions() remote.Options {
	b := e.dumpBudget
	if b == 0 {
		b = -1 // never
	}
	return remote.Options{DumpBudget: b}
}

// remoteTarget is a target whose model r computes here.
func remoteTarget(name string, r *remote.Remote, ropts remote.Options) *target {
	return &target{name: name, remote: r, src: r, ropts: ropts}
}

// gopsTarget is the gops agent at addr (host:port).
func gopsTarget(name, addr string, ropts remote.Options) (*target, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, failf(2, "target %q: want gops://host:port", name)
	}
	return remoteTarget(name, remote.New(remote.NewGopsFetcher(addr), ropts), ropts), nil
}

// pidTarget is process pid's gops agent, found through gops' port file (its
// inspectd agent, if any, was looked for first).
func pidTarget(pid int, ropts remote.Options) (*target, error) {
	addr, file, err := remote.GopsAddr(pid)
	if err != nil {
		dir, _ := agent.PortDir()
		if file == "" {
			file = "gops' port file"
		}
		return nil, failf(2, "process %d has no inspectd agent (no port file in %s) and no gops agent (no %s): `inspect-cli ps` lists the Go processes and their agents",
			pid, dir, file)
	}
	return remoteTarget(fmt.Sprintf("%d (gops %s)", pid, addr), remote.New(remote.NewGopsFetcher(addr), ropts), ropts), nil
}

// servesAPI asks the target for task 0: inspectd and the agent answer 400
// (not a goroutine id) at no cost, or 401 without the token.
func (t *target) servesAPI(ctx context.Context) (bool, error) {
	_, err := t.client.Task(ctx, 0, 0)
	var se *api.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusUnauthorized) {
		return true, nil
	}
	if err == nil {
		err = fmt.Errorf("%s/api/v1/tasks/0 answered a task", t.client.Base)
	}
	return false, err
}

// switchRemote makes t a target whose model is computed here when err, the
// error of an inspection API request, shows that t is a net/http/pprof
// program (a 404 under /api/v1/) or a gops agent (the connection closed
// without an HTTP answer). A 404 of /api/v1/tasks/{id} may be an unknown
// task: unless apiChecked, the API is probed first.
func (t *target) switchRemote(ctx context.Context, err error, apiChecked bool) bool {
	if t.src != nil || t.client == nil {
		return false
	}
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound && strings.Contains(se.URL, "/api/v1/") {
		if !apiChecked && strings.Contains(se.URL, "/api/v1/tasks/") {
			if ok, _ := t.servesAPI(ctx); ok {
				return false
			}
		}
		t.remote = remote.New(remote.NewPprofFetcher(t.client.Base, t.client.Token), t.ropts)
		t.src = t.remote
		return true
	}
	return t.switchGops(ctx, err)
}

// switchGops makes t a gops target when err says the connection closed
// without an HTTP answer and the same address answers gops' version
// request. Only names without a scheme qualify.
func (t *target) switchGops(ctx context.Context, err error) bool {
	var ue *url.Error
	if t.client == nil || strings.Contains(t.name, "://") || !errors.As(err, &ue) || !closedUnanswered(ue.Err) {
		return false
	}
	u, perr := url.Parse(t.client.Base)
	if perr != nil || u.Host == "" {
		return false
	}
	if _, gerr := remote.GopsVersion(ctx, u.Host); gerr != nil {
		return false
	}
	t.remote = remote.New(remote.NewGopsFetcher(u.Host), t.ropts)
	t.src = t.remote
	t.name += " (gops agent)"
	t.client = nil
	return true
}

// closedUnanswered says the server closed the connection without an HTTP
// answer, as a gops agent does with an HTTP request.
func closedUnanswered(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// failRemote turns an error of a remote source into a one-line cliError:
// exit 2 for a target that cannot be reached or is not what it should be,
// 1 for other errors it answered.
func (t *target) failRemote(err error) error {
	if errors.Is(err, context.Canceled) {
		return failf(exitInterrupted, "interrupted")
	}
	var se *api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusUnauthorized:
			return failf(2, "%s needs a token: pass --token TOKEN or set INSPECT_TOKEN (%s)", t.name, se.URL)
		case se.Code == http.StatusNotFound && strings.Contains(se.URL, "/debug/pprof/goroutine"):
			return failf(2, "%s serves neither the inspection API (/api/v1/snapshot: 404) nor net/http/pprof (%s: 404)", t.name, se.URL)
		}
		return failf(1, "%s: %v", t.name, oneLine(err))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return failf(2, "cannot reach %s: %s %s: %s", t.name, ue.Op, ue.URL, cause(ue.Err))
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return failf(2, "cannot reach %s: %v", t.name, oneLine(err))
	}
	return failf(2, "%s: %v", t.name, oneLine(err))
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// checkRemoteWindow bounds --window as the inspection API does.
func checkRemoteWindow(window time.Duration) error {
	if window < 100*time.Millisecond || window > time.Minute {
		return failf(2, "--window %s: want 100ms to 60s", window)
	}
	return nil
}

// remoteSnapshot builds the model of a remote target here.
func (t *target) remoteSnapshot(cmd *cobra.Command, window time.Duration) (*api.Snapshot, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	t.progress(cmd, window)
	p, err := t.inspector(diagnose.Config{})
	if err != nil {
		return nil, err
	}
	s, err := p.Snapshot(cmd.Context(), window)
	if err != nil {
		return nil, t.failRemote(err)
	}
	s.Target = t.name
	return s, nil
}

// progress says on a terminal that the command waits for a trace.
func (t *target) progress(cmd *cobra.Command, window time.Duration) {
	w := cmd.ErrOrStderr()
	if !isTerminal(w) {
		return
	}
	if t.trace != nil {
		fmt.Fprintf(w, "reading the trace file %s (%.1f MiB)...\n", t.name, float64(t.trace.Size())/(1<<20))
		return
	}
	if t.remote.Fetcher().Kind() == remote.KindGops {
		window = 5 * time.Second
	}
	fmt.Fprintf(w, "tracing %s for %s (%s: the model is computed here)...\n", t.name, window, t.remote.Fetcher().Kind())
}

// remoteTask reads one task of a remote target.
func (t *target) remoteTask(cmd *cobra.Command, id int64, window time.Duration) (*api.Task, error) {
	if err := checkRemoteWindow(window); err != nil {
		return nil, err
	}
	t.progress(cmd, window)
	task, err := t.src.Task(cmd.Context(), id, window)
	if errors.Is(err, api.ErrNoTask) {
		return nil, failf(1, "%s has no goroutine %d: it has exited, or never existed", t.name, id)
	}
	if err != nil {
		return nil, t.failRemote(err)
	}
	return task, nil
}

// sitesOf reads the wait sites of a live target, and notes for a remote one.
func sitesOf(cmd *cobra.Command, t *target, window time.Duration) (*api.SiteList, []string, error) {
	if t.src == nil {
		l, err := t.client.Sites(cmd.Context(), window)
		if err == nil {
			return l, nil, nil
		}
		if !t.switchRemote(cmd.Context(), err, true) {
			return nil, nil, t.fail(err)
		}
	}
	s, err := t.remoteSnapshot(cmd, window)
	if err != nil {
		return nil, nil, err
	}
	return &api.SiteList{Time: s.Time, WindowNS: s.WindowNS, Sites: s.Sites}, s.Notes, nil
}

// updates starts the update stream of t for top: the target's watch stream,
// or for a remote target snapshots taken one after the other (each lasts
// its trace). It returns the stream, how to read one task, and the name to
// show.
func (t *target) updates(ctx context.Context, interval, window time.Duration) (<-chan tea.Msg, tui.FetchTask, string, error) {
	if t.src == nil {
		// A target that cannot be reached yet is taken for the API: the
		// stream reconnects until it comes.
		if ok, err := t.servesAPI(ctx); !ok {
			t.switchRemote(ctx, err, true)
		}
	}
	if t.src == nil {
		s := tui.NewStream(t.client.Base, t.client.Token, interval, window)
		go s.Run(ctx)
		return s.C, t.client.Task, t.name, nil
	}
	if err := checkRemoteWindow(window); err != nil {
		return nil, nil, "", err
	}
	if t.remote != nil && t.remote.Fetcher().Kind() == remote.KindPprof {
		f := t.remote.Fetcher()
		// Once, before the screen: a server that is not what it should be
		// fails here as it does for the other commands, not on every
		// update of a screen that never fills.
		rc, err := f.GoroutineProfile(ctx)
		if err != nil {
			return nil, nil, "", t.failRemote(err)
		}
		rc.Close()
	}
	d, err := t.inspector(diagnose.Config{})
	if err != nil {
		return nil, nil, "", err
	}
	p := tui.NewPoll(d.Snapshot, interval, window)
	go p.Run(ctx)
	if t.trace != nil {
		// Details of the whole trace: a window of 0 says so (tui.WriteTask).
		whole := func(ctx context.Context, id int64, _ time.Duration) (*api.Task, error) {
			return d.Task(ctx, id, window)
		}
		return p.C, whole, fmt.Sprintf("%s (the whole trace, computed in inspect-cli)", t.name), nil
	}
	dumps := "no dumps"
	if b := t.ropts.DumpBudget; b > 0 {
		dumps = fmt.Sprintf("dumps ≤%g%% of the time", b*100)
	}
	return p.C, d.Task, fmt.Sprintf("%s (%s, computed in inspect-cli, %s)", t.name, t.remote.Fetcher().Kind(), dumps), nil
}

// gopsDump reads a full dump from a gops target after checking its cost
// from the agent's goroutine count, as liveDump does over HTTP.
func gopsDump(cmd *cobra.Command, t *target, force bool) ([]dump.Goroutine, []string, error) {
	f := t.remote.Fetcher()
	st, err := f.Stats(cmd.Context())
	if err != nil {
		return nil, nil, t.failRemote(err)
	}
	if st.Goroutines > maxStacksGoroutines && !force {
		return nil, nil, failf(2, "%s has %d goroutines: a full dump would stop its world for ~%s; pass --force to dump anyway",
			t.name, st.Goroutines, dur(st.Goroutines*6000))
	}
	began := time.Now()
	rc, err := f.Dump(cmd.Context())
	if err != nil {
		return nil, nil, t.failRemote(err)
	}
	defer rc.Close()
	gs, err := dump.ParseDump(rc)
	if len(gs) == 0 {
		return nil, nil, failf(2, "%s: the gops agent's stack dump gave no goroutine: %v", t.name, err)
	}
	notes := []string{fmt.Sprintf("the gops stack dump (debug=2) stops the target's world for ~6µs per goroutine (~%s here); fetched in %s",
		dur(int64(len(gs))*6000), dur(int64(time.Since(began))))}
	if err != nil {
		notes = append(notes, fmt.Sprintf("the dump has problems, shown as far as read: %v", err))
	}
	return gs, notes, nil
}

// inspector is t's source with the diagnosis rules run on each of its
// snapshots (default rules and thresholds unless cfg says otherwise on
// first use).
func (t *target) inspector(cfg diagnose.Config) (*diagnose.Inspector, error) {
	if t.diag == nil {
		eng, err := diagnose.New(cfg)
		if err != nil {
			return nil, failf(2, "%v", err)
		}
		t.diag = diagnose.NewInspector(t.src, eng)
	}
	return t.diag, nil
}
