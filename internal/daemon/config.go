package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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
	// goroutine dumps (which stop the world) may take.
	TraceMinAge   time.Duration
	TraceMaxBytes uint64
	DumpBudget    float64

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
	Workloads            map[string]map[string]any `yaml:"workloads"`
}

var fileKeys = []string{"listen", "gops_addr", "token", "log_format", "log_level",
	"mutex_profile_fraction", "block_profile_rate", "trace_min_age", "trace_max_bytes", "dump_budget", "workloads"}

// UsageError is a configuration mistake: the daemon prints it and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Load builds the configuration from the command-line arguments (without the
// program name), the environment (getenv) and the config file they name.
// It returns flag.ErrHelp when help was asked for, after printing it to out.
func Load(args []string, getenv func(string) string, reg *workload.Registry, out io.Writer) (Config, error) {
	cfg := Defaults()
	fs := flag.NewFlagSet("inspectd", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		configPath   = fs.String("config", "", "YAML config `file` (see README)")
		listen       = fs.String("listen", cfg.Listen, "`address` of the HTTP API, pprof and metrics; non-loopback needs --token")
		gopsAddr     = fs.String("gops-addr", cfg.GopsAddr, "`address` of the gops agent (loopback only), or off")
		token        = fs.String("token", "", "bearer `token` required on /api and /debug")
		logFormat    = fs.String("log-format", cfg.LogFormat, "log `format`: text or json")
		logLevel     = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
		mutexFrac    = fs.Int("mutex-profile-fraction", cfg.MutexProfileFraction, "sample 1 in `N` mutex contention events (0 turns the mutex profile off)")
		blockRate    = fs.Duration("block-profile-rate", cfg.BlockProfileRate, "sample one blocking event per this much `time` blocked (0 turns the block profile off)")
		traceMinAge  = fs.Duration("trace-min-age", cfg.TraceMinAge, "keep at least this much execution trace in the flight recorder (`duration`)")
		traceMaxB    = fs.Uint64("trace-max-bytes", cfg.TraceMaxBytes, "bound the flight recorder to about this many `bytes`")
		dumpBudget   = fs.Float64("dump-budget", cfg.DumpBudget, "share of wall time full goroutine dumps may stop the world (`fraction`, 0 < f <= 0.5)")
		workloadList = fs.String("workloads", strings.Join(cfg.Workloads, ","), "comma-separated workload `names` to run, or all, healthy, broken, none")
		listOnly     = fs.Bool("list-workloads", false, "print the workload catalog and exit")
		params       paramFlags
	)
	fs.Var(&params, "param", "set a workload parameter as `workload.name=value` (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: inspectd [flags]\n       inspectd workloads    print the workload catalog\n\n"+
			"inspectd runs a lab of concurrency workloads and serves pprof, fgprof, a gops agent,\n"+
			"Prometheus metrics and the inspection API. Every flag can also be set as an\n"+
			"INSPECTD_<FLAG> environment variable (INSPECTD_LISTEN, INSPECTD_LOG_FORMAT, ...).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if len(args) > 0 && args[0] == "workloads" {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, &UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q (run inspectd -h)", fs.Arg(0))
	}
	if *listOnly {
		PrintCatalog(out, reg)
		return cfg, ErrListed
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// The environment fills in what the command line left unset.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "INSPECTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := getenv(key)
		if v == "" || set[f.Name] || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = usagef("environment %s=%q: %v", key, v, err)
		}
		set[f.Name] = true
	})
	if envErr != nil {
		return cfg, envErr
	}
	if *configPath != "" {
		if err := cfg.applyFile(*configPath); err != nil {
			return cfg, err
		}
	}
	if set["listen"] {
		cfg.Listen = *listen
	}
	if set["gops-addr"] {
		cfg.GopsAddr = *gopsAddr
	}
	if set["token"] {
		cfg.Token = *token
	}
	if set["log-format"] {
		cfg.LogFormat = *logFormat
	}
	if set["log-level"] {
		if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
			return cfg, usagef("--log-level %q: want debug, info, warn or error", *logLevel)
		}
	}
	if set["mutex-profile-fraction"] {
		cfg.MutexProfileFraction = *mutexFrac
	}
	if set["block-profile-rate"] {
		cfg.BlockProfileRate = *blockRate
	}
	if set["trace-min-age"] {
		cfg.TraceMinAge = *traceMinAge
	}
	if set["trace-max-bytes"] {
		cfg.TraceMaxBytes = *traceMaxB
	}
	if set["dump-budget"] {
		cfg.DumpBudget = *dumpBudget
	}
	if set["workloads"] {
		names, err := expandWorkloads(*workloadList, reg)
		if err != nil {
			return cfg, err
		}
		cfg.Workloads = names
	}
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

// validate checks what no single source can: names, parameters and safety.
func (cfg *Config) validate(reg *workload.Registry) error {
	loopback, err := server.IsLoopback(cfg.Listen)
	if err != nil {
		return usagef("listen address %q: %v", cfg.Listen, err)
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
		return usagef("log format %q: want text or json", cfg.LogFormat)
	}
	if cfg.MutexProfileFraction < 0 {
		return usagef("mutex profile fraction %d: want 0 or more", cfg.MutexProfileFraction)
	}
	if cfg.BlockProfileRate < 0 {
		return usagef("block profile rate %v: want 0 or more", cfg.BlockProfileRate)
	}
	if cfg.TraceMinAge < time.Second || cfg.TraceMinAge > 10*time.Minute {
		return usagef("trace min age %v: want from 1s to 10m", cfg.TraceMinAge)
	}
	if cfg.TraceMaxBytes < 1<<20 || cfg.TraceMaxBytes > 4<<30 {
		return usagef("trace max bytes %d: want from 1 MiB (1048576) to 4 GiB", cfg.TraceMaxBytes)
	}
	if !(cfg.DumpBudget > 0 && cfg.DumpBudget <= 0.5) {
		return usagef("dump budget %v: want a fraction above 0 and at most 0.5", cfg.DumpBudget)
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
				return nil, usagef("--workloads: unknown workload %q; known: all, healthy, broken, none, %s", n, strings.Join(reg.Names(), ", "))
			}
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
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
