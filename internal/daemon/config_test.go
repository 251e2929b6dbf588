package daemon

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/workload"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "inspectd.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(args []string, env map[string]string) (Config, string, error) {
	var out bytes.Buffer
	cfg, err := Load(args, func(k string) string { return env[k] }, workload.Default, &out)
	return cfg, out.String(), err
}

func TestLoadDefaults(t *testing.T) {
	cfg, _, err := load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7777" || cfg.GopsAddr != "127.0.0.1:0" || cfg.LogFormat != "text" ||
		cfg.LogLevel != slog.LevelInfo || !slices.Equal(cfg.Workloads, DefaultWorkloads) {
		t.Errorf("defaults: %+v", cfg)
	}
	var healthy, broken int
	for _, n := range DefaultWorkloads {
		s, ok := workload.Default.Lookup(n)
		if !ok {
			t.Fatalf("default mix names unknown workload %s", n)
		}
		if s.Kind == workload.Healthy {
			healthy++
		} else {
			broken++
		}
	}
	if healthy == 0 || broken == 0 {
		t.Errorf("the default mix must show healthy and broken side by side: %d healthy, %d broken", healthy, broken)
	}
}

// File < environment < flags.
func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
listen: 127.0.0.1:9001
log_format: json
log_level: debug
block_profile_rate: 1ms
workloads:
  hello: {interval: 50ms}
  leak: {}
