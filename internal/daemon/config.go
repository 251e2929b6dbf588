package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/workload"
)

// DefaultWorkloads is the mix the daemon runs when none is configured: healthy
// lessons beside broken scenarios, light enough for a 2-core laptop.
var DefaultWorkloads = []string{"hello", "channels", "fan-in", "select", "pipeline", "cpu-pool",
	"leak", "blocking-lock", "contention", "deadlock"}

// Config is the daemon's configuration: defaults, then the YAML file, then
// INSPECTD_* environment variables, then flags, each overriding the one before.
type Config struct {
	Listen   string
	GopsAddr string // "" or "off" disables the gops agent
	Token    string

	LogFormat string // text or json
	LogLevel  slog.Level

	// MutexProfileFraction is passed to runtime.SetMutexProfileFraction:
	// on average 1 in N contention events is recorded.
	MutexProfileFraction int
	// BlockProfileRate is passed to runtime.SetBlockProfileRate: one blocking
	// event is sampled per this much time spent blocked.
	BlockProfileRate time.Duration

	// OverheadBudget is the share of the program's CPU that inspection may
	// take while clients ask; MaxPause the longest stop-the-world it may
	// cause; FlightRecorder keeps a flight recorder running (bounded by
	// TraceMinAge and TraceMaxBytes) so that a first snapshot covers what
	// happened before it; DumpBudget is the share of wall time full
	// goroutine dumps (which stop the world) may take; CPUBudget the share
	// of one core building snapshots may take while clients ask for them.
	OverheadBudget float64
	MaxPause       time.Duration
	FlightRecorder bool
	TraceMinAge    time.Duration
	TraceMaxBytes  uint64
	DumpBudget     float64
	CPUBudget      float64

	// PyroscopeURL, when set, turns on continuous profiling: every profile
	// type pyroscope-go offers is pushed there every PyroscopeUploadRate, as
	// application PyroscopeApp with tags host, version and PyroscopeTags.
	PyroscopeURL        string
	PyroscopeApp        string
	PyroscopeTags       map[string]string
	PyroscopeUser       string // HTTP basic auth
	PyroscopePassword   string
	PyroscopeTenant     string // X-Scope-OrgID
	PyroscopeUploadRate time.Duration

	// DiagnoseInterval is how often the diagnosis rules run in the
	// background (0: only when a client asks for a snapshot); DiagnoseWindow
	// is the trace window they look at. Diagnose selects the rules and sets
	// their thresholds.
	DiagnoseInterval time.Duration
	DiagnoseWindow   time.Duration
	Diagnose         diagnose.Config

	// Workloads to start, in order, and their raw parameter values.
	Workloads []string
	Params    map[string]map[string]any
}

// Defaults returns the configuration used when nothing is set: each
// option's default (see options).
func Defaults() Config {
	cfg := Config{Params: map[string]map[string]any{}}
	st := &state{Config: &cfg}
	for i := range options {
		options[i].v.reset(st)
	}
	return cfg
}

// state is a configuration being loaded: the Config, and what steers the
// loading beyond it.
type state struct {
	*Config
	reg        *workload.Registry
	configPath string  // --config
	listOnly   bool    // --list-workloads
	pending    []param // --param settings, set once the workloads are known
}

// UsageError is a configuration mistake: the daemon prints it and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ErrListed tells the caller the catalog was printed and nothing should run.
var ErrListed = errors.New("catalog listed")

// Load builds the configuration from the command-line arguments (without the
// program name), the environment (getenv) and the config file they name.
// It returns flag.ErrHelp when help was asked for, after printing it to out.
func Load(args []string, getenv func(string) string, reg *workload.Registry, out io.Writer) (Config, error) {
	cfg := Defaults()
	if len(args) > 0 && args[0] == "workloads" {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	given, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out)
		}
		return cfg, err
	}
	st := &state{Config: &cfg, reg: reg}
	// The options that steer the loading come first; then each setting
	// from the file, the environment and the flags, each over the one before.
	if err := st.apply(given, getenv, true); err != nil {
		return cfg, err
	}
	if st.listOnly {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	if st.configPath != "" {
		if err := st.readFile(st.configPath); err != nil {
			return cfg, err
		}
	}
	if err := st.apply(given, getenv, false); err != nil {
		return cfg, err
	}
	if err := st.setParams(); err != nil {
		return cfg, err
	}
	return cfg, st.validate()
}

// A flagValue is an option's value as given on the command line.
type flagValue struct {
	o    *option
	text string
}

