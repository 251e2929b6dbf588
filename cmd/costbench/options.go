//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// errUsage is a bad command line, already explained on stderr.
var errUsage = errors.New("usage")

// Configurations of the target, in the order they alternate.
const (
	cfgNone    = "none"
	cfgIdle    = "agent-idle"
	cfgWatched = "agent-watched"
	cfgPprof   = "pprof"
)

var (
	allConfigs   = []string{cfgNone, cfgIdle, cfgWatched, cfgPprof}
	allWorkloads = []string{target.Pingpong, target.Pool, target.HTTP, target.Parked}
)

// The watch a watched target gets, as inspect-cli top asks it by default:
// top pages, asking for three screens of rows around the visible ones (40
// rows a screen here).
const (
	watchWindow = 5 * time.Second
	watchQuery  = "interval=1s&window=5s&limit=120"
)

// The snapshot the parked workload asks for.
const snapshotQuery = "window=5s"

// options is the command line.
type options struct {
	workloads []string
	configs   []string
	warmup    time.Duration
	measure   time.Duration
	repeats   int
	clients   int
	pairs     int
	task      time.Duration
	handler   time.Duration

	parked     []int
	parkedReps int
	steady     time.Duration
	watch      time.Duration

	heapProfiles string  // parked: where the agent targets' heap profiles go; "": none
	budget       float64 // the agent's OverheadBudget; 0: its default

	quick    bool
	markdown bool
	args     []string // as given, for the tables' headings
}

// defaults are the options without -quick, and quick's where it differs.
var (
	defaults = options{
		warmup: 5 * time.Second, measure: 10 * time.Second, repeats: 3,
		parked: []int{10_000, 100_000}, parkedReps: 3, steady: 10 * time.Second, watch: 10 * time.Second,
	}
	quickDefaults = options{
		warmup: 500 * time.Millisecond, measure: time.Second, repeats: 1,
		parked: []int{10_000}, parkedReps: 1, steady: 2 * time.Second, watch: 2 * time.Second,
	}
)

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("costbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: go run ./cmd/costbench [flags]

Measures what inspecting a program costs it: workloads run with nothing
attached (none), with the agent embedded with default options (agent-idle),
the same watched as inspect-cli top watches (agent-watched), and with
net/http/pprof served (pprof), alternating. See the package documentation.

Flags:
`)
		fs.PrintDefaults()
	}
	workloads := fs.String("workloads", strings.Join(allWorkloads, ","), "workloads to run, comma-separated: "+strings.Join(allWorkloads, ", "))
	configs := fs.String("configs", strings.Join(allConfigs, ","), "configurations, comma-separated, run in the order "+strings.Join(allConfigs, ", ")+" each repeat (parked: the agent* ones select its agent part, pprof its pprof part)")
	warmup := fs.Duration("warmup", defaults.warmup, "time a target runs before measuring (parked: before attaching)")
	measure := fs.Duration("measure", defaults.measure, "measured interval of each run")
	repeats := fs.Int("repeats", defaults.repeats, "runs of each configuration")
	fs.IntVar(&o.clients, "clients", 8, "http: concurrent keep-alive clients (closed loop)")
	fs.IntVar(&o.pairs, "pairs", 50, "pingpong: goroutine pairs")
	fs.DurationVar(&o.task, "task", 1500*time.Nanosecond, "pool: CPU per task")
	fs.DurationVar(&o.handler, "handler", 50*time.Microsecond, "http: CPU per request")
	parked := fs.String("parked", "10k,100k", "parked: goroutine counts, comma-separated (10000, 10k, 1M); 1M takes minutes and GBs")
	parkedReps := fs.Int("parked-reps", defaults.parkedReps, "parked: requests of each pprof kind")
	steady := fs.Duration("steady", defaults.steady, "parked: how long to ask for a snapshot each second after the first")
	watch := fs.Duration("watch", defaults.watch, "parked: how long to follow the watch stream")
	fs.StringVar(&o.heapProfiles, "heap-profiles", "", "parked: write the agent targets' heap profiles (live at the last GC, and allocated since the start) to this directory at the end of each watch")
	fs.Float64Var(&o.budget, "overhead-budget", 0, "the agent targets' overhead budget (agent.Options.OverheadBudget, a share of the program's CPU from 0 to 1; 0: the agent's default, 0.05)")
	fs.BoolVar(&o.quick, "quick", false, "a fast smoke run: -warmup 500ms -measure 1s -repeats 1 -parked 10k -parked-reps 1 -steady 2s -watch 2s (flags given override)")
	fs.BoolVar(&o.markdown, "markdown", false, "print Markdown tables for BENCHMARKS.md")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "costbench: unexpected arguments %q\n", fs.Args())
		return o, errUsage
	}
	if o.budget < 0 || o.budget > 1 {
		fmt.Fprintf(stderr, "costbench: -overhead-budget %v: want a share of the program's CPU from 0 to 1 (0: the agent's default)\n", o.budget)
		return o, errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	base := defaults
	if o.quick {
		base = quickDefaults
	}
	pick := func(name string, given, def time.Duration) time.Duration {
		if set[name] {
			return given
		}
		return def
	}
	o.warmup = pick("warmup", *warmup, base.warmup)
	o.measure = pick("measure", *measure, base.measure)
	o.steady = pick("steady", *steady, base.steady)
	o.watch = pick("watch", *watch, base.watch)
	o.repeats, o.parkedReps, o.parked = base.repeats, base.parkedReps, base.parked
	if set["repeats"] {
		o.repeats = *repeats
	}
	if set["parked-reps"] {
		o.parkedReps = *parkedReps
	}

	fail := func(format string, a ...any) (options, error) {
		fmt.Fprintf(stderr, "costbench: "+format+"\n", a...)
		return o, errUsage
	}
	var err error
	if o.workloads, err = list(*workloads, allWorkloads); err != nil {
		return fail("-workloads: %v", err)
	}
	if o.configs, err = list(*configs, allConfigs); err != nil {
		return fail("-configs: %v", err)
	}
	if set["parked"] {
		o.parked = nil
		for s := range strings.SplitSeq(*parked, ",") {
			n, err := parseCount(strings.TrimSpace(s))
			if err != nil {
				return fail("-parked: %v", err)
			}
			o.parked = append(o.parked, n)
		}
	}
	switch {
	case o.warmup < 0 || o.measure <= 0:
		return fail("-warmup must not be negative and -measure must be positive")
	case o.repeats < 1 || o.parkedReps < 1:
		return fail("-repeats and -parked-reps must be at least 1")
	case o.clients < 1 || o.pairs < 1:
		return fail("-clients and -pairs must be at least 1")
	case o.task < 0 || o.handler < 0:
		return fail("-task and -handler must not be negative")
	case o.steady < 0 || o.watch < 0:
		return fail("-steady and -watch must not be negative")
	}
	return o, nil
}

// list parses a comma-separated list of names out of known, keeping known's
// order.
func list(s string, known []string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("unknown %q: want some of %s", name, strings.Join(known, ","))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("none given: want some of %s", strings.Join(known, ","))
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(known, a) - slices.Index(known, b) })
	return out, nil
}

// parseCount parses 10000, 10k or 1M.
func parseCount(given string) (int, error) {
	s, mult := given, 1
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1_000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 10_000_000/mult {
		return 0, fmt.Errorf("%q: want a goroutine count from 1 to 10M (10000, 10k, 1M)", given)
	}
	return n * mult, nil
}