`)
	cfg, _, err := load([]string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9001" || cfg.LogFormat != "json" || cfg.LogLevel != slog.LevelDebug ||
		cfg.BlockProfileRate != time.Millisecond || !slices.Equal(cfg.Workloads, []string{"hello", "leak"}) ||
		cfg.Params["hello"]["interval"] != "50ms" {
		t.Errorf("from file: %+v", cfg)
	}
	if cfg.FlightRecorder || cfg.OverheadBudget != 0.05 || cfg.MaxPause != time.Millisecond {
		t.Errorf("flight recorder %v, overhead budget %v, max pause %v by default; want off, 0.05 and 1ms", cfg.FlightRecorder, cfg.OverheadBudget, cfg.MaxPause)
	}
	if cfg, _, err := load([]string{"--config", writeFile(t, "flight_recorder: true\n")}, nil); err != nil || !cfg.FlightRecorder {
		t.Errorf("flight_recorder: true in the file: %v, recorder %v", err, cfg.FlightRecorder)
	}
	if cfg, _, err := load(nil, map[string]string{"INSPECTD_FLIGHT_RECORDER": "true"}); err != nil || !cfg.FlightRecorder {
		t.Errorf("INSPECTD_FLIGHT_RECORDER=true: %v, recorder %v", err, cfg.FlightRecorder)
	}
	if cfg.CPUBudget != 0.25 {
		t.Errorf("CPU budget %v by default, want 0.25", cfg.CPUBudget)
	}
	budgetFile := writeFile(t, "cpu_budget: 0.5\n")
	if cfg, _, err := load([]string{"--config", budgetFile}, nil); err != nil || cfg.CPUBudget != 0.5 {
		t.Errorf("cpu_budget: 0.5 in the file: %v, budget %v", err, cfg.CPUBudget)
	}
	if cfg, _, err := load([]string{"--config", budgetFile, "--cpu-budget", "1.5"}, map[string]string{"INSPECTD_CPU_BUDGET": "0.1"}); err != nil || cfg.CPUBudget != 1.5 {
		t.Errorf("--cpu-budget 1.5 over INSPECTD_CPU_BUDGET=0.1 and the file: %v, budget %v", err, cfg.CPUBudget)
	}
	cfg, _, err = load([]string{"--config", file}, map[string]string{"INSPECTD_LISTEN": "127.0.0.1:9002", "INSPECTD_LOG_FORMAT": "text"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9002" || cfg.LogFormat != "text" || cfg.LogLevel != slog.LevelDebug {
		t.Errorf("env over file: %+v", cfg)
	}
	cfg, _, err = load([]string{"--config", file, "--listen", "127.0.0.1:9003", "--workloads", "hello", "--param", "hello.interval=20ms"},
		map[string]string{"INSPECTD_LISTEN": "127.0.0.1:9002"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9003" || !slices.Equal(cfg.Workloads, []string{"hello"}) || cfg.Params["hello"]["interval"] != "20ms" {
		t.Errorf("flags over env: %+v", cfg)
	}
	// The config file may come from the environment too.
	cfg, _, err = load(nil, map[string]string{"INSPECTD_CONFIG": file})
	if err != nil || cfg.Listen != "127.0.0.1:9001" {
		t.Errorf("INSPECTD_CONFIG: %v %+v", err, cfg)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		file string // config file content, if any
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{name: "unknown key", file: "listen: 127.0.0.1:1\nlisen: x\n", want: []string{`line 2`, `unknown key "lisen"`, "allowed: listen"}},
		{name: "bad yaml", file: "listen: [\n", want: []string{"config", "yaml"}},
		{name: "bad log level in file", file: "log_level: loud\n", want: []string{`log_level "loud"`, "debug, info, warn or error"}},
		{name: "bad duration in file", file: "block_profile_rate: fast\n", want: []string{`block_profile_rate "fast"`, "100us"}},
		{name: "unknown workload in file", file: "workloads: {nope: {}}\n", want: []string{`unknown workload "nope"`, "known: channels, cpu-pool"}},
		{name: "bad parameter in file", file: "workloads: {hello: {interval: 5h}}\n", want: []string{`"interval"`, `"5h"`, "from 1ms to 1m0s"}},
		{name: "unknown parameter in file", file: "workloads: {hello: {speed: 1}}\n", want: []string{`"speed": unknown parameter; known: interval`}},
		{name: "missing file", args: []string{"--config", "/nonexistent/inspectd.yaml"}, want: []string{"/nonexistent/inspectd.yaml"}},
		{name: "unknown flag", args: []string{"--bogus"}, want: []string{"bogus"}},
		{name: "stray argument", args: []string{"serve"}, want: []string{`unexpected argument "serve"`}},
		{name: "unknown workload flag", args: []string{"--workloads", "hello,nope"}, want: []string{`unknown workload "nope"`, "all, healthy, broken, none"}},
		{name: "bad param flag", args: []string{"--param", "interval=5ms"}, want: []string{"workload.name=value"}},
		{name: "param for a workload not run", args: []string{"--workloads", "hello", "--param", "leak.every=5ms"}, want: []string{`"leak"`, "not among the workloads to run"}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: []string{`"xml"`, "text or json"}},
		{name: "cpu budget of nothing", args: []string{"--cpu-budget", "0"}, want: []string{"cpu budget 0", "from 0.01 to 4"}},
		{name: "cpu budget in file", file: "cpu_budget: 9\n", want: []string{"cpu budget 9", "from 0.01 to 4", "cpu_budget in a config file"}},
		{name: "upload rate without a url", file: "pyroscope_upload_rate: 0s\n", want: []string{"pyroscope upload rate 0s", "pyroscope_upload_rate in a config file", "from 1s to 1h"}},
		{name: "wrong type in file", file: "listen: 127.0.0.1:0\nmutex_profile_fraction: abc\n", want: []string{"mutex_profile_fraction (line 2: cannot unmarshal"}},
		{name: "wrong type nested in file", file: "diagnose:\n  allow: [leak]\n  thresholds: 5\n", want: []string{"diagnose.thresholds (line 3"}},
		{name: "bad env", env: map[string]string{"INSPECTD_MUTEX_PROFILE_FRACTION": "lots"}, want: []string{"INSPECTD_MUTEX_PROFILE_FRACTION", "lots"}},
		{name: "public listen without token", args: []string{"--listen", "0.0.0.0:7777"}, want: []string{"refusing to listen on 0.0.0.0:7777 without a token", "--token"}},
		{name: "all interfaces without token", args: []string{"--listen", ":7777"}, want: []string{"without a token"}},
		{name: "blank token", args: []string{"--listen", "0.0.0.0:7777", "--token", " "}, want: []string{"token (--token, INSPECTD_TOKEN or token in a config file)", "at byte 1 of 1", "bearer token cannot carry"}},
		{name: "token with a space", env: map[string]string{"INSPECTD_TOKEN": "two words"}, want: []string{"token (--token", "at byte 4 of 9", "bearer token"}},
		{name: "flag not a number", args: []string{"--cpu-budget", "abc"}, want: []string{`--cpu-budget "abc"`, "not a number", "want a number, from 0.01 to 4"}},
		{name: "variable not a number", env: map[string]string{"INSPECTD_CPU_BUDGET": "zz"}, want: []string{`INSPECTD_CPU_BUDGET="zz"`, "not a number", "from 0.01 to 4"}},
		{name: "flag not a whole number", args: []string{"--mutex-profile-fraction", "1.5"}, want: []string{"not a whole number", "0 or more"}},
		{name: "flag not a duration", args: []string{"--diagnose-window", "soon"}, want: []string{`--diagnose-window "soon"`, "not a duration", "such as 5s, from 1s to 1m"}},
		{name: "duration without a unit", env: map[string]string{"INSPECTD_TRACE_MIN_AGE": "10"}, want: []string{"needs a unit", "such as 10s"}},
		{name: "flag not a boolean", args: []string{"--flight-recorder=maybe"}, want: []string{`--flight-recorder "maybe"`, "want true or false"}},
		{name: "variable not a boolean", env: map[string]string{"INSPECTD_FLIGHT_RECORDER": "yes"}, want: []string{"INSPECTD_FLIGHT_RECORDER", "want true or false"}},
		{name: "bad log level flag", args: []string{"--log-level", "loud"}, want: []string{`--log-level "loud"`, "debug, info, warn or error"}},
		{name: "size out of range", args: []string{"--trace-max-bytes", "5"}, want: []string{"trace max bytes 5", "from 1 MiB (1048576) to 4 GiB"}},
		{name: "interval between off and the least", args: []string{"--diagnose-interval", "50ms"}, want: []string{"diagnose interval 50ms", "diagnose.interval in a config file", "0 (off) or 100ms or more"}},
		{name: "key set twice", file: "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", want: []string{"line 2: listen is set twice (first on line 1)"}},
		{name: "unknown nested key", file: "diagnose:\n  windw: 5s\n", want: []string{`unknown key "diagnose.windw"`, "allowed: diagnose.interval, diagnose.window"}},
		{name: "section not a mapping", file: "diagnose: 5\n", want: []string{"diagnose (line 1: cannot unmarshal", "interval, diagnose.window"}},
		{name: "list where a number goes", file: "cpu_budget: [1]\n", want: []string{"cpu_budget (line 1: cannot unmarshal a list): want a number, from 0.01 to 4"}},
		{name: "workload list of lists", file: "workloads: [hello, [leak]]\n", want: []string{"workloads (line 1: cannot unmarshal a list)"}},
		{name: "unknown workload in a file list", file: "workloads: [hello, nope]\n", want: []string{`unknown workload "nope"`}},
		{name: "parameters not a mapping", file: "workloads: {leak: 5}\n", want: []string{"workloads (line 1: cannot unmarshal \"5\")", "{every: 50ms}"}},
		{name: "tags not a mapping", file: "pyroscope_tags: env=lab\n", want: []string{"pyroscope_tags (line 1: cannot unmarshal", "a mapping such as {env: lab}"}},
		{name: "bad listen", args: []string{"--listen", "localhost"}, want: []string{`listen address "localhost"`}},
		{name: "public gops", args: []string{"--gops-addr", "0.0.0.0:0", "--token", "x"}, want: []string{"gops agent", "no authentication"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, c.file)}, args...)
			}
			_, _, err := load(args, c.env)
			if err == nil {
				t.Fatalf("no error; want one containing %q", c.want)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("error %v is not a UsageError (exit code 2)", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadPublicWithToken(t *testing.T) {
	cfg, _, err := load([]string{"--listen", "0.0.0.0:7777"}, map[string]string{"INSPECTD_TOKEN": "t"})
	if err != nil || cfg.Token != "t" {
		t.Fatalf("public listen with a token from the environment: %v %+v", err, cfg)
	}
}

func TestLoadWorkloadSets(t *testing.T) {
	for arg, want := range map[string]int{"all": 33, "healthy": 16, "broken": 17, "none": 0, "": 0, "hello,hello": 1} {
		cfg, _, err := load([]string{"--workloads", arg}, nil)
		if err != nil || len(cfg.Workloads) != want {
			t.Errorf("--workloads %q: %d workloads (%v), want %d", arg, len(cfg.Workloads), err, want)
		}
	}
}

func TestListWorkloads(t *testing.T) {
	for _, args := range [][]string{{"workloads"}, {"--list-workloads"}} {
		_, out, err := load(args, nil)
		if !errors.Is(err, ErrListed) {
			t.Fatalf("%v: err %v", args, err)
		}
		for _, n := range workload.Default.Names() {
			if !strings.Contains(out, n) {
				t.Errorf("%v: catalog lacks %s", args, n)
			}
		}
	}
	_, out, err := load([]string{"-h"}, nil)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "INSPECTD_") || !strings.Contains(out, "--workloads") && !strings.Contains(out, "-workloads") {
		t.Errorf("help: %v\n%s", err, out)
	}
}

// The README's catalog is generated from the registry; keep them equal with
// `go test ./internal/daemon -run TestReadmeCatalog -update`.
func TestReadmeCatalog(t *testing.T) {
	checkGenerated(t, "catalog", CatalogMarkdown(workload.Default), "TestReadmeCatalog")
}

// The README's table of diagnosis rules is generated too:
// `go test ./internal/daemon -run TestReadmeRules -update`.
func TestReadmeRules(t *testing.T) {
	checkGenerated(t, "rules", diagnose.RulesMarkdown(), "TestReadmeRules")
}

// checkGenerated compares the README's section between the markers
// <!-- name:begin --> and <!-- name:end --> with want, and with -update
// rewrites it.
func checkGenerated(t *testing.T, name, want, test string) {
	t.Helper()
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", begin, end)
	}
	if got := s[i+len(begin) : j]; got != want {
		if *update {
			s = s[:i+len(begin)] + want + s[j:]
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's %s section is out of date; run go test ./internal/daemon -run %s -update", name, test)
	}
}

var update = flag.Bool("update", false, "rewrite generated sections of README.md")

// The README's example configuration must load as it stands.
func TestReadmeConfigExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no yaml example")
	}
	if _, _, err := load([]string{"--config", writeFile(t, example)}, nil); err != nil {
		t.Errorf("README's example config: %v", err)
	}
}

// A secret is never part of a message, whichever source gave it.
func TestLoadSecretsNotEchoed(t *testing.T) {
	const token = "hunter2 hunter2"
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		file string
	}{
		"flag":        {args: []string{"--token", token}},
		"environment": {env: map[string]string{"INSPECTD_TOKEN": token}},
		"file":        {file: "token: " + token + "\n"},
		"file list":   {file: "token: [" + token + "]\n"},
		"password":    {file: "pyroscope_password: {p: " + token + "}\n"},
	} {
		t.Run(name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, c.file)}, args...)
			}
			_, _, err := load(args, c.env)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

// The file's workloads are a list, a comma-separated string, or a mapping
// of workloads to their parameters.
func TestLoadWorkloadsInFile(t *testing.T) {
	for file, want := range map[string][]string{
		"workloads: [leak, hello]\n":                    {"hello", "leak"},
		"workloads:\n  - leak\n  - hello\n":             {"hello", "leak"},
		"workloads: leak,hello\n":                       {"hello", "leak"},
		"workloads: [healthy]\n":                        nil, // a set, as --workloads takes it
		"workloads: none\n":                             {},
		"workloads: []\n":                               {},
		"workloads: {}\n":                               {},
		"workloads:\n  leak: {every: 50ms}\n  hello:\n": {"hello", "leak"},
		"workloads:\n":                                  DefaultWorkloads, // no value: the default
	} {
		cfg, _, err := load([]string{"--config", writeFile(t, file)}, nil)
		if err != nil {
			t.Errorf("%q: %v", file, err)
			continue
		}
		if want == nil {
			if len(cfg.Workloads) != 16 {
				t.Errorf("%q: %d workloads, want the 16 healthy ones", file, len(cfg.Workloads))
			}
			continue
		}
		if !slices.Equal(cfg.Workloads, want) && !(len(want) == 0 && len(cfg.Workloads) == 0) {
			t.Errorf("%q: workloads %v, want %v", file, cfg.Workloads, want)
		}
	}
	cfg, _, err := load([]string{"--config", writeFile(t, "workloads: {leak: {every: 50ms}}\n"), "--param", "leak.max_leaked=10"}, nil)
	if err != nil || cfg.Params["leak"]["every"] != "50ms" || cfg.Params["leak"]["max_leaked"] != "10" {
		t.Errorf("parameters from the file and --param: %v %v", err, cfg.Params)
	}
	// Lists in the diagnose section read the same way.
	cfg, _, err = load([]string{"--config", writeFile(t, "diagnose:\n  deny: busy-poll,deadlock\n  allow: [goroutine-leak]\n")}, nil)
	if err != nil || !slices.Equal(cfg.Diagnose.Deny, []string{"busy-poll", "deadlock"}) || !slices.Equal(cfg.Diagnose.Allow, []string{"goroutine-leak"}) {
		t.Errorf("deny %v, allow %v: %v", cfg.Diagnose.Deny, cfg.Diagnose.Allow, err)
	}
}

// A scalar in the file is read from its text as its flag reads it, so a
// quoted number is the number; spellings YAML 1.1 had and the flags do not
// take (yes, 0x14) are refused rather than guessed.
func TestLoadFileScalars(t *testing.T) {
	for _, c := range []struct {
		file string
		ok   func(Config) bool
		err  string
	}{
		{file: `mutex_profile_fraction: "20"`, ok: func(c Config) bool { return c.MutexProfileFraction == 20 }},
		{file: `mutex_profile_fraction: 20`, ok: func(c Config) bool { return c.MutexProfileFraction == 20 }},
		{file: `cpu_budget: "0.5"`, ok: func(c Config) bool { return c.CPUBudget == 0.5 }},
		{file: `cpu_budget: 2`, ok: func(c Config) bool { return c.CPUBudget == 2 }},
		{file: `trace_max_bytes: 1048576`, ok: func(c Config) bool { return c.TraceMaxBytes == 1<<20 }},
		{file: `flight_recorder: "true"`, ok: func(c Config) bool { return c.FlightRecorder }},
		{file: `block_profile_rate: 0`, ok: func(c Config) bool { return c.BlockProfileRate == 0 }},
		{file: `token: 12345`, ok: func(c Config) bool { return c.Token == "12345" }},
		{file: `listen:`, ok: func(c Config) bool { return c.Listen == "127.0.0.1:7777" }},
		{file: `mutex_profile_fraction: 1.5`, err: `mutex_profile_fraction (line 1: cannot unmarshal "1.5"): want a whole number, 0 or more`},
		{file: `mutex_profile_fraction: 0x14`, err: "cannot unmarshal"},
		{file: `flight_recorder: yes`, err: `flight_recorder (line 1: cannot unmarshal "yes"): want true or false`},
		{file: `trace_min_age: 10`, err: `trace_min_age "10" (line 1): a duration needs a unit; want a duration such as 10s, from 1s to 10m`},
		{file: `cpu_budget: .nan`, err: "cannot unmarshal"},
	} {
		cfg, _, err := load([]string{"--config", writeFile(t, c.file+"\n")}, nil)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.file, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.file, err)
		case c.err == "" && !c.ok(cfg):
			t.Errorf("%s: read as %+v", c.file, cfg)
		}
	}
}

// Each option's default, as -h shows it, reads back as the same value from
// its flag, its variable and its config file key.
func TestOptionDefaultsRoundTrip(t *testing.T) {
	d := defaultsState()
	for i := range options {
		o := &options[i]
		def := o.v.text(d)
		if def == "" || o.loader {
			continue
		}
		// The workloads to run are read in the catalog's order.
		text := func(cfg Config) string {
			parts := strings.Split(o.v.text(&state{Config: &cfg}), ",")
			slices.Sort(parts)
			return strings.Join(parts, ",")
		}
		want := text(Defaults())
		cfg, _, err := load([]string{"--" + o.name + "=" + def}, nil)
		if err != nil || text(cfg) != want {
			t.Errorf("--%s=%s: %v, read as %q", o.name, def, err, text(cfg))
		}
		if env := o.envs(); len(env) > 0 {
			cfg, _, err := load(nil, map[string]string{env[0]: def})
			if err != nil || text(cfg) != want {
				t.Errorf("%s=%s: %v, read as %q", env[0], def, err, text(cfg))
			}
		}
		if o.key != "" {
			k, nested, ok := strings.Cut(o.key, ".")
			yaml := k + ": " + def + "\n"
			if ok {
				yaml = k + ":\n  " + nested + ": " + def + "\n"
			}
			cfg, _, err := load([]string{"--config", writeFile(t, yaml)}, nil)
			if err != nil || text(cfg) != want {
				t.Errorf("%q: %v, read as %q", yaml, err, text(cfg))
			}
		}
	}
}

// The table is well formed: one flag, one variable and one key each, and a
// name for each value in its help.
func TestOptionsTable(t *testing.T) {
	seen := map[string]string{}
	for _, o := range options {
		names := append([]string{"--" + o.name}, o.envs()...)
		if o.key != "" {
			names = append(names, "key "+o.key)
		}
		for _, n := range names {
			if other, dup := seen[n]; dup {
				t.Errorf("%s is both --%s's and %s's", n, o.name, other)
			}
			seen[n] = "--" + o.name
		}
		if arg, _ := unquote(o.help); arg == "" && !o.v.isBool() {
			t.Errorf("--%s: its help names no value in backquotes", o.name)
		}
	}
}

// -h lists every option with its variables, its file key and its default.
func TestHelpListsEveryOption(t *testing.T) {
	_, out, err := load([]string{"-h"}, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, o := range options {
		want := append([]string{"--" + o.name}, o.envs()...)
		if o.key != "" {
			want = append(want, o.key)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("help lacks %s:\n%s", w, out)
			}
		}
	}
	for _, w := range []string{"(default 0.25)", "from 0.01 to 4", "(default 127.0.0.1:7777)", "debug, info, warn or error (default info)"} {
		if !strings.Contains(out, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

// The README's configuration table is generated from the options:
// `go test ./internal/daemon -run TestReadmeConfigTable -update`.
func TestReadmeConfigTable(t *testing.T) {
	checkGenerated(t, "config", optionsMarkdown(), "TestReadmeConfigTable")
}
