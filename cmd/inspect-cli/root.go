package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/agent"
	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/source/file"
	"github.com/inspectd/inspectd/internal/source/remote"
)

// DefaultTarget is the daemon's default address.
const DefaultTarget = "127.0.0.1:7777"

// env is what every command shares: where to write, and the global flags.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	token          string
	output         string
	dumpBudget     float64 // --dump-budget, for net/http/pprof and gops targets
}

// cliError is a failure reported as one line on stderr with an exit code.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// exitInterrupted is the status of a command that ctrl-c or SIGTERM cut
// short before it finished (128 + SIGINT, as shells report it).
const exitInterrupted = 130

func failf(code int, format string, args ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, args...)}
}

// report prints err as one line and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ce *cliError
	if errors.As(err, &ce) {
		if ce.msg != "" { // a command that printed why itself
			fmt.Fprintln(stderr, "inspect-cli:", ce.msg)
		}
		return ce.code
	}
	var se *api.StatusError
	if errors.As(err, &se) {
		fmt.Fprintln(stderr, "inspect-cli:", se.Message)
		return 1
	}
	// Cobra's usage errors: unknown command or flag, wrong arguments.
	fmt.Fprintf(stderr, "inspect-cli: %v (see inspect-cli --help)\n", err)
	return 2
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "inspect-cli",
		Short: "Inspect the goroutines of a Go program, like tokio-console's task view",
		Long: `inspect-cli shows the goroutines of a Go program as tasks: their state, where they
wait and for how long, how their time splits into busy, scheduling delay and idle,
and where they were spawned.

A target is the last, optional argument of each command:
  - an inspectd daemon or a program embedding the inspectd agent: 127.0.0.1:7777
    (the default), host:port or a URL;
  - any program serving net/http/pprof, at host:port or a URL: when it does not
    serve the inspection API (/api/v1/snapshot answers 404), inspect-cli computes
    the model itself from its goroutine profile, an execution trace of --window
    (/debug/pprof/trace, parsed here) and full goroutine dumps (debug=2), which
    stop the target's world for ~6µs per goroutine and so are taken only within
    --dump-budget (default 1% of the time since attaching); the output's notes
    say what the budget allowed;
  - a gops agent: gops://host:port, or a host:port that closes an HTTP request
    without an answer and answers gops' version request (0x4); its trace always
    lasts 5s and it has no goroutine profile (no labels between dumps);
  - the pid of a local Go process: its inspectd agent (from the agent's port
    file), else its gops agent (from gops' port file, in $GOPS_CONFIG_DIR or
    the user config dir's gops/); inspect-cli ps lists them;
  - a saved goroutine dump file, e.g. from curl host/debug/pprof/goroutine?debug=2
    or a panic's output (tasks, task, stacks);
  - a saved execution trace file (inspect-cli trace, go test -trace, runtime/trace,
    /debug/pprof/trace): tasks, task, sites, stacks and top show the whole trace
    as one window; diagnose runs the rules on its successive --window windows;
  - a recording made by inspect-cli record: top --replay FILE plays it, and tasks,
    task and sites show its last update.
With a token-protected target, pass --token or set INSPECT_TOKEN.

Exit codes: 0 success, 1 an error answered by the target, 2 a usage error or a
target that cannot be reached or read.`,
		Example: `  go run ./cmd/inspectd &
  inspect-cli tasks --filter workload=blocking-lock
  inspect-cli task 42
  inspect-cli sites
  inspect-cli stacks goroutines.txt
  inspect-cli diagnose run.trace                         # a saved execution trace
  inspect-cli tasks http://service:6060 --window 2s     # net/http/pprof only
  inspect-cli top 4242                                   # a pid: agent or gops
  inspect-cli ps
  inspect-cli workloads start leak --param every=50ms
  inspect-cli profile cpu --seconds 10 -o cpu.pb.gz`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&e.token, "token", "", "bearer token of the target (default $INSPECT_TOKEN)")
	pf.StringVarP(&e.output, "output", "", "table", "output format: table or json")
	pf.Float64Var(&e.dumpBudget, "dump-budget", 0.01, "net/http/pprof and gops targets: the share of wall time full goroutine dumps may stop the target's world for (0: never dump)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if e.token == "" {
			e.token = e.getenv("INSPECT_TOKEN")
		}
		if e.output != "table" && e.output != "json" {
			return failf(2, "--output %q: want table or json", e.output)
		}
		if e.dumpBudget < 0 || e.dumpBudget > 1 || e.dumpBudget != e.dumpBudget {
			return failf(2, "--dump-budget %v: want a share of wall time from 0 (never dump) to 1", e.dumpBudget)
		}
		return nil
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return failf(2, "%v (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(newTasksCmd(e), newTaskCmd(e), newSitesCmd(e), newStacksCmd(e),
		newWorkloadsCmd(e), newProfileCmd(e), newTraceCmd(e), newTopCmd(e), newPsCmd(e), newDiagnoseCmd(e))
	root.AddCommand(newRecordCmd(e))
	return root
}

