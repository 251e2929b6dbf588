package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/server"
)

// An option is one setting: the flag --name, the environment variable
// envName(name) and the config file's key, all read by one value.
type option struct {
	name string // the flag, without dashes: "cpu-budget"
	// key is the config file's key, "a.b" when nested (diagnose.window);
	// "" for an option the file does not have.
	key string
	// help says what the option does, the name of its value in
	// backquotes as package flag has it; want() and the default follow.
	help  string
	v     value
	alias string // a variable also read when envName(name) is unset
	noEnv bool   // no environment variable
	// secret: the value never appears in a message.
	secret bool
	// loader: the option steers the loading (which file, or only list
	// the catalog) rather than set the Config; it is read first.
	loader bool
	// what names the setting in a message about its value: "listen
	// address"; by default name with spaces ("cpu budget").
	what string
}

// options are the daemon's settings, in the order -h and the README list
// them. An option of the daemon is one entry here and its Config field;
// `go test ./internal/daemon -run TestReadmeConfigTable -update` then
// writes it into the README's table.
var options = []option{
	{name: "config", loader: true, help: "read settings from this YAML `file`",
		v: str(func(s *state) *string { return &s.configPath }, "", rule[string]{})},
	{name: "listen", key: "listen", what: "listen address",
		help: "`address` of the HTTP API, pprof and metrics; non-loopback needs --token",
		v:    str(func(s *state) *string { return &s.Listen }, "127.0.0.1:7777", hostPort)},
	{name: "workloads", key: "workloads",
		help: "comma-separated workload `names` to run, or all, healthy, broken, none",
		v:    &workloadList{def: DefaultWorkloads}},
	{name: "param",
		help: "set a workload parameter as `workload.name=value` (repeatable; in the config file, under workloads)",
		v:    paramValue{}},
	{name: "gops-addr", key: "gops_addr", what: "gops address",
		help: "`address` of the gops agent (loopback only), or off",
		v:    str(func(s *state) *string { return &s.GopsAddr }, "127.0.0.1:0", loopbackOrOff)},
	{name: "token", key: "token", secret: true,
		help: "bearer `token` required on /api, /debug and /ui",
		v:    str(func(s *state) *string { return &s.Token }, "", bearerToken)},
	{name: "log-format", key: "log_format", help: "log `format`",
		v: str(func(s *state) *string { return &s.LogFormat }, "text", oneOf("text", "json"))},
	{name: "log-level", key: "log_level", help: "log `level`",
		v: level(func(s *state) *slog.Level { return &s.LogLevel }, slog.LevelInfo)},
	{name: "mutex-profile-fraction", key: "mutex_profile_fraction",
		help: "sample 1 in `N` mutex contention events (0 turns the mutex profile off)",
		v:    integer(func(s *state) *int { return &s.MutexProfileFraction }, 100, atLeast(0))},
	{name: "block-profile-rate", key: "block_profile_rate",
		help: "sample one blocking event per this much `time` blocked (0 turns the block profile off)",
		v:    duration(func(s *state) *time.Duration { return &s.BlockProfileRate }, 100*time.Microsecond, atLeast[time.Duration](0))},
	{name: "overhead-budget", key: "overhead_budget",
		help: "the share of the program's CPU (a `fraction`) inspection may take while clients ask: the execution tracer and its analysis, and building, diagnosing and encoding snapshots; a program whose goroutines switch often is traced a part of each interval",
		v:    float(func(s *state) *float64 { return &s.OverheadBudget }, 0.05, between(0.001, 1))},
	{name: "max-pause", key: "max_pause",
		help: "the longest stop-the-world `duration` inspection may cause: a full goroutine dump (about 6µs per goroutine) only where it fits",
		v:    duration(func(s *state) *time.Duration { return &s.MaxPause }, time.Millisecond, between(10*time.Microsecond, 10*time.Second))},
	{name: "flight-recorder", key: "flight_recorder",
		help: "keep an execution trace flight recorder running all the time, so that the first snapshot after a quiet spell covers what happened before it (at the tracer's cost all the time)",
		v:    boolean(func(s *state) *bool { return &s.FlightRecorder }, false)},
	{name: "trace-min-age", key: "trace_min_age",
		help: "with --flight-recorder, keep at least this `duration` of execution trace",
		v:    duration(func(s *state) *time.Duration { return &s.TraceMinAge }, 10*time.Second, between(time.Second, 10*time.Minute))},
	{name: "trace-max-bytes", key: "trace_max_bytes",
		help: "with --flight-recorder, keep about this many `bytes` of execution trace at most",
		v:    size(func(s *state) *uint64 { return &s.TraceMaxBytes }, 64<<20, sizeBetween(1<<20, 4<<30))},
	{name: "dump-budget", key: "dump_budget",
		help: "the share of wall time (a `fraction`) full goroutine dumps may stop the world",
		v:    float(func(s *state) *float64 { return &s.DumpBudget }, 0.01, above(0, 0.5))},
	{name: "cpu-budget", key: "cpu_budget",
		help: "the share of one core (a `fraction`) building snapshots may take while clients ask for them; sooner requests share the last snapshot",
		v:    float(func(s *state) *float64 { return &s.CPUBudget }, 0.25, between(0.01, 4))},
	{name: "pyroscope-url", key: "pyroscope_url", alias: "PYROSCOPE_SERVER_ADDRESS",
		help: "push continuous profiles to the Pyroscope server at this `URL` (off when empty)",
		v:    str(func(s *state) *string { return &s.PyroscopeURL }, "", httpURL)},
	{name: "pyroscope-app", key: "pyroscope_app",
		help: "Pyroscope application `name`: letters, digits, '.', '_' and '-'",
		v:    str(func(s *state) *string { return &s.PyroscopeApp }, "inspectd", rule[string]{})}, // checked with a URL: validatePyroscope
	{name: "pyroscope-tag", key: "pyroscope_tags",
		help: "add a Pyroscope tag as `key=value` (repeatable or comma-separated; host and version are always set)",
		v:    &pairs{field: func(s *state) *map[string]string { return &s.PyroscopeTags }, form: "key=value", example: "env=lab"}},
	{name: "pyroscope-user", key: "pyroscope_user", alias: "PYROSCOPE_BASIC_AUTH_USER",
		help: "Pyroscope basic auth `user` (with a password)",
		v:    str(func(s *state) *string { return &s.PyroscopeUser }, "", rule[string]{})},
	{name: "pyroscope-password", key: "pyroscope_password", alias: "PYROSCOPE_BASIC_AUTH_PASSWORD", secret: true,
		help: "Pyroscope basic auth `password`",
		v:    str(func(s *state) *string { return &s.PyroscopePassword }, "", rule[string]{})},
	{name: "pyroscope-tenant", key: "pyroscope_tenant",
		help: "Pyroscope tenant `id`, sent as X-Scope-OrgID",
		v:    str(func(s *state) *string { return &s.PyroscopeTenant }, "", rule[string]{})},
	{name: "pyroscope-upload-rate", key: "pyroscope_upload_rate",
		help: "upload profiles to Pyroscope every `duration`",
		v:    duration(func(s *state) *time.Duration { return &s.PyroscopeUploadRate }, 15*time.Second, between(time.Second, time.Hour))},
	{name: "diagnose-interval", key: "diagnose.interval",
		help: "run the diagnosis rules every `duration` in the background (0: only on request)",
		v:    duration(func(s *state) *time.Duration { return &s.DiagnoseInterval }, 2*time.Second, offOrAtLeast(100*time.Millisecond))},
	{name: "diagnose-window", key: "diagnose.window",
		help: "the `duration` of trace the background diagnosis looks at",
		v:    duration(func(s *state) *time.Duration { return &s.DiagnoseWindow }, 5*time.Second, between(time.Second, time.Minute))},
	{name: "diagnose-allow", key: "diagnose.allow",
		help: "run only these diagnosis `rules` (comma-separated ids)",
		v:    &list{field: func(s *state) *[]string { return &s.Diagnose.Allow }, example: "deadlock,goroutine-leak"}},
	{name: "diagnose-deny", key: "diagnose.deny",
		help: "never run these diagnosis `rules` (comma-separated ids)",
		v:    &list{field: func(s *state) *[]string { return &s.Diagnose.Deny }, example: "busy-poll"}},
	{name: "diagnose-threshold", key: "diagnose.thresholds",
		help: "set a rule threshold as `rule.name=value` (repeatable or comma-separated; the thresholds are in the README)",
		v:    &pairs{field: func(s *state) *map[string]string { return &s.Diagnose.Thresholds }, form: "rule.name=value", example: "goroutine-leak.stuck_for=5s"}},
	{name: "list-workloads", loader: true, noEnv: true,
		help: "print the workload catalog and exit (also: inspectd workloads)",
		v:    boolean(func(s *state) *bool { return &s.listOnly }, false)},
}

