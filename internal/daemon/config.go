package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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

	// TraceMinAge and TraceMaxBytes bound the always-on flight recorder the
	// task model is built from; DumpBudget is the share of wall time full
	// goroutine dumps (which stop the world) may take; CPUBudget the share
	// of one core building snapshots may take while clients ask for them.
	TraceMinAge   time.Duration
	TraceMaxBytes uint64
	DumpBudget    float64
	CPUBudget     float64
	// TraceStream has the daemon stream its execution trace to itself
	// while snapshots are asked for, and analyse each generation once:
	// faster snapshots, but another runtime/trace.Start (a gops agent's
	// trace command) fails meanwhile.
	TraceStream bool

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

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Listen:               "127.0.0.1:7777",
		GopsAddr:             "127.0.0.1:0",
		LogFormat:            "text",
		LogLevel:             slog.LevelInfo,
		MutexProfileFraction: 100,
		BlockProfileRate:     100 * time.Microsecond,
		TraceMinAge:          10 * time.Second,
		TraceMaxBytes:        64 << 20,
		DumpBudget:           0.01,
		CPUBudget:            0.25,
		TraceStream:          true,
		PyroscopeApp:         "inspectd",
		PyroscopeTags:        map[string]string{},
		PyroscopeUploadRate:  15 * time.Second,
		DiagnoseInterval:     2 * time.Second,
		DiagnoseWindow:       5 * time.Second,
		Workloads:            slices.Clone(DefaultWorkloads),
		Params:               map[string]map[string]any{},
	}
}

// fileConfig is the YAML file's shape. Every key is optional.
//
//	listen: 127.0.0.1:7777
//	gops_addr: 127.0.0.1:0
//	token: secret
//	log_format: json
//	log_level: debug
//	mutex_profile_fraction: 100
//	block_profile_rate: 100us
//	trace_min_age: 10s
//	trace_max_bytes: 67108864
//	dump_budget: 0.01
//	cpu_budget: 0.25
//	trace_stream: true
//	pyroscope_url: http://localhost:4040
//	pyroscope_app: inspectd
//	pyroscope_tags: {env: lab}
//	pyroscope_user: user
//	pyroscope_password: secret
//	pyroscope_tenant: lab
//	pyroscope_upload_rate: 15s
//	diagnose:
//	  interval: 2s        # how often the rules run; 0 only on request
//	  window: 5s
//	  deny: [busy-poll]   # or allow: [...] to run only those
//	  thresholds: {goroutine-leak.stuck_for: 5s}
//	workloads:            # the workloads to run, each with optional parameters
//	  hello: {}
//	  leak: {every: 50ms, max_leaked: 5000}
type fileConfig struct {
	Listen               *string                   `yaml:"listen"`
	GopsAddr             *string                   `yaml:"gops_addr"`
	Token                *string                   `yaml:"token"`
	LogFormat            *string                   `yaml:"log_format"`
	LogLevel             *string                   `yaml:"log_level"`
	MutexProfileFraction *int                      `yaml:"mutex_profile_fraction"`
	BlockProfileRate     *string                   `yaml:"block_profile_rate"`
	TraceMinAge          *string                   `yaml:"trace_min_age"`
	TraceMaxBytes        *uint64                   `yaml:"trace_max_bytes"`
	DumpBudget           *float64                  `yaml:"dump_budget"`
	CPUBudget            *float64                  `yaml:"cpu_budget"`
	TraceStream          *bool                     `yaml:"trace_stream"`
	PyroscopeURL         *string                   `yaml:"pyroscope_url"`
	PyroscopeApp         *string                   `yaml:"pyroscope_app"`
	PyroscopeTags        map[string]string         `yaml:"pyroscope_tags"`
	PyroscopeUser        *string                   `yaml:"pyroscope_user"`
	PyroscopePassword    *string                   `yaml:"pyroscope_password"`
	PyroscopeTenant      *string                   `yaml:"pyroscope_tenant"`
	PyroscopeUploadRate  *string                   `yaml:"pyroscope_upload_rate"`
	Workloads            map[string]map[string]any `yaml:"workloads"`
	Diagnose             *fileDiagnose             `yaml:"diagnose"`
}

type fileDiagnose struct {
	Interval   *string           `yaml:"interval"`
	Window     *string           `yaml:"window"`
	Allow      []string          `yaml:"allow"`
	Deny       []string          `yaml:"deny"`
	Thresholds map[string]string `yaml:"thresholds"`
}

