package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source/remote"
)

// DefaultTarget is the daemon's default address.
const DefaultTarget = "127.0.0.1:7777"

// env is what every command shares: where to write, and the global flags.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader // keys, for lab
	getenv         func(string) string
	token          string
	output         string
	dumpBudget     float64 // --dump-budget, for net/http/pprof and gops targets
	maxBytes       []string
	limits         remote.Limits // --max-bytes
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
    serve the inspection API (/api/v1/tasks/0 answers 404), inspect-cli computes
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
A host:port or URL is asked what it is once, before the command runs; one that
does not answer is taken for inspectd (top then waits for it).
With a token-protected target, pass --token or set INSPECT_TOKEN.

What is read from a target is capped per download (--max-bytes): a snapshot or
a watch update 64MiB, a profile 64MiB, a goroutine dump 96MiB, a trace 128MiB a
second, counting what JSON, dump and proto records cost to parse, so that a
target that answers without end costs at most about 512MB here. Past a cap the
command stops with one line naming the cap and the flag, exit status 2, and keeps
no file. A target that answers with something else than was asked (a page,
garbage) is told from one that cannot be reached.

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
	pf.StringSliceVar(&e.maxBytes, "max-bytes", nil, maxBytesHelp)
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
		var err error
		e.limits, err = parseMaxBytes(e.maxBytes)
		return err
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return failf(2, "%v (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(newTasksCmd(e), newTaskCmd(e), newSitesCmd(e), newStacksCmd(e),
		newWorkloadsCmd(e), newProfileCmd(e), newTraceCmd(e), newTopCmd(e), newPsCmd(e), newDiagnoseCmd(e))
	root.AddCommand(newRecordCmd(e), newLabCmd(e))
	return root
}

// window flags are shared by the commands that read the trace window.
func addWindowFlag(cmd *cobra.Command, w *time.Duration) {
	cmd.Flags().DurationVar(w, "window", 5*time.Second, "trace window the numbers cover (100ms to 60s)")
}