// Rules of one option that are more than a range.
var (
	hostPort = rule[string]{check: func(addr string) error {
		_, err := server.IsLoopback(addr)
		return err
	}}
	loopbackOrOff = rule[string]{check: func(addr string) error {
		if addr == "" || addr == "off" {
			return nil
		}
		loopback, err := server.IsLoopback(addr)
		if err != nil {
			return err
		}
		if !loopback {
			return errors.New("refusing to run the gops agent there: its protocol has no authentication; use a loopback address or off")
		}
		return nil
	}}
	bearerToken = rule[string]{check: func(token string) error {
		if server.CheckToken(token) == nil {
			return nil
		}
		// Say where, not what: the token is a secret.
		at := strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f })
		return fmt.Errorf("has a space or a character that is not printable ASCII (at byte %d of %d), which a bearer token cannot carry", at+1, len(token))
	}}
	httpURL = rule[string]{text: "an http or https URL", check: func(s string) error {
		if s == "" {
			return nil
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("want an http or https URL such as http://localhost:4040")
		}
		return nil
	}}
)

// envName is the environment variable that sets a flag: --cpu-budget is
// INSPECTD_CPU_BUDGET.
func envName(flag string) string {
	return "INSPECTD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envs are the option's environment variables, in the order they are read.
func (o *option) envs() []string {
	if o.noEnv {
		return nil
	}
	if o.alias != "" {
		return []string{envName(o.name), o.alias}
	}
	return []string{envName(o.name)}
}

// names names the option everywhere it can be set, for a message about a
// value that may come from any of them: "(--cpu-budget,
// INSPECTD_CPU_BUDGET or cpu_budget in a config file)".
func (o *option) names() string {
	names := append([]string{"--" + o.name}, o.envs()...)
	if o.key != "" {
		names = append(names, o.key+" in a config file")
	}
	return "(" + orList(names) + ")"
}

func (o *option) title() string {
	if o.what != "" {
		return o.what
	}
	return strings.ReplaceAll(o.name, "-", " ")
}

// lookup is the option of a flag; it panics on a name the table lacks.
func lookup(name string) *option {
	for i := range options {
		if options[i].name == name {
			return &options[i]
		}
	}
	panic("daemon: no option " + name)
}

// usage is the option's help: the name of its value and what it does,
// followed by what it takes.
func (o *option) usage() (arg, text string) {
	arg, text = unquote(o.help)
	if a := o.v.allowed(); a != "" {
		text += "; " + a
	}
	return arg, text
}

// unquote takes the name in backquotes out of a help text, as package
// flag does: "`address` of the API" is address, "address of the API".
func unquote(help string) (name, text string) {
	before, rest, ok := strings.Cut(help, "`")
	if !ok {
		return "", help
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", help
	}
	return name, before + name + after
}

// defaultText is the option's default as -h and the README show it, or "".
func (o *option) defaultText(defaults *state) string {
	if t := o.v.text(defaults); t != "false" {
		return t
	}
	return ""
}

func defaultsState() *state {
	cfg := Defaults()
	return &state{Config: &cfg}
}

// printUsage writes inspectd -h.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: inspectd [flags]
       inspectd workloads    print the workload catalog

inspectd runs a lab of concurrency workloads and serves pprof, fgprof, a gops agent,
Prometheus metrics and the inspection API. Each setting comes from its flag, else its
INSPECTD_<FLAG> environment variable (INSPECTD_LISTEN, INSPECTD_LOG_FORMAT, ...), else
its key in the --config file, else its default.

Flags (environment variable, config file key):
`)
	d := defaultsState()
	for i := range options {
		o := &options[i]
		arg, text := o.usage()
		line := "  --" + o.name
		if arg != "" && !o.v.isBool() {
			line += " " + arg
		}
		var where []string
		where = append(where, o.envs()...)
		if o.key != "" {
			where = append(where, o.key)
		}
		if len(where) > 0 {
			line += "  (" + strings.Join(where, ", ") + ")"
		}
		if def := o.defaultText(d); def != "" {
			text += " (default " + def + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, text)
	}
}

// optionsMarkdown is the README's table of the options.
func optionsMarkdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment | config file | default | |\n| --- | --- | --- | --- | --- |\n")
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	d := defaultsState()
	for i := range options {
		o := &options[i]
		_, text := o.usage()
		var envs []string
		for _, e := range o.envs() {
			envs = append(envs, code(e))
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s | %s |\n", o.name, strings.Join(envs, ", "), code(o.key),
			code(o.defaultText(d)), strings.ReplaceAll(text, "|", `\|`))
	}
	return b.String()
}