var fileKeys = []string{"listen", "gops_addr", "token", "log_format", "log_level",
	"mutex_profile_fraction", "block_profile_rate", "trace_min_age", "trace_max_bytes", "dump_budget", "cpu_budget", "trace_stream",
	"pyroscope_url", "pyroscope_app", "pyroscope_tags", "pyroscope_user", "pyroscope_password", "pyroscope_tenant",
	"pyroscope_upload_rate", "diagnose", "workloads"}

// UsageError is a configuration mistake: the daemon prints it and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// cmdline holds what the command line says beyond Config's fields.
type cmdline struct {
	configPath string
	listOnly   bool
	params     paramFlags
}

// flagSet binds the flags to cfg's fields, whose values are the defaults shown.
func flagSet(cfg *Config, cl *cmdline, reg *workload.Registry) *flag.FlagSet {
	fs := flag.NewFlagSet("inspectd", flag.ContinueOnError)
	// Errors are returned, and printed once by main; help is printed by Load.
	fs.SetOutput(io.Discard)
	fs.StringVar(&cl.configPath, "config", "", "YAML config `file` (see README)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "`address` of the HTTP API, pprof and metrics; non-loopback needs --token")
	fs.StringVar(&cfg.GopsAddr, "gops-addr", cfg.GopsAddr, "`address` of the gops agent (loopback only), or off")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "bearer `token` required on /api, /debug and /ui")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`: text or json")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn or error")
	fs.IntVar(&cfg.MutexProfileFraction, "mutex-profile-fraction", cfg.MutexProfileFraction, "sample 1 in `N` mutex contention events (0 turns the mutex profile off)")
	fs.DurationVar(&cfg.BlockProfileRate, "block-profile-rate", cfg.BlockProfileRate, "sample one blocking event per this much `time` blocked (0 turns the block profile off)")
	fs.DurationVar(&cfg.TraceMinAge, "trace-min-age", cfg.TraceMinAge, "keep at least this much execution trace in the flight recorder (`duration`)")
	fs.Uint64Var(&cfg.TraceMaxBytes, "trace-max-bytes", cfg.TraceMaxBytes, "bound the flight recorder to about this many `bytes`")
	fs.Float64Var(&cfg.DumpBudget, "dump-budget", cfg.DumpBudget, "share of wall time full goroutine dumps may stop the world (`fraction`, 0 < f <= 0.5)")
	fs.Float64Var(&cfg.CPUBudget, "cpu-budget", cfg.CPUBudget, "share of one core building snapshots may take while clients ask for them (`fraction`, 0.01 to 4); sooner requests share the last snapshot")
	fs.BoolVar(&cfg.TraceStream, "trace-stream", cfg.TraceStream, "while snapshots are asked for, stream the execution trace to this process and analyse it once (faster snapshots; a gops agent's trace command fails meanwhile)")
	fs.StringVar(&cfg.PyroscopeURL, "pyroscope-url", cfg.PyroscopeURL, "push continuous profiles to the Pyroscope server at this `URL` (also PYROSCOPE_SERVER_ADDRESS)")
	fs.StringVar(&cfg.PyroscopeApp, "pyroscope-app", cfg.PyroscopeApp, "Pyroscope application `name`")
	fs.Var(tagFlag(cfg.PyroscopeTags), "pyroscope-tag", "add a Pyroscope tag as `key=value` (repeatable; host and version are always set)")
	fs.StringVar(&cfg.PyroscopeUser, "pyroscope-user", cfg.PyroscopeUser, "Pyroscope basic auth `user` (also PYROSCOPE_BASIC_AUTH_USER)")
	fs.StringVar(&cfg.PyroscopePassword, "pyroscope-password", cfg.PyroscopePassword, "Pyroscope basic auth `password` (also PYROSCOPE_BASIC_AUTH_PASSWORD)")
	fs.StringVar(&cfg.PyroscopeTenant, "pyroscope-tenant", cfg.PyroscopeTenant, "Pyroscope tenant `id` (X-Scope-OrgID)")
	fs.DurationVar(&cfg.PyroscopeUploadRate, "pyroscope-upload-rate", cfg.PyroscopeUploadRate, "upload profiles to Pyroscope every `duration` (1s to 1h)")
	fs.DurationVar(&cfg.DiagnoseInterval, "diagnose-interval", cfg.DiagnoseInterval, "run the diagnosis rules every `duration` in the background (0: only on request)")
	fs.DurationVar(&cfg.DiagnoseWindow, "diagnose-window", cfg.DiagnoseWindow, "trace window the background diagnosis looks at (`duration`, 1s to 60s)")
	fs.Var(&listFlag{to: &cfg.Diagnose.Allow}, "diagnose-allow", "run only these diagnosis `rules` (comma-separated ids)")
	fs.Var(&listFlag{to: &cfg.Diagnose.Deny}, "diagnose-deny", "never run these diagnosis `rules` (comma-separated ids)")
	fs.Var(thresholdFlag{&cfg.Diagnose}, "diagnose-threshold", "set a rule threshold as `rule.name=value` (repeatable; see README)")
	fs.Var(&workloadsFlag{names: &cfg.Workloads, reg: reg}, "workloads", "comma-separated workload `names` to run, or all, healthy, broken, none")
	fs.BoolVar(&cl.listOnly, "list-workloads", false, "print the workload catalog and exit")
	fs.Var(&cl.params, "param", "set a workload parameter as `workload.name=value` (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: inspectd [flags]\n       inspectd workloads    print the workload catalog\n\n"+
			"inspectd runs a lab of concurrency workloads and serves pprof, fgprof, a gops agent,\n"+
			"Prometheus metrics and the inspection API. Every flag can also be set as an\n"+
			"INSPECTD_<FLAG> environment variable (INSPECTD_LISTEN, INSPECTD_LOG_FORMAT, ...).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// envAliases are the environment variables pyroscope-go's users know, read
// for a flag when its INSPECTD_* variable is unset.
var envAliases = map[string]string{
	"pyroscope-url":      "PYROSCOPE_SERVER_ADDRESS",
	"pyroscope-user":     "PYROSCOPE_BASIC_AUTH_USER",
	"pyroscope-password": "PYROSCOPE_BASIC_AUTH_PASSWORD",
}

// parse reads the command line, then the environment for the flags it left unset.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v (run inspectd -h for the flags)", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (run inspectd -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := envName(f.Name)
		v := getenv(key)
		if alias := envAliases[f.Name]; v == "" && alias != "" {
			key, v = alias, getenv(alias)
		}
		if v != "" && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("environment %s=%q: %v", key, v, e)
			}
		}
	})
	return err
}

// Load builds the configuration from the command-line arguments (without the
// program name), the environment (getenv) and the config file they name.
// It returns flag.ErrHelp when help was asked for, after printing it to out.
func Load(args []string, getenv func(string) string, reg *workload.Registry, out io.Writer) (Config, error) {
	cfg := Defaults()
	if len(args) > 0 && args[0] == "workloads" {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	// The first pass finds the config file and reports bad flags; the second
	// lays flags and environment over the file's values.
	first := Defaults()
	var cl cmdline
	fs := flagSet(&first, &cl, reg)
	if err := parse(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fs.Usage()
		}
		return cfg, err
	}
	if cl.listOnly {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	if cl.configPath != "" {
		if err := cfg.applyFile(cl.configPath); err != nil {
			return cfg, err
		}
	}
	cl = cmdline{}
	if err := parse(flagSet(&cfg, &cl, reg), args, getenv); err != nil {
		return cfg, err
	}
	params := cl.params
	for _, p := range params {
		if !slices.Contains(cfg.Workloads, p.workload) {
			return cfg, usagef("--param %s.%s: workload %q is not among the workloads to run (%s)", p.workload, p.name, p.workload, strings.Join(cfg.Workloads, ", "))
		}
		if cfg.Params[p.workload] == nil {
			cfg.Params[p.workload] = map[string]any{}
		}
		cfg.Params[p.workload][p.name] = p.value
	}
	return cfg, cfg.validate(reg)
}

// ErrListed tells the caller the catalog was printed and nothing should run.
var ErrListed = errors.New("catalog listed")

// applyFile reads the YAML file at path over cfg. Unknown keys are errors.
func (cfg *Config) applyFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("config: %v", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return usagef("config %s: %v", path, err)
	}
	if len(root.Content) == 0 {
		return nil // an empty file changes nothing
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return usagef("config %s: line %d: want a mapping of keys (%s)", path, doc.Line, strings.Join(fileKeys, ", "))
	}
	for i := 0; i < len(doc.Content); i += 2 {
		k := doc.Content[i]
		if !slices.Contains(fileKeys, k.Value) {
			return usagef("config %s: line %d: unknown key %q; allowed: %s", path, k.Line, k.Value, strings.Join(fileKeys, ", "))
		}
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// "line 3: cannot unmarshal !!str `abc` into float64": name the key.
			msgs := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				msgs[i] = e
				var line int
				if _, serr := fmt.Sscanf(e, "line %d:", &line); serr == nil {
					if k := keyAtLine(doc, line); k != "" {
						msgs[i] = k + " (" + e + ")"
					}
				}
			}
			return usagef("config %s: %s", path, strings.Join(msgs, "; "))
		}
		return usagef("config %s: %v", path, err)
	}
	if fc.Listen != nil {
		cfg.Listen = *fc.Listen
	}
	if fc.GopsAddr != nil {
		cfg.GopsAddr = *fc.GopsAddr
	}
	if fc.Token != nil {
		cfg.Token = *fc.Token
	}
	if fc.LogFormat != nil {
		cfg.LogFormat = *fc.LogFormat
	}
	if fc.LogLevel != nil {
		if err := cfg.LogLevel.UnmarshalText([]byte(*fc.LogLevel)); err != nil {
			return usagef("config %s: log_level %q: want debug, info, warn or error", path, *fc.LogLevel)
		}
	}
	if fc.MutexProfileFraction != nil {
		cfg.MutexProfileFraction = *fc.MutexProfileFraction
	}
	if fc.BlockProfileRate != nil {
		d, err := time.ParseDuration(*fc.BlockProfileRate)
		if err != nil {
			return usagef("config %s: block_profile_rate %q: want a duration such as 100us", path, *fc.BlockProfileRate)
		}
		cfg.BlockProfileRate = d
	}
	if fc.TraceMinAge != nil {
		d, err := time.ParseDuration(*fc.TraceMinAge)
		if err != nil {
			return usagef("config %s: trace_min_age %q: want a duration such as 10s", path, *fc.TraceMinAge)
		}
		cfg.TraceMinAge = d
	}
	if fc.TraceMaxBytes != nil {
		cfg.TraceMaxBytes = *fc.TraceMaxBytes
	}
	if fc.DumpBudget != nil {
		cfg.DumpBudget = *fc.DumpBudget
	}
	if fc.CPUBudget != nil {
		cfg.CPUBudget = *fc.CPUBudget
	}
	if fc.TraceStream != nil {
		cfg.TraceStream = *fc.TraceStream
	}
	if fc.PyroscopeURL != nil {
		cfg.PyroscopeURL = *fc.PyroscopeURL
	}
	if fc.PyroscopeApp != nil {
		cfg.PyroscopeApp = *fc.PyroscopeApp
	}
	for k, v := range fc.PyroscopeTags {
		cfg.PyroscopeTags[k] = v
	}
	if fc.PyroscopeUser != nil {
		cfg.PyroscopeUser = *fc.PyroscopeUser
	}
	if fc.PyroscopePassword != nil {
		cfg.PyroscopePassword = *fc.PyroscopePassword
	}
	if fc.PyroscopeTenant != nil {
		cfg.PyroscopeTenant = *fc.PyroscopeTenant
	}
	if fc.PyroscopeUploadRate != nil {
		d, err := time.ParseDuration(*fc.PyroscopeUploadRate)
		if err != nil {
			return usagef("config %s: pyroscope_upload_rate %q: want a duration such as 15s", path, *fc.PyroscopeUploadRate)
		}
		cfg.PyroscopeUploadRate = d
	}
	if fd := fc.Diagnose; fd != nil {
		for _, d := range []struct {
			key string
			v   *string
			to  *time.Duration
		}{{"interval", fd.Interval, &cfg.DiagnoseInterval}, {"window", fd.Window, &cfg.DiagnoseWindow}} {
			if d.v == nil {
				continue
			}
			v, err := time.ParseDuration(*d.v)
			if err != nil {
				return usagef("config %s: diagnose.%s %q: want a duration such as 2s", path, d.key, *d.v)
			}
			*d.to = v
		}
		if fd.Allow != nil {
			cfg.Diagnose.Allow = fd.Allow
		}
		if fd.Deny != nil {
			cfg.Diagnose.Deny = fd.Deny
		}
		for k, v := range fd.Thresholds {
			if cfg.Diagnose.Thresholds == nil {
				cfg.Diagnose.Thresholds = map[string]string{}
			}
			cfg.Diagnose.Thresholds[k] = v
		}
	}
	if fc.Workloads != nil {
		cfg.Workloads = cfg.Workloads[:0]
		for name, params := range fc.Workloads {
			cfg.Workloads = append(cfg.Workloads, name)
			if params != nil {
				cfg.Params[name] = params
			}
		}
		slices.Sort(cfg.Workloads)
	}
	return nil
}

// keyAtLine is the key (a.b for a nested one) whose value is on line of
// the YAML mapping m, or "".
func keyAtLine(m *yaml.Node, line int) string {
	if m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if sub := keyAtLine(v, line); sub != "" {
			return k.Value + "." + sub
		}
		if v.Line == line || k.Line == line {
			return k.Value
		}
	}
	return ""
}

// setting names a setting by its flag, its environment variable and its
// config file key: a value out of range may come from any of the three.
func setting(flag string) string {
	key := strings.ReplaceAll(flag, "-", "_")
	if k, ok := strings.CutPrefix(key, "diagnose_"); ok {
		key = "diagnose." + k
	}
	return fmt.Sprintf("(--%s, %s or %s in a config file)", flag, envName(flag), key)
}

// envName is the environment variable that sets a flag: --cpu-budget is
// INSPECTD_CPU_BUDGET.
func envName(flag string) string {
	return "INSPECTD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// validate checks what no single source can: names, parameters and safety.
func (cfg *Config) validate(reg *workload.Registry) error {
	loopback, err := server.IsLoopback(cfg.Listen)
	if err != nil {
		return usagef("listen address %q: %v", cfg.Listen, err)
	}
	if err := server.CheckToken(cfg.Token); err != nil {
		return usagef("the token (--token or INSPECTD_TOKEN) %v", err)
	}
	if !loopback && cfg.Token == "" {
		return usagef("refusing to listen on %s without a token: the API can start CPU-burning workloads; "+
			"set --token (or INSPECTD_TOKEN), or listen on 127.0.0.1", cfg.Listen)
	}
	if cfg.GopsAddr != "" && cfg.GopsAddr != "off" {
		loopback, err := server.IsLoopback(cfg.GopsAddr)
		if err != nil {
			return usagef("gops address %q: %v", cfg.GopsAddr, err)
		}
		if !loopback {
			return usagef("refusing to run the gops agent on %s: its protocol has no authentication; use a loopback address or off", cfg.GopsAddr)
		}
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return usagef("log format %q %s: want text or json", cfg.LogFormat, setting("log-format"))
	}
	if cfg.MutexProfileFraction < 0 {
		return usagef("mutex profile fraction %d %s: want 0 or more", cfg.MutexProfileFraction, setting("mutex-profile-fraction"))
	}
	if cfg.BlockProfileRate < 0 {
		return usagef("block profile rate %v %s: want 0 or more", cfg.BlockProfileRate, setting("block-profile-rate"))
	}
	if cfg.TraceMinAge < time.Second || cfg.TraceMinAge > 10*time.Minute {
		return usagef("trace min age %v %s: want from 1s to 10m", cfg.TraceMinAge, setting("trace-min-age"))
	}
	if cfg.TraceMaxBytes < 1<<20 || cfg.TraceMaxBytes > 4<<30 {
		return usagef("trace max bytes %d %s: want from 1 MiB (1048576) to 4 GiB", cfg.TraceMaxBytes, setting("trace-max-bytes"))
	}
	if !(cfg.DumpBudget > 0 && cfg.DumpBudget <= 0.5) {
		return usagef("dump budget %v %s: want a fraction above 0 and at most 0.5", cfg.DumpBudget, setting("dump-budget"))
	}
	if !(cfg.CPUBudget >= 0.01 && cfg.CPUBudget <= 4) {
		return usagef("cpu budget %v %s: want a share of one core from 0.01 to 4", cfg.CPUBudget, setting("cpu-budget"))
	}
	if err := cfg.validatePyroscope(); err != nil {
		return err
	}
	if cfg.DiagnoseInterval < 0 || cfg.DiagnoseInterval > 0 && cfg.DiagnoseInterval < 100*time.Millisecond {
		return usagef("diagnose interval %v %s: want 0 (off) or 100ms or more", cfg.DiagnoseInterval, setting("diagnose-interval"))
	}
	if cfg.DiagnoseWindow < time.Second || cfg.DiagnoseWindow > time.Minute {
		return usagef("diagnose window %v %s: want from 1s to 60s", cfg.DiagnoseWindow, setting("diagnose-window"))
	}
	if err := cfg.Diagnose.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	for _, name := range cfg.Workloads {
		if _, ok := reg.Lookup(name); !ok {
			return usagef("unknown workload %q; known: %s", name, strings.Join(reg.Names(), ", "))
		}
	}
	for name, raw := range cfg.Params {
		spec, ok := reg.Lookup(name)
		if !ok {
			return usagef("parameters for unknown workload %q; known: %s", name, strings.Join(reg.Names(), ", "))
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

// validatePyroscope checks the Pyroscope settings; most matter only with a
// URL, but a value out of range is a mistake with or without one.
func (cfg *Config) validatePyroscope() error {
	if cfg.PyroscopeUploadRate < time.Second || cfg.PyroscopeUploadRate > time.Hour {
		return usagef("pyroscope upload rate %v %s: want from 1s to 1h", cfg.PyroscopeUploadRate, setting("pyroscope-upload-rate"))
	}
	if cfg.PyroscopeURL == "" {
		return nil
	}
	u, err := url.Parse(cfg.PyroscopeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("pyroscope url %q %s: want an http or https URL such as http://localhost:4040", cfg.PyroscopeURL, setting("pyroscope-url"))
	}
	if !pyroscopeAppRe.MatchString(cfg.PyroscopeApp) {
		return usagef("pyroscope app %q %s: want a name of letters, digits, '.', '_' and '-', such as inspectd", cfg.PyroscopeApp, setting("pyroscope-app"))
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.PyroscopeTags)) {
		v := cfg.PyroscopeTags[k]
		if !pyroscopeTagKeyRe.MatchString(k) {
			return usagef("pyroscope tag %q: want a key of letters, digits, '_' and '.', not starting with a digit", k)
		}
		if v == "" || strings.ContainsAny(v, "{},=\"") {
			return usagef("pyroscope tag %s=%q: want a non-empty value without { } , = or quotes", k, v)
		}
	}
	if (cfg.PyroscopeUser == "") != (cfg.PyroscopePassword == "") {
		return usagef("pyroscope basic auth: set both user and password (--pyroscope-user, --pyroscope-password), or neither")
	}
	return nil
}

// tagFlag collects repeated --pyroscope-tag key=value flags (also
// comma-separated, as INSPECTD_PYROSCOPE_TAG=a=1,b=2) into the map.
type tagFlag map[string]string

func (t tagFlag) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t)) {
		parts = append(parts, k+"="+t[k])
	}
	return strings.Join(parts, ",")
}

func (t tagFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, e.g. env=lab")
		}
		t[k] = v
	}
	return nil
}

// listFlag is a comma-separated list of names; repeated flags add to it,
// and the first replaces what the config file said.
type listFlag struct {
	to  *[]string
	set bool
}

func (l *listFlag) String() string {
	if l == nil || l.to == nil {
		return ""
	}
	return strings.Join(*l.to, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		*l.to, l.set = nil, true
	}
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			*l.to = append(*l.to, n)
		}
	}
	return nil
}

// thresholdFlag collects repeated --diagnose-threshold rule.name=value flags.
type thresholdFlag struct{ cfg *diagnose.Config }

func (t thresholdFlag) String() string { return "" }

func (t thresholdFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		if err := t.cfg.SetThreshold(strings.TrimSpace(kv)); err != nil {
			return err
		}
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

// workloadsFlag is the --workloads list, expanded and checked as it is set.
type workloadsFlag struct {
	names *[]string
	reg   *workload.Registry
}

func (w *workloadsFlag) String() string {
	if w == nil || w.names == nil {
		return ""
	}
	return strings.Join(*w.names, ",")
}

func (w *workloadsFlag) Set(s string) error {
	names, err := expandWorkloads(s, w.reg)
	if err != nil {
		return err
	}
	*w.names = names
	return nil
}

type paramFlag struct{ workload, name, value string }

// paramFlags collects repeated --param workload.name=value flags.
type paramFlags []paramFlag

func (p *paramFlags) String() string { return "" }

func (p *paramFlags) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	wl, name, ok2 := strings.Cut(key, ".")
	if !ok || !ok2 || wl == "" || name == "" {
		return fmt.Errorf("want workload.name=value, e.g. leak.interval=50ms")
	}
	*p = append(*p, paramFlag{wl, name, value})
	return nil
}
