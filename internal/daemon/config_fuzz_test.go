package daemon

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/inspectd/inspectd/internal/workload"
)

// FuzzConfigFile loads any YAML file as the daemon's config (--config):
// no panic; a file it refuses is a UsageError (exit status 2) in one line
// that names the file, its values quoted; and a file it takes gives a
// configuration that the same settings given as flags give too, the
// workload parameters included (each value as its text).
//
//	go test -run '^$' -fuzz '^FuzzConfigFile$' -fuzztime 60s ./internal/daemon
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:9001\nlog_format: json\nlog_level: debug\nblock_profile_rate: 1ms\nworkloads:\n  hello: {interval: 50ms}\n  leak: {}\n",
		"workloads: [hello, leak]\ncpu_budget: 0.5\nflight_recorder: true\n",
		"workloads: hello, busy-poll\ndiagnose:\n  window: 5s\n  allow: [busy-poll]\n  thresholds: {busy-poll.min_polls: 100}\n",
		"pyroscope_url: http://127.0.0.1:4040\npyroscope_tags: {env: lab, \"a,b\": c}\npyroscope_upload_rate: 5s\n",
		"workloads: {spawn-storm: {max_goroutines: \"20\", step: 0s}, cpu-pool: {workers: 2.0}}\n",
		"pyroscope_tags: {\"a,b\": c, d: \"e=f\"}\n",
		"diagnose: {thresholds: {\"x=y\": 1}}\n",
		"a: &x {b: *x}\n",
		"workloads: &w [hello]\ndiagnose: {allow: *w}\n",
		"listen: [\n",
		"token: \"two words\"\n",
		"mutex_profile_fraction: 0x10\ntrace_max_bytes: 1e9\n",
		"---\n...\n",
		"",
	} {
		f.Add([]byte(s))
	}
	if readme, err := os.ReadFile(filepath.Join("..", "..", "README.md")); err == nil {
		if _, rest, ok := strings.Cut(string(readme), "```yaml\n"); ok {
			example, _, _ := strings.Cut(rest, "```")
			f.Add([]byte(example))
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(dir, "inspectd.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := load([]string{"--config", path}, nil)
		if err != nil {
			var ue *UsageError
			msg := err.Error()
			if !errors.As(err, &ue) || msg == "" || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("%q: want a UsageError in one line of printable text", msg)
			}
			if strings.HasPrefix(msg, "config ") && !strings.HasPrefix(msg, "config "+path+": ") {
				t.Fatalf("%q: want it to name %s", msg, path)
			}
			return
		}
		// The same settings as flags (those that differ from the defaults).
		var args []string
		st, def := &state{Config: &cfg}, defaultsState()
		for i := range options {
			o := &options[i]
			if o.loader || o.key == "" || o.v.text(st) == o.v.text(def) {
				continue
			}
			args = append(args, "--"+o.name+"="+o.v.text(st))
		}
		params := resolved(t, cfg)
		for _, w := range slices.Sorted(maps.Keys(params)) {
			for _, k := range slices.Sorted(maps.Keys(params[w])) {
				args = append(args, "--param", w+"."+k+"="+workload.FormatValue(params[w][k]))
			}
		}
		again, _, err := load(args, nil)
		if err != nil {
			t.Fatalf("the file's settings as flags %q: %v", args, err)
		}
		st2 := &state{Config: &again}
		for i := range options {
			o := &options[i]
			if o.loader || o.key == "" {
				continue
			}
			if a, b := o.v.text(st), o.v.text(st2); a != b {
				t.Fatalf("%s: %q from the file, %q from --%s", o.key, a, b, o.name)
			}
		}
		if got := resolved(t, again); !reflect.DeepEqual(got, params) {
			t.Fatalf("parameters %v from the file, %v from --param", params, got)
		}
	})
}

// resolved is the parameters cfg sets, each workload's resolved against
// its spec: only those set, in their typed form.
func resolved(t *testing.T, cfg Config) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for w, raw := range cfg.Params {
		if len(raw) == 0 {
			continue
		}
		spec, ok := workload.Default.Lookup(w)
		if !ok {
			t.Fatalf("parameters of unknown workload %q taken", w)
		}
		p, err := workload.Resolve(w, spec.Params, raw)
		if err != nil {
			t.Fatalf("parameters %v of %s taken, yet: %v", raw, w, err)
		}
		all := p.Map()
		out[w] = map[string]any{}
		for k := range raw {
			out[w][k] = all[k]
		}
	}
	return out
}
