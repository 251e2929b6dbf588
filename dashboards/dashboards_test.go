package dashboards

// The lab cannot start Docker here, so these tests check it statically:
// the generated JSON against the code, every data source reference against
// the provisioning, every PromQL metric name against what a real daemon
// (started in-process) exports, every Pyroscope profile type against what
// the daemon pushes, and compose.yaml, prometheus.yml and the provisioning
// files against each other and against the files of the repository.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.yaml.in/yaml/v3"

	"github.com/inspectd/inspectd/internal/daemon"
	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/tracewin"
	"github.com/inspectd/inspectd/internal/workload"
)

// TestGeneratedUpToDate fails when grafana/*.json differs from what the code
// generates: run `go generate ./dashboards`.
func TestGeneratedUpToDate(t *testing.T) {
	files, err := filepath.Glob("grafana/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range All {
		want = append(want, filepath.Join("grafana", d.File))
		db, err := d.Build()
		if err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		gen, err := JSON(db)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("grafana", d.File))
		if err != nil {
			t.Fatalf("%v (run go generate ./dashboards)", err)
		}
		if !bytes.Equal(got, gen) {
			t.Errorf("grafana/%s is stale: run go generate ./dashboards", d.File)
		}
	}
	sort.Strings(want)
	if !slices.Equal(files, want) {
		t.Errorf("grafana/ holds %v, the generator writes %v", files, want)
	}
}

// dash is a dashboard JSON as Grafana reads it.
type dash struct {
	file       string
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a collapsed row's panels
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type target struct {
	RefID         string   `json:"refId"`
	Datasource    *dsRef   `json:"datasource"`
	Expr          string   `json:"expr"`
	LegendFormat  string   `json:"legendFormat"`
	ProfileTypeID string   `json:"profileTypeId"`
	LabelSelector string   `json:"labelSelector"`
	QueryType     string   `json:"queryType"`
	GroupBy       []string `json:"groupBy"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Datasource *dsRef         `json:"datasource"`
	Query      map[string]any `json:"query"`
	AllValue   string         `json:"allValue"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboards(t *testing.T) []dash {
	t.Helper()
	files, err := filepath.Glob("grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under grafana/: %v", err)
	}
	var ds []dash
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dash
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: no uid, title or panels", f)
		}
		d.file = f
		ds = append(ds, d)
	}
	return ds
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// query is one target with the data source it resolves to.
type query struct {
	where string
	ds    dsRef
	t     target
}

func queries(d dash) []query {
	var qs []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			ds := tg.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			var ref dsRef
			if ds != nil {
				ref = *ds
			}
			qs = append(qs, query{where: fmt.Sprintf("%s: panel %q target %s", d.file, p.Title, tg.RefID), ds: ref, t: tg})
		}
	}
	return qs
}

type provisionedDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		Type      string         `yaml:"type"`
		UID       string         `yaml:"uid"`
		URL       string         `yaml:"url"`
		Access    string         `yaml:"access"`
		IsDefault bool           `yaml:"isDefault"`
		Editable  bool           `yaml:"editable"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

// readYAML decodes path into v; strict rejects keys v does not model (a
// typo in the provisioning would otherwise be ignored silently).
func readYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadDatasources(t *testing.T) provisionedDatasources {
	t.Helper()
	var p provisionedDatasources
	readYAML(t, "provisioning/datasources/datasources.yaml", &p, true)
	if p.APIVersion != 1 {
		t.Errorf("datasources.yaml: apiVersion %d, want 1", p.APIVersion)
	}
	return p
}

// TestDatasources checks that every data source a dashboard names is
// provisioned, under the same uid and type.
func TestDatasources(t *testing.T) {
	prov := loadDatasources(t)
	types := map[string]string{}
	defaults := 0
	for _, ds := range prov.Datasources {
		if _, dup := types[ds.UID]; dup || ds.UID == "" {
			t.Errorf("datasources.yaml: uid %q empty or repeated", ds.UID)
		}
		types[ds.UID] = ds.Type
		if ds.IsDefault {
			defaults++
		}
	}
	if defaults > 1 {
		t.Errorf("datasources.yaml: %d default data sources", defaults)
	}
	if types[PrometheusUID] != PrometheusType || types[PyroscopeUID] != PyroscopeType {
		t.Errorf("datasources.yaml provisions %v, want %s=%s and %s=%s", types, PrometheusUID, PrometheusType, PyroscopeUID, PyroscopeType)
	}
	check := func(where string, ref *dsRef) {
		if ref == nil {
			t.Errorf("%s: no data source", where)
			return
		}
		typ, ok := types[ref.UID]
		if !ok {
			t.Errorf("%s: data source uid %q is not provisioned (have %v)", where, ref.UID, types)
		} else if ref.Type != typ {
			t.Errorf("%s: data source %s has type %q, provisioned as %q", where, ref.UID, ref.Type, typ)
		}
	}
	uids := map[string]bool{}
	for _, d := range loadDashboards(t) {
		if uids[d.UID] {
			t.Errorf("%s: dashboard uid %s repeated", d.file, d.UID)
		}
		uids[d.UID] = true
		for _, p := range allPanels(d.Panels) {
			if p.Type == "row" {
				continue
			}
			check(fmt.Sprintf("%s: panel %q", d.file, p.Title), p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.file, p.Title)
			}
			refIDs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refIDs[tg.RefID] {
					t.Errorf("%s: panel %q: refId %q empty or repeated", d.file, p.Title, tg.RefID)
				}
				refIDs[tg.RefID] = true
				check(fmt.Sprintf("%s: panel %q target %s", d.file, p.Title, tg.RefID), tg.Datasource)
				if tg.Datasource != nil && p.Datasource != nil && *tg.Datasource != *p.Datasource {
					t.Errorf("%s: panel %q mixes data sources", d.file, p.Title)
				}
			}
			if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q: bad gridPos %+v", d.file, p.Title, p.GridPos)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check(fmt.Sprintf("%s: variable %s", d.file, v.Name), v.Datasource)
			}
		}
	}
}

// The daemon, once per test binary: started in-process with a panicking
// workload (so that the panic and restart counters exist) and a stub
// Pyroscope server (so that the upload failure counter exists).
var (
	scrapeOnce sync.Once
	scraped    map[string]bool
	scrapeErr  error
)

func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	scrapeOnce.Do(func() { scraped, scrapeErr = scrapeDaemon() })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scraped
}

func scrapeDaemon() (map[string]bool, error) {
	pyro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer pyro.Close()

	reg := workload.NewRegistry()
	hello, ok := workload.Default.Lookup("hello")
	if !ok {
		return nil, fmt.Errorf("no hello workload")
	}
	reg.Register(hello)
	reg.Register(workload.Spec{
		Name: "panicky", Lesson: "test", Kind: workload.Broken,
		Description: "Panics at once, so that the supervisor counts a panic and a restart.",
		Run:         func(context.Context, *workload.Env) error { panic("on purpose") },
	})

	cfg := daemon.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.GopsAddr = "off"
	cfg.Workloads = []string{"hello", "panicky"}
	cfg.PyroscopeURL = pyro.URL
	d, err := daemon.Start(cfg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
	}()

	// Wait until the panicking workload has been restarted once: the
	// counters of a CounterVec appear with their first label values.
	var names map[string]bool
	deadline := time.Now().Add(10 * time.Second)
	for {
		names, err = scrape("http://" + d.Addr() + "/metrics")
		if err == nil && names["inspectd_workload_restarts_total"] && names["inspectd_workload_panics_total"] {
			return names, nil
		}
		if time.Now().After(deadline) {
			return names, fmt.Errorf("the daemon exports no panic and restart counters after 10 s (scrape error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape returns the names of the series in a text exposition: histograms
// as name_bucket, name_sum and name_count, as PromQL sees them.
func scrape(u string) (map[string]bool, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names, sc.Err()
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	reFunc     = regexp.MustCompile(`^\s*\(`)
	promWords  = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// metricNames returns the metric names an expression selects: identifiers
// that are not functions, aggregations, keywords, label names in grouping
// clauses or matchers, or anything inside strings and range brackets.
func metricNames(expr string) []string {
	s := reString.ReplaceAllString(expr, `""`)
	s = reMatchers.ReplaceAllString(s, " ")
	s = reRange.ReplaceAllString(s, " ")
	s = reGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range reIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] == '$' || s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // a variable or part of a number (1e3)
		}
		if promWords[name] || reFunc.MatchString(s[loc[1]:]) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`go_threads`, []string{"go_threads"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x",le!="1"}[$__rate_interval])))`, []string{"a_bucket"}},
		{`sum without (instance) (rate(b_total[5m] offset 1m)) / on (job) group_left (kind) c`, []string{"b_total", "c"}},
		{`d{job=~"a|b"} > 1e3 and e`, []string{"d", "e"}},
		{`{__name__="f"}`, nil},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestPromQLMetricsExported checks that every metric a Prometheus query of