// parseFlags reads the command line into the options it sets, in order.
func parseFlags(args []string) ([]flagValue, error) {
	fs := flag.NewFlagSet("inspectd", flag.ContinueOnError)
	// Errors are returned, and printed once by main; help is printed by Load.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var given []flagValue
	for i := range options {
		fs.Var(recorder{&options[i], &given}, options[i].name, options[i].help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v (run inspectd -h for the flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (run inspectd -h)", fs.Arg(0))
	}
	return given, nil
}

// recorder is a flag.Value that notes the option's text, to be parsed
// once the file and the environment are read.
type recorder struct {
	o     *option
	given *[]flagValue
}

func (r recorder) String() string { return "" }
func (r recorder) IsBoolFlag() bool {
	return r.o != nil && r.o.v.isBool()
}

func (r recorder) Set(s string) error {
	*r.given = append(*r.given, flagValue{r.o, s})
	return nil
}

// apply sets the options (the loader options or the others) from the
// environment, for those the command line leaves unset, then from the
// command line.
func (st *state) apply(given []flagValue, getenv func(string) string, loader bool) error {
	onCmdline := map[*option]bool{}
	for _, g := range given {
		onCmdline[g.o] = true
	}
	for i := range options {
		o := &options[i]
		if o.loader != loader || onCmdline[o] {
			continue
		}
		for _, env := range o.envs() {
			text := getenv(env)
			if text == "" {
				continue
			}
			if err := o.v.set(st, text, false); err != nil {
				if o.secret {
					return usagef("environment %s: %v", env, err)
				}
				return usagef("environment %s=%q: %v", env, text, err)
			}
			break
		}
	}
	seen := map[*option]bool{}
	for _, g := range given {
		if g.o.loader != loader {
			continue
		}
		if err := g.o.v.set(st, g.text, seen[g.o]); err != nil {
			if g.o.secret {
				return usagef("--%s: %v", g.o.name, err)
			}
			return usagef("--%s %q: %v", g.o.name, g.text, err)
		}
		seen[g.o] = true
	}
	return nil
}

// setParams sets the --param settings, for workloads that run.
func (st *state) setParams() error {
	for _, p := range st.pending {
		if !slices.Contains(st.Workloads, p.workload) {
			return usagef("--param %s.%s: workload %q is not among the workloads to run (%s)", p.workload, p.name, p.workload, strings.Join(st.Workloads, ", "))
		}
		if st.Params[p.workload] == nil {
			st.Params[p.workload] = map[string]any{}
		}
		st.Params[p.workload][p.name] = p.value
	}
	return nil
}

// validate checks each option's value, then what involves more than one:
// safety, names and parameters.
func (st *state) validate() error {
	for i := range options {
		o := &options[i]
		err := o.v.check(st)
		switch {
		case err == nil:
		case o.secret:
			return usagef("%s %s: %v", o.title(), o.names(), err)
		case o.v.quoted():
			return usagef("%s %q %s: %v", o.title(), o.v.text(st), o.names(), err)
		default:
			return usagef("%s %s %s: %v", o.title(), o.v.text(st), o.names(), err)
		}
	}
	cfg := st.Config
	if loopback, _ := server.IsLoopback(cfg.Listen); !loopback && cfg.Token == "" {
		return usagef("refusing to listen on %s without a token: the API can start CPU-burning workloads; "+
			"set --token (or INSPECTD_TOKEN), or listen on 127.0.0.1", cfg.Listen)
	}
	if err := cfg.validatePyroscope(); err != nil {
		return err
	}
	if err := cfg.Diagnose.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	for _, name := range cfg.Workloads {
		if _, ok := st.reg.Lookup(name); !ok {
			return usagef("unknown workload %q; known: %s", name, strings.Join(st.reg.Names(), ", "))
		}
	}
	for name, raw := range cfg.Params {
		spec, ok := st.reg.Lookup(name)
		if !ok {
			return usagef("parameters for unknown workload %q; known: %s", name, strings.Join(st.reg.Names(), ", "))
		}
		if _, err := workload.Resolve(name, spec.Params, raw); err != nil {
			return &UsageError{Err: err}
		}
	}
	return nil
}

var (
	// pyroscopeAppRe is what pyroscope-go accepts as an application name
	// without tags: letters, digits and . _ - (no braces, commas or =).
	pyroscopeAppRe = regexp.MustCompile(`^[a-zA-Z0-9_.\-]+$`)
	// pyroscopeTagKeyRe is a Prometheus label name, as Pyroscope requires.
	pyroscopeTagKeyRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.]*$`)
)

// validatePyroscope checks the Pyroscope tags, and the settings that
// matter only with a URL (each option checks its own range with or
// without one).
func (cfg *Config) validatePyroscope() error {
	// Tags are checked with or without a URL: the flags and variables
	// that add to the file's could not hold some (a key with a comma).
	for _, k := range slices.Sorted(maps.Keys(cfg.PyroscopeTags)) {
		v := cfg.PyroscopeTags[k]
		if !pyroscopeTagKeyRe.MatchString(k) {
			return usagef("pyroscope tag %q: want a key of letters, digits, '_' and '.', not starting with a digit", k)
		}
		if v == "" || strings.ContainsAny(v, "{},=\"") {
			return usagef("pyroscope tag %s=%q: want a non-empty value without { } , = or quotes", k, v)
		}
	}
	if cfg.PyroscopeURL == "" {
		return nil
	}
	if app := lookup("pyroscope-app"); !pyroscopeAppRe.MatchString(cfg.PyroscopeApp) {
		return usagef("pyroscope app %q %s: want a name of letters, digits, '.', '_' and '-', such as inspectd", cfg.PyroscopeApp, app.names())
	}
	if (cfg.PyroscopeUser == "") != (cfg.PyroscopePassword == "") {
		return usagef("pyroscope basic auth: set both user and password (--pyroscope-user, --pyroscope-password), or neither")
	}
	return nil
}

// expandWorkloads turns the --workloads value into names.
func expandWorkloads(list string, reg *workload.Registry) ([]string, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		switch n {
		case "", "none":
		case "all":
			names = append(names, reg.Names()...)
		case "healthy", "broken":
			for _, s := range reg.Specs() {
				if string(s.Kind) == n {
					names = append(names, s.Name)
				}
			}
		default:
			if _, ok := reg.Lookup(n); !ok {
				return nil, fmt.Errorf("unknown workload %q; known: all, healthy, broken, none, %s", n, strings.Join(reg.Names(), ", "))
			}
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
