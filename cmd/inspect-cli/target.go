package main

// A target is resolved once per command, before the command runs, into
// what it can do: resolve reads the argument (a file, a pid, gops://, a
// host:port or URL) and, for a host:port or URL, asks the target once what
// it is (probe). Each command then takes the capability it needs from the
// target; a target without it gives one line and exit 2 (lacks).
//
//	kind               model  sites  watch   dump    findings  http  lab
//	inspection API     API    API    stream  pprof   its own   yes   yes
//	net/http/pprof     here   here   poll    pprof   here      yes   -
//	gops agent         here   here   poll    gops    here      -     -
//	trace file         here   here   whole   its end windows   -     -
//	goroutine dump     file   -      -       file    once      -     -
//	recording          last   last   -       -       once      -     -
//
// (here: computed in inspect-cli from what the program serves, with the
// diagnosis rules run on each snapshot; poll: one snapshot after the other;
// whole: the whole trace as one window; last: the recording's last update.)

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/agent"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/portfile"
	"github.com/inspectd/inspectd/internal/recording"
	"github.com/inspectd/inspectd/internal/source/file"
	"github.com/inspectd/inspectd/internal/source/remote"
	"github.com/inspectd/inspectd/internal/tui"
)

// target is what a command inspects, with what it can do: each capability
// is nil when the target lacks it.
type target struct {
	name string // as output names it: the argument, and what it resolved to
	is   string // what it is, for the line of a command it cannot serve
	// saved: a file, not a running program: there is nothing to watch
	// over time (diagnose reads it once; record refuses it).
	saved bool
	// recording: a recording of the task table (inspect-cli record), which
	// top --replay plays.
	recording bool

	model    modeler   // tasks, task: the task model
	sites    siter     // sites: the wait sites
	watch    watcher   // top, record: a stream of updates
	dump     dumper    // stacks: a full goroutine dump
	findings diagnoser // diagnose
	// http serves /debug/pprof/... and /debug/fgprof: profile and trace.
	http *api.Client
	// lab serves inspectd's /api/v1/workloads: workloads.
	lab *api.Client

	// notGops: resolution asked this address gops' version request, in
	// vain (for the line of a connection closed without an HTTP answer).
	notGops bool
}

// The capabilities.
type (
	// modeler gives the task model.
	modeler interface {
		snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error)
		task(ctx context.Context, id int64, window time.Duration) (*api.Task, error)
		// writeTask prints a task as this model knows it: with its
		// window's numbers, histograms and stack, or what a dump or a
		// recording holds.
		writeTask(w io.Writer, t *api.Task, window time.Duration)
	}
	// querier gives the tasks a query selects, selected by the target.
	querier interface {
		query(ctx context.Context, window time.Duration, q api.Query) (*api.Snapshot, error)
	}
	// siter gives the wait sites.
	siter interface {
		sites(ctx context.Context, window time.Duration) (*siteList, error)
	}
	// watcher starts a stream of updates, which ends with ctx: of every
	// task, or where the target can select them, of page (then
	// feed.query asks for others).
	watcher interface {
		watch(ctx context.Context, interval, window time.Duration, page *api.Query) (*feed, error)
	}
	// dumper reads a full goroutine dump, with notes on its cost or gaps;
	// force dumps a live target whatever its goroutine count.
	dumper interface {
		goroutines(ctx context.Context, force bool) ([]dump.Goroutine, []string, error)
	}
	// diagnoser adds the findings of a diagnose run to d as it sees them,
	// and says where they came from.
	diagnoser interface {
		diagnose(ctx context.Context, d *diagnosis) (source string, err error)
	}
)

// siteList is what sites prints: the wait sites, with the target and the
// notes of the model they come from.
type siteList struct {
	target string
	notes  []string
	api.SiteList
}

// feed is a stream of updates for top and record.
type feed struct {
	updates <-chan tea.Msg
	fetch   tui.FetchTask // one task with its details
	name    string        // the target as top's header and a recording name it
	// whole: a saved trace shown as one window (task details cover it all).
	whole bool
	// fail is the one line of a stream that never delivered an update.
	fail func(err error) error
	// query, when set, has the target select what the stream sends (a
	// page of the tasks): the stream was started with the page asked for.
	query func(api.Query)
}

// What commands need, as their line says when the target lacks it.
const (
	needLive  = "a live target (inspectd, an agent, net/http/pprof or gops)"
	needHTTP  = "an HTTP target (inspectd, an agent or net/http/pprof)"
	needLab   = "inspectd's lab (its /api/v1/workloads)"
	needDump  = "goroutine stacks (a live target, a goroutine dump or a trace file)"
	needModel = "the task model (a live target, a goroutine dump, a trace file or a recording)"
)

