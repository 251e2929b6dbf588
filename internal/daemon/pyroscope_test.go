package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/workload"
)

// upload is one profile a Pyroscope receiver got, decoded.
type upload struct {
	name     string // the name query parameter: app{tags}
	user     string
	password string
	tenant   string
	prof     *profile.Profile
	types    []string // sample types, and the display names of sample_type_config
}

// receiver speaks the part of Pyroscope's ingest protocol pyroscope-go
// v1.5.0 uses: POST /ingest?name=app{tags}&from&until&spyName&sampleRate...
// with a multipart body whose "profile" part is a (gzipped) pprof profile
// and whose optional "sample_type_config" part is JSON.
type receiver struct {
	t  *testing.T
	mu sync.Mutex
	up []upload
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	for _, k := range []string{"name", "from", "until", "spyName"} {
		if q.Get(k) == "" {
			rc.t.Errorf("ingest without %s: %s", k, r.URL.RawQuery)
		}
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		rc.t.Errorf("ingest body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u := upload{name: q.Get("name"), tenant: r.Header.Get("X-Scope-OrgID")}
	u.user, u.password, _ = r.BasicAuth()
	f, _, err := r.FormFile("profile")
	if err != nil {
		rc.t.Errorf("ingest without a profile part: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(f)
	u.prof, err = profile.Parse(bytes.NewReader(data))
	if err != nil {
		rc.t.Errorf("ingest: the profile does not parse: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, st := range u.prof.SampleType {
		u.types = append(u.types, st.Type)
	}
	if f, _, err := r.FormFile("sample_type_config"); err == nil {
		var stc map[string]struct {
			DisplayName string `json:"display-name"`
		}
		data, _ := io.ReadAll(f)
		if err := json.Unmarshal(data, &stc); err != nil {
			rc.t.Errorf("sample_type_config: %v", err)
		}
		for _, c := range stc {
			if c.DisplayName != "" {
				u.types = append(u.types, c.DisplayName)
			}
		}
	}
	rc.mu.Lock()
	rc.up = append(rc.up, u)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) uploads() []upload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.up)
}

// hasFunc reports whether a sample labelled workload=wl has a frame whose
// function name contains fn.
func hasFunc(p *profile.Profile, wl, fn string) bool {
	for _, s := range p.Sample {
		if !slices.Contains(s.Label["workload"], wl) {
			continue
		}
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && strings.Contains(l.Function.Name, fn) {
					return true
				}
			}
		}
	}
	return false
}

// startDaemon runs the daemon in-process and returns its base URL and a stop
// function that reports how long shutdown took.
func startDaemon(t *testing.T, cfg Config) (string, func() time.Duration) {
	t.Helper()
	t.Setenv("GOPS_CONFIG_DIR", t.TempDir())
	d, err := Start(cfg, workload.Default, NewLogger(cfg, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	base := "http://" + d.Addr()
	waitHealthy(t, base)
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("the daemon did not stop within 10s")
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

func pyroscopeConfig(url string) Config {
	cfg := Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.GopsAddr = "off"
	cfg.Workloads = []string{"contention", "leak"}
	cfg.PyroscopeURL = url
	cfg.PyroscopeUploadRate = time.Second
	return cfg
}

// TestPyroscopePush starts the daemon pushing to a receiver on loopback and
// checks what arrives: every profile type, the tags, the workloads' labels
// and functions; and that /debug/pprof/profile and the flame graph UI work
// while Pyroscope holds the CPU profiler.
func TestPyroscopePush(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := pyroscopeConfig(srv.URL)
	cfg.PyroscopeTags["env"] = "test"
	cfg.PyroscopeUser, cfg.PyroscopePassword, cfg.PyroscopeTenant = "lab", "secret", "tenant-1"
	base, stop := startDaemon(t, cfg)

	// The stock handler would answer 500 here: pyroscope-go profiles the CPU.
	resp, err := http.Get(base + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/pprof/profile: %d %s", resp.StatusCode, body)
	}
	cpu, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/debug/pprof/profile does not parse: %v", err)
	}
	if cpu.SampleType[len(cpu.SampleType)-1].Type != "cpu" {
		t.Errorf("/debug/pprof/profile sample types %v; want cpu", cpu.SampleType)
	}

	// The flame graph of a live CPU profile, through the pprof web UI.
	code, page := get(t, base+"/ui/cpu?seconds=2")
	if code != http.StatusOK {
		t.Fatalf("/ui/cpu: %d %s", code, page)
	}
	if !strings.Contains(page, "workload.runContention") {
		t.Errorf("the flame graph page does not name workload.runContention")
	}

	want := []string{"cpu", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space", "goroutine",
		"mutex_count", "mutex_duration", "block_count", "block_duration", "goroutine_leak"}
	deadline := time.Now().Add(20 * time.Second)
	var missing []string
	var cpuOK, goroutineOK bool
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		seen := map[string]bool{}
		for _, u := range rc.uploads() {
			for _, ty := range u.types {
				seen[ty] = true
			}
			if slices.Contains(u.types, "cpu") && hasFunc(u.prof, "contention", "workload.runContention") {
				cpuOK = true
			}
			if slices.Contains(u.types, "goroutine") && hasFunc(u.prof, "leak", "internal/workload.") {
				goroutineOK = true
			}
		}
		missing = missing[:0]
		for _, w := range want {
			if !seen[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 && cpuOK && goroutineOK {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("profile types never uploaded: %v", missing)
	}
	if !cpuOK {
		t.Error("no CPU profile with workload.runContention under the label workload=contention")
	}
	if !goroutineOK {
		t.Error("no goroutine profile with the leak workload's goroutines under the label workload=leak")
	}

	ups := rc.uploads()
	if len(ups) == 0 {
		t.Fatal("no uploads")
	}
	nameRe := regexp.MustCompile(`^inspectd\{.*\}$`)
	for _, u := range ups[:1] {
		for _, tag := range []string{"env=test", "host=", "version="} {
			if !strings.Contains(u.name, tag) {
				t.Errorf("upload name %q lacks the tag %s", u.name, tag)
			}
		}
		if !nameRe.MatchString(u.name) {
			t.Errorf("upload name %q: want inspectd{tags}", u.name)
		}
		if u.user != "lab" || u.password != "secret" || u.tenant != "tenant-1" {
			t.Errorf("upload auth user %q password %q tenant %q; want lab, secret, tenant-1", u.user, u.password, u.tenant)
		}
	}

	before := len(rc.uploads())
	if took := stop(); took > 5*time.Second {
		t.Errorf("shutdown took %v; want at most 5s", took)
	}
	if after := len(rc.uploads()); after <= before {
		t.Errorf("shutdown flushed nothing: %d uploads before, %d after", before, after)
	}
}

// failures reads inspectd_pyroscope_upload_failures_total from /metrics.
func failures(t *testing.T, base string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^inspectd_pyroscope_upload_failures_total (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("/metrics has no inspectd_pyroscope_upload_failures_total")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPyroscopeServerDown: a Pyroscope server that refuses every upload, or
// never answers, costs the daemon nothing but a counter: it keeps serving,
// counts the failures and shuts down within its budget.
func TestPyroscopeServerDown(t *testing.T) {
	for _, c := range []struct {
		name    string
		handler func(stop <-chan struct{}) http.HandlerFunc
	}{
		{"refuses", func(<-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "ingester down", http.StatusInternalServerError)
			}
		}},
		{"hangs", func(stop <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-stop:
				case <-r.Context().Done():
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hang := make(chan struct{})
			srv := httptest.NewServer(c.handler(hang))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(hang) }) // runs before srv.Close
			base, stop := startDaemon(t, pyroscopeConfig(srv.URL))
			if got := failures(t, base); got != 0 {
				t.Errorf("failures at start: %v", got)
			}
			deadline := time.Now().Add(20 * time.Second)
			for failures(t, base) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no upload failure counted within 20s")
				}
				time.Sleep(250 * time.Millisecond)
			}
			if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz: %d", code)
			}
			if code, _ := get(t, base+"/api/v1/workloads/contention"); code != http.StatusOK {
				t.Errorf("/api/v1/workloads/contention: %d", code)
			}
			if took := stop(); took > 5*time.Second {
				t.Errorf("shutdown took %v; want at most 5s", took)
			}
		})
	}
}