// the dashboards selects is exported by the real daemon.
func TestPromQLMetricsExported(t *testing.T) {
	exported := exportedMetrics(t)
	n := 0
	for _, d := range loadDashboards(t) {
		for _, q := range queries(d) {
			if q.ds.Type != PrometheusType {
				continue
			}
			n++
			if !balanced(q.t.Expr) {
				t.Errorf("%s: unbalanced brackets in %q", q.where, q.t.Expr)
			}
			names := metricNames(q.t.Expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", q.where, q.t.Expr)
			}
			for _, name := range names {
				if !exported[name] {
					t.Errorf("%s: %s is not exported by the daemon (expr %q)", q.where, name, q.t.Expr)
				}
			}
			if !strings.Contains(q.t.Expr, `job="`+Job+`"`) {
				t.Errorf("%s: %q does not select job=%q", q.where, q.t.Expr, Job)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus queries found")
	}
}

// A quantile's line is named after it: p50, p90, p99.
func TestQuantileLegends(t *testing.T) {
	re := regexp.MustCompile(`^histogram_quantile\(([0-9.]+),`)
	n := 0
	for _, d := range loadDashboards(t) {
		for _, q := range queries(d) {
			m := re.FindStringSubmatch(q.t.Expr)
			if m == nil {
				continue
			}
			n++
			var f float64
			fmt.Sscan(m[1], &f)
			if want := fmt.Sprintf("p%g", f*100); q.t.LegendFormat != want {
				t.Errorf("%s: the %s quantile is named %q, want %q", q.where, m[1], q.t.LegendFormat, want)
			}
		}
	}
	if n == 0 {
		t.Fatal("no quantile queries found")
	}
}

func balanced(s string) bool {
	s = reString.ReplaceAllString(s, `""`)
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range s {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

// pyroscopeIDs maps pyroscope-go's profile types (the names of its
// constants in internal/daemon/pyroscope.go) to the profile type ids
// Pyroscope stores them under.
var pyroscopeIDs = map[string]string{
	"ProfileCPU":           "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
	"ProfileAllocObjects":  "memory:alloc_objects:count:space:bytes",
	"ProfileAllocSpace":    "memory:alloc_space:bytes:space:bytes",
	"ProfileInuseObjects":  "memory:inuse_objects:count:space:bytes",
	"ProfileInuseSpace":    "memory:inuse_space:bytes:space:bytes",
	"ProfileGoroutines":    "goroutines:goroutine:count:goroutine:count",
	"ProfileMutexCount":    "mutex:contentions:count:contentions:count",
	"ProfileMutexDuration": "mutex:delay:nanoseconds:contentions:count",
	"ProfileBlockCount":    "block:contentions:count:contentions:count",
	"ProfileBlockDuration": "block:delay:nanoseconds:contentions:count",
	// The id of the goroutineleak profile: checked by TestPyroscopeName
	// against the profile the runtime writes.
	"ProfileGoroutineLeak": ProfileGoroutineLeak,
}

// leakProfileTypeID is the profile type id Pyroscope stores pyroscope-go's
// goroutine_leak profile under: the runtime's goroutineleak profile, with
// the display name pyroscope-go v1.5.0 gives its sample type
// (sampleTypeConfigGoroutineLeak in its sample_types.go).
func leakProfileTypeID(t *testing.T) string {
	t.Helper()
	lp := pprof.Lookup("goroutineleak")
	if lp == nil {
		t.Skip("no goroutineleak profile in this Go")
	}
	var buf bytes.Buffer
	if err := lp.WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 1 || p.PeriodType == nil {
		t.Fatalf("the goroutineleak profile has sample types %v and period type %v, want one of each", p.SampleType, p.PeriodType)
	}
	st := p.SampleType[0]
	return strings.Join([]string{pyroscopeName([]string{"goroutine_leak"}), st.Type, st.Unit, p.PeriodType.Type, p.PeriodType.Unit}, ":")
}

// pushedProfileTypes reads the profile types the daemon passes to
// pyroscope-go from internal/daemon/pyroscope.go (the list is unexported).
func pushedProfileTypes(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "internal", "daemon", "pyroscope.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "pyroscopeProfileTypes" {
			return true
		}
		found = true
		ast.Inspect(vs, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "Profile") && sel.Sel.Name != "ProfileType" {
				if id, ok := pyroscopeIDs[sel.Sel.Name]; ok {
					ids[id] = true
				}
			}
			return true
		})
		return false
	})
	if !found || len(ids) == 0 {
		t.Fatal("internal/daemon/pyroscope.go: no pyroscopeProfileTypes list")
	}
	return ids
}