// lacks is the one line (exit 2) of command asking t for what it cannot
// do; need says what the command needs.
func (t *target) lacks(command, need string) error {
	if t.recording {
		if command == "top" {
			return failf(2, "%s is a recording: play it with inspect-cli top --replay %s", t.name, t.name)
		}
		return failf(2, "%s is a recording of the task table (inspect-cli record): %s needs %s; play it with inspect-cli top --replay %s",
			t.name, command, need, t.name)
	}
	return failf(2, "%s needs %s, not %s", command, need, t.is)
}

// resolve reads the optional target argument args[i] (DefaultTarget
// without one) and finds out what it is, once, before the command runs.
//
// A host:port or URL is asked for task 0 of the inspection API (probe): an
// answer tells the inspection API from a program with net/http/pprof only,
// and a connection closed without an HTTP answer, by a name without a
// scheme, is a gops agent if the address answers gops' version request. A
// target that gives no answer (not started yet, say) is taken for the
// inspection API, as the default target is inspectd: top then reconnects
// until it comes, and other commands fail on their own request, with its
// error.
func (e *env) resolve(ctx context.Context, args []string, i int) (*target, error) {
	name := DefaultTarget
	if len(args) > i {
		name = args[i]
	}
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return nil, failf(2, "target %q is a directory: give a dump or trace file in it, or a host:port or URL", name)
	} else if err == nil {
		return e.fileTarget(name)
	}
	if addr, ok := strings.CutPrefix(name, "gops://"); ok {
		addr = strings.TrimRight(addr, "/")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, failf(2, "target %q: want gops://host:port", name)
		}
		return e.gopsTarget(name, addr, "the gops agent "+addr), nil
	}
	if addr, ok := agentAddr(name); ok {
		if pid, _ := strconv.Atoi(name); !processAlive(pid) {
			// Killed before it could remove its port file.
			return nil, failf(2, "no process %d: it has exited (its port file, for %s, is left from it)", pid, addr)
		}
		// Its port file says it serves the inspection API.
		return e.apiTarget(name+" ("+addr+")", e.client(addr), true), nil
	}
	if pid, err := strconv.Atoi(name); err == nil {
		addr, portFile, err := remote.GopsAddr(pid)
		if err != nil {
			dir, _ := agent.PortDir()
			if portFile == "" {
				portFile = "gops' port file"
			}
			return nil, failf(2, "process %d has no inspectd agent (no port file in %s) and no gops agent (no %s): `inspect-cli ps` lists the Go processes and their agents",
				pid, dir, portFile)
		}
		return e.gopsTarget(fmt.Sprintf("%d (gops %s)", pid, addr), addr, fmt.Sprintf("the gops agent %s of process %d", addr, pid)), nil
	}
	if !strings.Contains(name, "://") && !strings.Contains(name, ":") {
		return nil, failf(2, "target %q: no such file, and not a host:port or URL", name)
	}
	u, err := url.Parse(api.NewClient(name, "").Base)
	if err != nil || u.Host == "" {
		return nil, failf(2, "target %q: not a host:port or URL", name)
	}
	// A URL copied from a browser names an endpoint: the target is the
	// server (or the prefix) it is under.
	base := name
	for _, ep := range []string{"/debug/pprof", "/api/v1"} {
		if i := strings.Index(u.Path, ep); i >= 0 {
			u.Path, u.RawQuery, u.Fragment = u.Path[:i], "", ""
			base = u.String()
			break
		}
	}
	return e.probe(ctx, name, e.client(base))
}

// probe asks the HTTP target c for task 0, which inspectd and its agent
// answer at no cost with 400 (not a goroutine id), or 401 without the
// token, and resolves the target by the answer.
func (e *env) probe(ctx context.Context, name string, c *api.Client) (*target, error) {
	_, err := c.Task(ctx, 0, 0)
	var se *api.StatusError
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		return nil, failf(exitInterrupted, "interrupted")
	case errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusUnauthorized):
		return e.apiTarget(name, c, true), nil
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		// No inspection API: a program with net/http/pprof, it seems.
		return e.pprofTarget(name, c, se), nil
	case errors.As(err, &ue) && closedUnanswered(ue.Err) && !strings.Contains(name, "://"):
		// Not an HTTP server: a gops agent, if it answers like one.
		host := strings.TrimPrefix(c.Base, "http://")
		if _, gerr := remote.GopsVersion(ctx, host); gerr == nil {
			return e.gopsTarget(name+" (gops agent)", host, "the gops agent "+host), nil
		}
		t := e.apiTarget(name, c, false)
		t.notGops = true
		return t, nil
	}
	// No answer, or an answer that does not tell: the inspection API as
	// far as anyone knows, and the command's request says what is wrong.
	return e.apiTarget(name, c, false), nil
}