// target is what a command inspects: a dump file, an HTTP endpoint or a
// gops agent.
type target struct {
	name   string      // as given
	file   string      // a goroutine dump file; "" for an HTTP target
	client *api.Client // for an HTTP target; nil for a gops agent
	// src computes the model here: remote (a program that serves
	// net/http/pprof but not the inspection API, or a gops agent; see
	// remote.go) or trace.
	src    source.Source
	remote *remote.Remote
	ropts  remote.Options
	diag   *diagnose.Inspector // runs the diagnosis rules on src's snapshots
	// trace is a saved execution trace.
	trace *file.TraceFile
}

// resolveTarget reads the optional target argument.
func (e *env) resolveTarget(args []string, i int) (*target, error) {
	name := DefaultTarget
	if len(args) > i {
		name = args[i]
	}
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return nil, failf(2, "target %q is a directory: give a dump or trace file in it, or a host:port or URL", name)
	} else if err == nil {
		if file.IsTraceFile(name) {
			tf, err := file.OpenTraceFile(name)
			if err != nil {
				return nil, failf(2, "%v", err)
			}
			ropts := e.remoteOptions()
			return &target{name: name, src: tf, ropts: ropts, trace: tf}, nil
		}
		return &target{name: name, file: name}, nil
	}
	ropts := e.remoteOptions()
	if addr, ok := strings.CutPrefix(name, "gops://"); ok {
		return gopsTarget(name, strings.TrimRight(addr, "/"), ropts)
	}
	if addr, ok := agentAddr(name); ok {
		if pid, _ := strconv.Atoi(name); !processAlive(pid) {
			// Killed before it could remove its port file.
			return nil, failf(2, "no process %d: it has exited (its port file, for %s, is left from it)", pid, addr)
		}
		return &target{name: name + " (" + addr + ")", client: api.NewClient(addr, e.token), ropts: ropts}, nil
	}
	if pid, err := strconv.Atoi(name); err == nil {
		return pidTarget(pid, ropts)
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
	return &target{name: name, client: api.NewClient(base, e.token), ropts: ropts}, nil
}

// agentAddr reads the port file of the embedded agent of process pid
// (agent.PortDir), if there is one.
func agentAddr(pid string) (string, bool) {
	if _, err := strconv.Atoi(pid); err != nil {
		return "", false
	}
	dir, err := agent.PortDir()
	if err != nil {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(dir, pid))
	if err != nil {
		return "", false
	}
	addr := strings.TrimSpace(string(b))
	return addr, addr != ""
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

// needHTTP fails for a dump-file or gops target of a command that needs an
// HTTP one.
func (t *target) needHTTP(what string) error {
	if t.file != "" {
		return failf(2, "%s needs a live target (an inspectd daemon or agent), not the file %s", what, t.file)
	}
	if t.trace != nil {
		return failf(2, "%s needs a live target (an inspectd daemon or agent), not the trace file %s", what, t.name)
	}
	if t.client == nil {
		return failf(2, "%s needs an HTTP target (inspectd, an agent or net/http/pprof), not the gops agent %s", what, t.name)
	}
	return nil
}

// needLive fails for a dump-file target of a command that needs a live one
// (a trace file is read as a remote target).
func (t *target) needLive(what string) error {
	if t.file != "" {
		return failf(2, "%s needs a live target (inspectd, an agent, net/http/pprof or gops), not the file %s", what, t.file)
	}
	return nil
}

// fail turns an error of a request to t into a one-line cliError.
func (t *target) fail(err error) error {
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
	if errors.As(err, &ue) && closedUnanswered(ue.Err) && t.client != nil {
		return failf(2, "%s closed the connection without an HTTP answer: not an HTTP server (a gops agent? try gops://%s)", t.name, strings.TrimPrefix(t.client.Base, "http://"))
	}
	if errors.As(err, &ue) {
		return failf(2, "cannot reach %s: %s (is inspectd running? start it with: go run ./cmd/inspectd)", t.name, cause(ue.Err))
	}
	return failf(2, "%s: %v", t.name, err)
}

// failAPI is fail for the inspection API: a 404 there means the target
// serves no /api/v1 (a plain net/http/pprof program, say).
func (t *target) failAPI(err error) error {
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == 404 && strings.Contains(se.URL, "/api/v1/snapshot") {
		return failf(2, "%s does not serve the inspection API (/api/v1/snapshot: 404) nor net/http/pprof", t.name)
	}
	return t.fail(err)
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

// window flags are shared by the commands that read the trace window.
func addWindowFlag(cmd *cobra.Command, w *time.Duration) {
	cmd.Flags().DurationVar(w, "window", 5*time.Second, "trace window the numbers cover (100ms to 60s)")
}

// asStatus is errors.As for *api.StatusError.
func asStatus(err error, se **api.StatusError) bool { return errors.As(err, se) }