func TestLoadPyroscope(t *testing.T) {
	file := writeFile(t, "pyroscope_url: http://file:4040\npyroscope_app: lab\npyroscope_tags: {env: file, team: a}\n"+
		"pyroscope_tenant: t1\npyroscope_upload_rate: 5s\n")
	cfg, _, err := load([]string{"--config", file, "--pyroscope-tag", "env=flag"},
		map[string]string{"PYROSCOPE_BASIC_AUTH_USER": "u", "PYROSCOPE_BASIC_AUTH_PASSWORD": "p", "PYROSCOPE_SERVER_ADDRESS": "http://env:4040"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PyroscopeURL != "http://env:4040" || cfg.PyroscopeApp != "lab" || cfg.PyroscopeTenant != "t1" ||
		cfg.PyroscopeUploadRate != 5*time.Second || cfg.PyroscopeUser != "u" || cfg.PyroscopePassword != "p" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.PyroscopeTags["env"] != "flag" || cfg.PyroscopeTags["team"] != "a" {
		t.Errorf("tags %v; want env=flag team=a", cfg.PyroscopeTags)
	}
	// INSPECTD_PYROSCOPE_URL wins over PYROSCOPE_SERVER_ADDRESS; the flag over both.
	cfg, _, err = load(nil, map[string]string{"INSPECTD_PYROSCOPE_URL": "http://a:1", "PYROSCOPE_SERVER_ADDRESS": "http://b:1"})
	if err != nil || cfg.PyroscopeURL != "http://a:1" {
		t.Errorf("INSPECTD_PYROSCOPE_URL: %q, %v", cfg.PyroscopeURL, err)
	}
	cfg, _, err = load([]string{"--pyroscope-url", "http://c:1"}, map[string]string{"INSPECTD_PYROSCOPE_URL": "http://a:1"})
	if err != nil || cfg.PyroscopeURL != "http://c:1" {
		t.Errorf("--pyroscope-url: %q, %v", cfg.PyroscopeURL, err)
	}
	cfg, _, _ = load(nil, nil)
	if cfg.PyroscopeURL != "" || cfg.PyroscopeApp != "inspectd" || cfg.PyroscopeUploadRate != 15*time.Second {
		t.Errorf("defaults: url %q app %q rate %v", cfg.PyroscopeURL, cfg.PyroscopeApp, cfg.PyroscopeUploadRate)
	}

	for _, c := range []struct {
		name string
		file string
		args []string
		want []string
	}{
		{name: "bad url", args: []string{"--pyroscope-url", "localhost:4040"}, want: []string{`pyroscope url "localhost:4040"`, "http or https"}},
		{name: "bad app", args: []string{"--pyroscope-url", "http://x:1", "--pyroscope-app", "a{b}"}, want: []string{`pyroscope app "a{b}"`}},
		{name: "bad tag flag", args: []string{"--pyroscope-tag", "novalue"}, want: []string{"pyroscope-tag", "key=value"}},
		{name: "bad tag key", args: []string{"--pyroscope-url", "http://x:1", "--pyroscope-tag", "1x=y"}, want: []string{`pyroscope tag "1x"`}},
		{name: "bad tag value", file: "pyroscope_url: http://x:1\npyroscope_tags: {env: 'a,b'}\n", want: []string{`pyroscope tag env="a,b"`, "without { } , ="}},
		{name: "user without password", args: []string{"--pyroscope-url", "http://x:1", "--pyroscope-user", "u"}, want: []string{"both user and password"}},
		{name: "bad rate", args: []string{"--pyroscope-url", "http://x:1", "--pyroscope-upload-rate", "10ms"}, want: []string{"pyroscope upload rate 10ms", "from 1s to 1h"}},
		{name: "bad rate in file", file: "pyroscope_upload_rate: soon\n", want: []string{`pyroscope_upload_rate "soon"`, "15s"}},
		{name: "unknown key lists pyroscope keys", file: "pyroscope: {}\n", want: []string{`unknown key "pyroscope"`, "pyroscope_url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, c.file)}, args...)
			}
			_, _, err := load(args, nil)
			if err == nil {
				t.Fatalf("no error; want one containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