// pyroscopeName is the profile name (__name__) Pyroscope gives a pprof
// profile pushed to /ingest, from its sample types as shown (the sample type
// config's display name, else the type): its RawProfile.metricName in
// pkg/og/convert/pprof.
func pyroscopeName(shown []string) string {
	if slices.Contains(shown, "wall") {
		return "wall"
	}
	var st string
	for _, st = range shown {
		switch {
		case strings.Contains(st, "cpu"):
			return "process_cpu"
		case strings.Contains(st, "alloc_"), strings.Contains(st, "inuse_"), st == "space", st == "objects":
			return "memory"
		case strings.Contains(st, "mutex_"):
			return "mutex"
		case strings.Contains(st, "block_"):
			return "block"
		case strings.Contains(st, "goroutines"):
			return "goroutines"
		}
	}
	return st
}

// stateProfileTypeID is the profile type id Pyroscope stores the daemon's
// goroutine-states profile under, from the profile package model builds and the
// sample type config internal/daemon/stateprofile.go uploads it with.
func stateProfileTypeID(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "internal", "daemon", "stateprofile.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"model.StateProfileSampleType: {", "DisplayName: model.StateProfileSampleType,"} {
		if !bytes.Contains(src, []byte(want)) {
			t.Fatalf("internal/daemon/stateprofile.go: no %q in the sample type config: the display name, and so the profile type id, may have changed", want)
		}
	}
	p := model.StateProfile(&tracewin.Window{}, nil)
	if len(p.SampleType) != 1 || p.PeriodType == nil {
		t.Fatalf("the goroutine states profile has sample types %v and period type %v, want one of each", p.SampleType, p.PeriodType)
	}
	st := p.SampleType[0]
	return strings.Join([]string{pyroscopeName([]string{st.Type}), st.Type, st.Unit, p.PeriodType.Type, p.PeriodType.Unit}, ":")
}