// fileTarget is a saved execution trace, a recording or a goroutine dump.
func (e *env) fileTarget(path string) (*target, error) {
	switch {
	case file.IsTraceFile(path):
		tf, err := file.OpenTraceFile(path)
		if err != nil {
			return nil, failf(2, "%v", err)
		}
		return e.traceTarget(path, tf), nil
	case recording.IsRecording(path):
		return recordingTarget(path), nil
	}
	return dumpTarget(path), nil
}

// agentAddr reads the port file of the embedded agent of process pid
// (agent.PortDir), if there is one.
func agentAddr(pid string) (string, bool) {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return "", false
	}
	addr, _, err := portfile.Read(n)
	return addr, err == nil
}

// processAlive reports whether process pid exists (one of another user
// too: signal 0 is then refused, not failed).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// closedUnanswered says the server closed the connection without an HTTP
// answer, as a gops agent does with an HTTP request.
func closedUnanswered(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// fail turns an error of an HTTP request to t into a one-line cliError.
func (t *target) fail(err error) error {
	if le, ok := remote.AsLimit(err); ok {
		return failLimit(t.name, le)
	}
	if why, ok := notAnswer(err); ok {
		return failf(2, "%s %s: is it inspectd, or a program with its agent?", t.name, why)
	}
	var se *api.StatusError
	switch {
	case errors.As(err, &se) && se.Code == 401:
		return failf(2, "%s needs a token: pass --token TOKEN or set INSPECT_TOKEN (%s)", t.name, se.Message)
	case errors.As(err, &se) && se.NotAPI:
		// Not inspectd's answer: the target is not what this command needs.
		path := se.URL
		if u, err := url.Parse(se.URL); err == nil {
			path = u.Path
		}
		if se.Code == http.StatusNotFound {
			return failf(2, "%s does not serve %s (404: %s)", t.name, path, se.Message)
		}
		return failf(2, "%s answered %s with %d %s: %s", t.name, path, se.Code, http.StatusText(se.Code), se.Message)
	case errors.As(err, &se):
		return failf(1, "%s: %s", t.name, se.Message)
	case errors.Is(err, context.Canceled):
		return failf(exitInterrupted, "interrupted")
	}
	var ue *url.Error
	if errors.As(err, &ue) && api.IsAnswerTimeout(ue.Err) {
		return failf(2, "%s took the connection but sent no answer in %s: not an HTTP server, or stuck", t.name, api.AnswerTimeout)
	}
	if errors.As(err, &ue) && closedUnanswered(ue.Err) && t.http != nil {
		if t.notGops {
			return failf(2, "%s closed the connection without an HTTP answer: not an HTTP server (nor a gops agent: it does not answer gops' version request)", t.name)
		}
		return failf(2, "%s closed the connection without an HTTP answer: not an HTTP server (a gops agent? try gops://%s)", t.name, strings.TrimPrefix(t.http.Base, "http://"))
	}
	if errors.As(err, &ue) {
		return failf(2, "cannot reach %s: %s (is inspectd running? start it with: go run ./cmd/inspectd)", t.name, cause(ue.Err))
	}
	return failf(2, "%s: %v", t.name, err)
}

// failRemote turns an error of a source computed here into a one-line
// cliError: exit 2 for a target that cannot be reached or is not what it
// should be, 1 for other errors it answered.
func (t *target) failRemote(err error) error {
	if errors.Is(err, context.Canceled) {
		return failf(exitInterrupted, "interrupted")
	}
	if le, ok := remote.AsLimit(err); ok {
		return failLimit(t.name, le)
	}
	var se *api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusUnauthorized:
			return failf(2, "%s needs a token: pass --token TOKEN or set INSPECT_TOKEN (%s)", t.name, se.URL)
		case se.Code == http.StatusNotFound && strings.Contains(se.URL, "/debug/pprof/goroutine"):
			return failf(2, "%s serves neither the inspection API (%s: 404) nor net/http/pprof (%s: 404)", t.name, probePath, se.URL)
		}
		return failf(1, "%s: %v", t.name, oneLine(err))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		// It may have taken the request and be stuck: not "cannot reach".
		return failf(2, "%s gave no answer in time to %s %s (stuck, overloaded, or out of reach)", t.name, ue.Op, ue.URL)
	}
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

// probePath is what probe asks for.
const probePath = "/api/v1/tasks/0"

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// cause is the innermost, readable reason of a network error.
func cause(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}