// TestPyroscopeName checks the naming rule, and that the goroutine states
// flame graph queries the id Pyroscope gives that profile.
func TestPyroscopeName(t *testing.T) {
	for _, tc := range []struct {
		shown []string
		want  string
	}{
		// Sample types as shown: pyroscope-go's display names (mutex and
		// block) or the pprof sample types.
		{[]string{"samples", "cpu"}, "process_cpu"},
		{[]string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}, "memory"},
		{[]string{"goroutines"}, "goroutines"},
		{[]string{"mutex_count", "mutex_duration"}, "mutex"},
		{[]string{"block_count", "block_duration"}, "block"},
		{[]string{"goroutine_state_time"}, "goroutine_state_time"},
		{[]string{"goroutine_leak"}, "goroutine_leak"},
	} {
		if got := pyroscopeName(tc.shown); got != tc.want {
			t.Errorf("pyroscopeName(%q) = %q, want %q", tc.shown, got, tc.want)
		}
	}
	if got := stateProfileTypeID(t); got != ProfileGoroutineStates {
		t.Errorf("the goroutine states profile is stored as %q, the dashboards query %q", got, ProfileGoroutineStates)
	}
	if got := leakProfileTypeID(t); got != ProfileGoroutineLeak {
		t.Errorf("the goroutine leak profile is stored as %q, the dashboards query %q", got, ProfileGoroutineLeak)
	}
}

// TestPyroscopeQueries checks the flame graph queries: profile types the
// daemon pushes, the daemon's service name, the workload variable.
func TestPyroscopeQueries(t *testing.T) {
	pushed := pushedProfileTypes(t)
	pushed[stateProfileTypeID(t)] = true
	if app := daemon.Defaults().PyroscopeApp; app != ServiceName {
		t.Errorf("the daemon pushes as %q, the dashboards select service_name=%q", app, ServiceName)
	}
	// The workload variable takes several values: in a regexp match it
	// must be formatted as one ((a|b)), not as Grafana's default glob
	// ({a,b}), which Pyroscope reads as a regexp that matches nothing.
	wantSel := `{service_name="` + ServiceName + `", workload=~"${workload:regex}"}`
	n := 0
	for _, d := range loadDashboards(t) {
		vars := map[string]variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		for _, q := range queries(d) {
			if q.ds.Type != PyroscopeType {
				continue
			}
			n++
			if !pushed[q.t.ProfileTypeID] {
				t.Errorf("%s: profile type %q is not among those the daemon pushes (%v)", q.where, q.t.ProfileTypeID, pushed)
			}
			if q.t.LabelSelector != wantSel {
				t.Errorf("%s: label selector %q, want %q", q.where, q.t.LabelSelector, wantSel)
			}
			if q.t.QueryType != "profile" && q.t.QueryType != "metrics" && q.t.QueryType != "both" {
				t.Errorf("%s: query type %q", q.where, q.t.QueryType)
			}
		}
		if len(queries(d)) > 0 && queries(d)[0].ds.Type == PyroscopeType {
			v, ok := vars["workload"]
			if !ok {
				t.Fatalf("%s: no workload variable", d.file)
			}
			if v.Query["type"] != "labelValue" || v.Query["labelName"] != "workload" || !pushed[fmt.Sprint(v.Query["profileTypeId"])] {
				t.Errorf("%s: workload variable query %v, want a labelValue query of the workload label", d.file, v.Query)
			}
			if v.AllValue != ".*" {
				t.Errorf("%s: workload variable's all value %q, want .* (used with =~)", d.file, v.AllValue)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Pyroscope queries found")
	}
	// The flame graphs filter by the pprof label every workload goroutine carries.
	src, err := os.ReadFile(filepath.Join("..", "internal", "workload", "supervisor.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(`pprof.Labels("workload"`)) {
		t.Error(`internal/workload/supervisor.go no longer labels goroutines with "workload"`)
	}
}

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	WorkingDir  string            `yaml:"working_dir"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   []string          `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, "compose.yaml", &c, false)
	return c
}

// mounts maps a service's container paths to host paths (relative to this
// directory; named volumes as they are).
func mounts(s composeService) map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

func isBind(src string) bool { return strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") }

// interpolate replaces ${VAR...} with a placeholder, as compose would with
// the variable set.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(s, "compose-value")
}

// TestCompose checks compose.yaml against the repository and the other files.
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"inspectd", "pyroscope", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml: no %s service", name)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" {
			t.Errorf("compose.yaml: %s has no image", name)
		}
		for _, dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("compose.yaml: %s depends on unknown service %s", name, dep)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("compose.yaml: %s publishes %s beyond the loopback interface", name, p)
			}
		}
		for dst, src := range mounts(s) {
			if !strings.HasPrefix(dst, "/") {
				t.Errorf("compose.yaml: %s mounts %s at a relative path %s", name, src, dst)
			}
			if !isBind(src) {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("compose.yaml: %s uses volume %s, which is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(src); err != nil {
				t.Errorf("compose.yaml: %s mounts %s, which does not exist: %v", name, src, err)
			}
		}
	}

	// inspectd: the command the real config loader accepts, with a token,
	// pushing to the pyroscope service.
	ins := c.Services["inspectd"]
	src, ok := mounts(ins)[ins.WorkingDir]
	if !ok || filepath.Clean(src) != ".." {
		t.Errorf("compose.yaml: inspectd's working dir %s is not the repository (..)", ins.WorkingDir)
	}
	i := slices.Index(ins.Command, "./cmd/inspectd")
	if i < 0 {
		t.Fatalf("compose.yaml: inspectd does not run ./cmd/inspectd: %q", ins.Command)
	}
	if _, err := os.Stat(filepath.Join(src, "cmd", "inspectd")); err != nil {
		t.Error(err)
	}
	env := map[string]string{}
	for k, v := range ins.Environment {
		env[k] = interpolate(v)
	}
	cfg, err := daemon.Load(ins.Command[i+1:], func(k string) string { return env[k] }, workload.Default, io.Discard)
	if err != nil {
		t.Fatalf("compose.yaml: inspectd's command %q: %v", ins.Command[i+1:], err)
	}
	if cfg.Token == "" {
		t.Error("compose.yaml: inspectd runs without a token")
	}
	if !strings.Contains(ins.Environment["INSPECTD_TOKEN"], ":?") {
		t.Error("compose.yaml: INSPECTD_TOKEN should be required (${INSPECTD_TOKEN:?...}), not defaulted")
	}
	if cfg.PyroscopeApp != ServiceName {
		t.Errorf("compose.yaml: inspectd pushes as %q, the dashboards select %q", cfg.PyroscopeApp, ServiceName)
	}
	checkServiceURL(t, c, "inspectd --pyroscope-url", cfg.PyroscopeURL, "pyroscope")
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ins.Ports, "127.0.0.1:"+port+":"+port) {
		t.Errorf("compose.yaml: inspectd listens on %s but publishes %v", cfg.Listen, ins.Ports)
	}

	// pyroscope: a 2.x image, storing only in the v2 format, its data in a
	// volume where the image's working directory (/data) puts it.
	py := c.Services["pyroscope"]
	if !regexp.MustCompile(`^grafana/pyroscope:2\.\d+\.\d+$`).MatchString(py.Image) {
		t.Errorf("compose.yaml: pyroscope runs %s, want grafana/pyroscope:2.x.y", py.Image)
	}
	if !slices.Contains(py.Command, "-architecture.storage=v2") || !slices.Contains(py.Command, "-config.file=/etc/pyroscope/config.yaml") {
		t.Errorf("compose.yaml: pyroscope's command %q: want the image's config file and -architecture.storage=v2", py.Command)
	}
	if src, ok := mounts(py)["/data"]; !ok || isBind(src) {
		t.Errorf("compose.yaml: pyroscope keeps its data in %q, want a volume at /data", src)
	}

	// prometheus: its configuration is mounted where --config.file says,
	// and scrapes the inspectd service on its port.
	pr := c.Services["prometheus"]
	confPath := "/etc/prometheus/prometheus.yml"
	for _, a := range pr.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			confPath = v
		}
	}
	if src := mounts(pr)[confPath]; filepath.Clean(src) != "prometheus.yml" {
		t.Errorf("compose.yaml: prometheus reads %s, mounted from %q, want ./prometheus.yml", confPath, src)
	}
	checkScrapeConfig(t, "inspectd:"+port)

	// grafana: provisioning and dashboards mounted where the provider looks.
	gr := c.Services["grafana"]
	gm := mounts(gr)
	if filepath.Clean(gm["/etc/grafana/provisioning"]) != "provisioning" {
		t.Errorf("compose.yaml: grafana's /etc/grafana/provisioning is %q, want ./provisioning", gm["/etc/grafana/provisioning"])
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			Folder                string `yaml:"folder"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "provisioning/dashboards/dashboards.yaml", &prov, true)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboards.yaml: want one file provider, have %+v", prov.Providers)
	}
	dir := gm[prov.Providers[0].Options.Path]
	if filepath.Clean(dir) != "grafana" {
		t.Errorf("compose.yaml: the provider reads %s, mounted from %q, want ./grafana (the generated dashboards)", prov.Providers[0].Options.Path, dir)
	}
	for _, d := range All {
		if _, err := os.Stat(filepath.Join(dir, d.File)); err != nil {
			t.Error(err)
		}
	}
	if home := gr.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		rel, err := filepath.Rel(prov.Providers[0].Options.Path, home)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("compose.yaml: home dashboard %s is outside the mounted dashboards", home)
		} else if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("compose.yaml: home dashboard: %v", err)
		}
	}
	if gr.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "" && gr.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("compose.yaml: anonymous users are %s, want Viewer", gr.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"])
	}

	// The data sources point at the compose services.
	for _, ds := range loadDatasources(t).Datasources {
		want := map[string]string{PrometheusType: "prometheus", PyroscopeType: "pyroscope"}[ds.Type]
		checkServiceURL(t, c, "datasources.yaml "+ds.Name, ds.URL, want)
	}
}

// checkServiceURL checks that raw is http://SERVICE:PORT for the compose
// service want, whose image serves on that port.
func checkServiceURL(t *testing.T, c composeFile, what, raw, want string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		t.Errorf("%s: %q is not an http URL", what, raw)
		return
	}
	if u.Hostname() != want {
		t.Errorf("%s: %q does not name the %s service", what, raw, want)
	}
	if _, ok := c.Services[u.Hostname()]; !ok {
		t.Errorf("%s: %q: no such compose service", what, raw)
	}
	ports := map[string]string{"pyroscope": "4040", "prometheus": "9090"}
	if p := ports[want]; p != "" && u.Port() != p {
		t.Errorf("%s: %q: %s serves on port %s", what, raw, want, p)
	}
}

func checkScrapeConfig(t *testing.T, target string) {
	t.Helper()
	var conf struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Scheme        string `yaml:"scheme"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &conf, false)
	if _, err := time.ParseDuration(conf.Global.ScrapeInterval); err != nil {
		t.Errorf("prometheus.yml: scrape_interval: %v", err)
	}
	for _, ds := range loadDatasources(t).Datasources {
		if ti, ok := ds.JSONData["timeInterval"]; ok && ti != conf.Global.ScrapeInterval {
			t.Errorf("datasources.yaml: %s's timeInterval %v differs from the scrape interval %s", ds.Name, ti, conf.Global.ScrapeInterval)
		}
	}
	for _, sc := range conf.ScrapeConfigs {
		if sc.JobName != Job {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("prometheus.yml: job %s scrapes %s, the daemon serves /metrics", Job, sc.MetricsPath)
		}
		if sc.Scheme != "" && sc.Scheme != "http" {
			t.Errorf("prometheus.yml: job %s uses scheme %s", Job, sc.Scheme)
		}
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, target) {
				return
			}
		}
		t.Errorf("prometheus.yml: job %s does not scrape %s", Job, target)
		return
	}
	t.Errorf("prometheus.yml: no job %q (the dashboards select job=%q)", Job, Job)
}
