// Package corpus_test runs the corpus of blocking bugs in ./bugs, built with
// Go 1.27 and with the machine's Go 1.26, once and repeating, and diagnoses
// each with the real inspect-cli, beside the target's own goroutineleak
// profile. docs/corpus.md says what it is and how to read the table.
//
//	go test ./corpus                                # the default run, asserted
//	CORPUS_FULL=1 go test ./corpus -timeout 30m     # everything, and the table
//	go test ./corpus -corpus.full -corpus.table=/tmp/corpus.md
package corpus_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagFull     = flag.Bool("corpus.full", os.Getenv("CORPUS_FULL") == "1", "run every bug with every Go (Go 1.26 also built with GOEXPERIMENT=goroutineleakprofile) and mode, fewer at a time for steadier timings, and write the table (also CORPUS_FULL=1)")
	flagTable    = flag.String("corpus.table", os.Getenv("CORPUS_TABLE"), "write the results (markdown) to this file; the full run defaults to corpus-results.md in $TMPDIR, logged")
	flagWait     = flag.Duration("corpus.wait", 15*time.Second, "inspect-cli diagnose --wait")
	flagParallel = flag.Int("corpus.parallel", 0, "runs at a time (0: 64 by default, 8 in the full run)")
	flagBugs     = flag.String("corpus.bugs", "", "run only the bugs whose name matches this regexp")
	flagCopies   = flag.Int("corpus.copies", 1, "copies of the bug each program runs each time (bugs -copies): more makes heavy targets")
	flagGo126    = flag.String("corpus.go126", cmp.Or(os.Getenv("CORPUS_GO126"), "/usr/local/go/bin/go"), "the go command of Go 1.26 (also CORPUS_GO126); its runs are skipped, with a message, when it is missing")
)

// A site is a line where a bug's goroutines stay blocked: file is the base
// name of a file in bugs/.
type site struct {
	file string
	line int
}

func (s site) String() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

type bugSpec struct {
	name, category string
	sites          []site
	// starts are the lines of main.go marked "starts the bug": the go
	// statements that start each copy of it, which a finding may name (as
	// goroutine-explosion does) and still be about the bug.
	starts []site
}

// knownMisses are the bugs the goroutineleak profile proves (Go 1.27, or
// Go 1.26 with the experiment) whose sites today's rules do not all name, by
// bug and mode ("once", "repeat"), with the reason. The default run fails on any other such miss, and says
// when one of these is caught after all, so that it can be taken off.
var knownMisses = map[string]string{}

// go126Default are the bugs the default run builds with Go 1.26 too: one of
// each kind of wait, to keep the default run short; -corpus.full runs all.
var go126Default = []string{"kubernetes5316", "cockroach10214", "moby25384", "moby30408", "kubernetes62464"}

// startsRe marks the go statements of main.go that start a bug.
var startsRe = regexp.MustCompile(`//\s*starts the bug\b`)

// wantRe is the marker of a site: the line's comment says the bug's
// goroutines stay blocked there.
var wantRe = regexp.MustCompile(`//\s*want: stuck\b`)

// readSpecs reads the bugs and their sites from the files of bugs/: each bug
// is the file named after it.
func readSpecs(t *testing.T) []bugSpec {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("bugs", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bug files in bugs/ (%v): run from the corpus directory", err)
	}
	main, err := os.ReadFile(filepath.Join("bugs", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var starts []site
	for i, line := range strings.Split(string(main), "\n") {
		if startsRe.MatchString(line) {
			starts = append(starts, site{"main.go", i + 1})
		}
	}
	if len(starts) == 0 {
		t.Errorf("bugs/main.go: no go statement is marked // starts the bug")
	}
	var specs []bugSpec
	for _, f := range files {
		base := filepath.Base(f)
		if base == "main.go" || strings.HasSuffix(base, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := bugSpec{name: strings.TrimSuffix(base, ".go"), starts: starts}
		for i, line := range strings.Split(string(data), "\n") {
			if wantRe.MatchString(line) {
				s.sites = append(s.sites, site{base, i + 1})
			}
		}
		if len(s.sites) == 0 {
			t.Errorf("%s: no line is marked // want: stuck", f)
		}
		specs = append(specs, s)
	}
	return specs
}

// toolchain is a Go to build the bugs with.
type toolchain struct {
	name  string // go1.27, go1.26
	goBin string
	// goLine is the go.mod go line the bugs are built under, so that each
	// Go builds them with its own defaults (GODEBUG, language).
	goLine string
	env    []string // more of the build's environment
}

// leakExperiment is Go 1.26 built with the goroutineleak profile, which
// Go 1.27 has by default: what a 1.26 service can do to give its leaks proof.
const leakExperiment = "go1.26+leakexp"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "inspect-cli")); err != nil {
		t.Fatalf("no cmd/inspect-cli above the corpus directory: %v", err)
	}
	return root
}

// goVersion runs goBin version alone (no toolchain switch) and returns it.
func goVersion(goBin string) (string, error) {
	cmd := exec.Command(goBin, "version")
	cmd.Env = goEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		return "", fmt.Errorf("%s version: %v", goBin, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// goEnv is the environment to run a go command of a given install in: go
// test sets GOROOT (and GOTOOLDIR) to its own Go, which would make another
// Go compile with this one's tools.
func goEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"GOROOT=", "GOTOOLDIR=", "GOTOOLCHAIN=", "GOFLAGS=", "GOEXPERIMENT="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	return append(env, "GOTOOLCHAIN=local")
}

// go127 is the project's Go: the one the module's toolchain line picks.
func go127(t *testing.T, root string) toolchain {
	t.Helper()
	cmd := exec.Command("go", "env", "GOROOT")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goBin := filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	v, err := goVersion(goBin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v, "go1.27") {
		t.Fatalf("the project's Go is %q, want go1.27 (GOTOOLCHAIN=go1.27.3)", v)
	}
	return toolchain{name: "go1.27", goBin: goBin, goLine: "1.27"}
}

// buildBugs builds bugs/ with tc in a module of its own under dir.
func buildBugs(tc toolchain, dir string) (string, error) {
	src := filepath.Join(dir, "src")
	pkg := filepath.Join(src, "corpus", "bugs")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return "", err
	}
	files, _ := filepath.Glob(filepath.Join("bugs", "*.go"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(pkg, filepath.Base(f)), data, 0o644); err != nil {
			return "", err
		}
	}
	mod := "module corpusbugs\n\ngo " + tc.goLine + "\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bugs")
	cmd := exec.Command(tc.goBin, "build", "-o", bin, "./corpus/bugs")
	cmd.Dir = src
	cmd.Env = append(append(goEnv(), "GOWORK=off", "CGO_ENABLED=0"), tc.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the bugs with %s: %v\n%s", tc.name, err, out)
	}
	return bin, nil
}

func buildCLI(t *testing.T, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "inspect-cli")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/inspect-cli")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building inspect-cli: %v\n%s", err, out)
	}
	return bin
}

// result is one run: a bug, built with a Go, once or repeating.
type result struct {
	bug      bugSpec
	goName   string
	mode     string        // once, repeat
	err      error         // the run itself failed: no figures
	exitCode int           // inspect-cli's
	took     time.Duration // inspect-cli's run, --wait and what it took beyond
	partial  []string

	// named: each expected site a warning or critical finding named, and
	// when it was first seen, from the start of diagnose.
	named map[site]time.Duration
	// falseFindings are findings that name no line of the bug's file, nor
	// the go statement that starts it.
	falseFindings []string
	findings      []string // every finding, for the log

	leakServed bool                   // the target has the goroutineleak profile
	leakAt     map[site]time.Duration // expected sites the profile listed, and when
	leakOther  []site                 // bug sites it listed that are not expected
}

func (r *result) key() string { return r.bug.name + "/" + r.mode }

// detected: every expected site is named.
func (r *result) detected() bool { return r.err == nil && len(r.named) == len(r.bug.sites) }

// proven: the goroutineleak profile listed every expected site.
func (r *result) proven() bool { return r.leakServed && len(r.leakAt) == len(r.bug.sites) }

// reportTime is when the last expected site was named.
func (r *result) reportTime() time.Duration { return maxOf(r.named) }

func (r *result) leakTime() time.Duration { return maxOf(r.leakAt) }

func maxOf(m map[site]time.Duration) time.Duration {
	var d time.Duration
	for _, v := range m {
		d = max(d, v)
	}
	return d
}

func (r *result) missing() []site {
	var out []site
	for _, s := range r.bug.sites {
		if _, ok := r.named[s]; !ok {
			out = append(out, s)
		}
	}
	return out
}

// finding is the part of inspect-cli's JSON the harness reads.
type finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Evidence struct {
		Sites []struct {
			File string `json:"file"`
			Line int    `json:"line"`
		} `json:"sites"`
	} `json:"evidence"`
	FirstSeen time.Time `json:"first_seen"`
}

// bugSite returns the site a file:line of a bug file is, if it is one.
func bugSite(file string, line int) (site, bool) {
	if !strings.Contains(filepath.ToSlash(file), "corpus/bugs/") || filepath.Base(file) == "main.go" {
		return site{}, false
	}
	return site{filepath.Base(file), line}, true
}

// runOne runs bin -bug name (repeating every 100ms for "repeat"), diagnoses
// it with cli for --wait, and reads its goroutineleak profile meanwhile.
func runOne(ctx context.Context, bin, cli string, spec bugSpec, goName, mode string, wait time.Duration) *result {
	r := &result{bug: spec, goName: goName, mode: mode, named: map[site]time.Duration{}, leakAt: map[site]time.Duration{}}
	ctx, cancel := context.WithTimeout(ctx, wait+90*time.Second)
	defer cancel()
	args := []string{"-bug", spec.name, "-lifetime", (wait + 3*time.Minute).String(), "-copies", strconv.Itoa(*flagCopies)}
	if mode == "repeat" {
		args = append(args, "-every", "100ms")
	}
	target := exec.CommandContext(ctx, bin, args...)
	stdout, err := target.StdoutPipe()
	if err != nil {
		r.err = err
		return r
	}
	var targetErr strings.Builder
	target.Stderr = &targetErr
	if err := target.Start(); err != nil {
		r.err = fmt.Errorf("starting %s: %v", spec.name, err)
		return r
	}
	defer func() {
		_ = target.Process.Kill()
		_ = target.Wait()
	}()
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addrc <- strings.TrimSpace(strings.TrimPrefix(line, "pprof "))
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(addr, "http://") {
		_ = target.Process.Kill()
		_ = target.Wait() // stderr is complete once it returns
		r.err = fmt.Errorf("%s printed no pprof address within 30s (got %q; stderr: %s)", spec.name, addr, targetErr.String())
		return r
	}

	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pollLeaks(ctx, addr, r, start, wait)
	}()
	var out, errOut strings.Builder
	diag := exec.CommandContext(ctx, cli, "diagnose", addr, "--wait", wait.String(), "--output", "json")
	diag.Stdout, diag.Stderr = &out, &errOut
	err = diag.Run()
	r.took = time.Since(start)
	wg.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 1: // a warning: what we are after
		r.exitCode = 1
	default:
		r.err = fmt.Errorf("inspect-cli diagnose %s: %v: %s", addr, err, strings.TrimSpace(errOut.String()))
		return r
	}
	var list struct {
		Findings []finding `json:"findings"`
		Partial  []string  `json:"partial"`
	}
	if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
		r.err = fmt.Errorf("inspect-cli diagnose --output json: %v: %.200q", err, out.String())
		return r
	}
	r.partial = list.Partial
	expected := map[site]bool{}
	for _, s := range spec.sites {
		expected[s] = true
	}
	for _, f := range list.Findings {
		var sites []string
		namesOne := false
		for _, fs := range f.Evidence.Sites {
			sites = append(sites, fmt.Sprintf("%s:%d", filepath.Base(fs.File), fs.Line))
			if slices.Contains(spec.starts, site{filepath.Base(fs.File), fs.Line}) && strings.Contains(filepath.ToSlash(fs.File), "corpus/bugs/") {
				namesOne = true // where each copy of the bug starts
				continue
			}
			s, ok := bugSite(fs.File, fs.Line)
			if !ok || s.file != spec.name+".go" {
				continue
			}
			namesOne = true // a line of the bug's own file is about the bug
			if !expected[s] {
				continue
			}
			if f.Severity != "warning" && f.Severity != "critical" {
				continue
			}
			at := max(f.FirstSeen.Sub(start), 0)
			if prev, seen := r.named[s]; !seen || at < prev {
				r.named[s] = at
			}
		}
		desc := fmt.Sprintf("%s %s [%s] %s", f.Severity, f.Rule, strings.Join(sites, " "), f.Title)
		r.findings = append(r.findings, desc)
		if !namesOne {
			r.falseFindings = append(r.falseFindings, desc)
		}
	}
	return r
}

// pollLeaks reads the target's goroutineleak profile about once a second
// (each read forces a full GC in the target) until it lists every expected
// site or wait is over.
func pollLeaks(ctx context.Context, addr string, r *result, start time.Time, wait time.Duration) {
	expected := map[site]bool{}
	for _, s := range r.bug.sites {
		expected[s] = true
	}
	other := map[site]bool{}
	defer func() {
		for s := range other {
			r.leakOther = append(r.leakOther, s)
		}
		slices.SortFunc(r.leakOther, func(a, b site) int { return strings.Compare(a.String(), b.String()) })
	}()
	deadline := start.Add(wait)
	for {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		sites, served, err := readLeaks(rctx, addr)
		cancel()
		if err == nil && !served {
			return // no such profile: Go before 1.27
		}
		if err == nil {
			r.leakServed = true
			for _, s := range sites {
				if expected[s] {
					if _, seen := r.leakAt[s]; !seen {
						r.leakAt[s] = time.Since(start)
					}
				} else {
					other[s] = true
				}
			}
			if len(r.leakAt) == len(expected) {
				return
			}
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// readLeaks reads /debug/pprof/goroutineleak?debug=1 and returns, for each
// leaked stack, its topmost frame in a bug file. served is false when the
// target has no such profile.
func readLeaks(ctx context.Context, addr string) (sites []site, served bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", addr+"/debug/pprof/goroutineleak?debug=1", nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("goroutineleak profile: %s", resp.Status)
	}
	// Records are "N @ pc...", then one "#\tpc\tfunc+off\tfile:line" per frame.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	top := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			top = strings.Contains(line, " @ ")
			continue
		}
		if !strings.HasPrefix(line, "#\t") {
			continue // "# labels: ..." of the record
		}
		if !top {
			continue
		}
		fields := strings.Fields(line)
		loc := fields[len(fields)-1]
		i := strings.LastIndexByte(loc, ':')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(loc[i+1:])
		if err != nil {
			continue
		}
		if s, ok := bugSite(loc[:i], n); ok {
			sites = append(sites, s)
			top = false
		}
	}
	return sites, true, sc.Err()
}

func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the corpus runs real programs for tens of seconds")
	}
	began := time.Now()
	specs := readSpecs(t)
	if *flagBugs != "" {
		re, err := regexp.Compile(*flagBugs)
		if err != nil {
			t.Fatalf("-corpus.bugs: %v", err)
		}
		specs = slices.DeleteFunc(specs, func(s bugSpec) bool { return !re.MatchString(s.name) })
		if len(specs) == 0 {
			t.Fatalf("-corpus.bugs %q matches no bug", *flagBugs)
		}
	}
	root := repoRoot(t)
	dir := t.TempDir()
	cli := buildCLI(t, root, dir)

	toolchains := []toolchain{go127(t, root)}
	if v, err := goVersion(*flagGo126); err != nil || !strings.Contains(v, "go1.26") {
		why := v // another version
		if err != nil {
			why = err.Error()
		}
		t.Logf("SKIP Go 1.26 runs: no Go 1.26 at %s (-corpus.go126 or CORPUS_GO126 names one): %s", *flagGo126, why)
	} else {
		toolchains = append(toolchains, toolchain{name: "go1.26", goBin: *flagGo126, goLine: "1.26"})
		if *flagFull {
			toolchains = append(toolchains, toolchain{name: leakExperiment, goBin: *flagGo126, goLine: "1.26",
				env: []string{"GOEXPERIMENT=goroutineleakprofile"}})
		}
	}
	bin127, err := buildBugs(toolchains[0], filepath.Join(dir, toolchains[0].name))
	if err != nil {
		t.Fatal(err)
	}
	checkList(t, bin127, specs)
	t.Logf("built inspect-cli and the bugs with Go 1.27 in %s", time.Since(began).Round(100*time.Millisecond))

	parallel := *flagParallel
	if parallel <= 0 {
		parallel = 64 // the default run, all at once: its runs mostly wait
		if *flagFull {
			parallel = 8 // timings from a quieter machine
		}
	}
	ctx := t.Context()
	var (
		mu      sync.Mutex
		results []*result
		wg      sync.WaitGroup
		sem     = make(chan struct{}, parallel)
	)
	launch := func(tc toolchain, bin string) {
		for _, mode := range []string{"once", "repeat"} {
			for _, spec := range specs {
				if tc.name == "go1.26" && !*flagFull && *flagBugs == "" && !slices.Contains(go126Default, spec.name) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					r := runOne(ctx, bin, cli, spec, tc.name, mode, *flagWait)
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				}()
			}
		}
	}
	launch(toolchains[0], bin127)
	// The other Go versions build while Go 1.27's runs wait: with a cold
	// cache, Go 1.26 compiles its standard library for a minute or more.
	for _, tc := range toolchains[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			bin, err := buildBugs(tc, filepath.Join(dir, tc.name))
			if err != nil {
				t.Error(err)
				return
			}
			t.Logf("built the bugs with %s in %s", tc.name, time.Since(t0).Round(100*time.Millisecond))
			launch(tc, bin)
		}()
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b *result) int {
		return strings.Compare(a.goName+a.mode+a.bug.name, b.goName+b.mode+b.bug.name)
	})
	var longest time.Duration
	for _, r := range results {
		longest = max(longest, r.took)
	}
	t.Logf("%d runs, %d at a time, --wait %s: the longest diagnose took %s; %s in all", len(results), parallel, *flagWait,
		longest.Round(100*time.Millisecond), time.Since(began).Round(time.Second))
	for _, r := range results {
		check(t, r)
	}
	table := renderTable(results, toolchains, specs)
	t.Log("\n" + table)
	path := *flagTable
	if path == "" && *flagFull {
		path = filepath.Join(os.TempDir(), "corpus-results.md") // outlives the test's own temp dir
	}
	if path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Errorf("writing the table: %v", err)
		} else {
			t.Logf("table written to %s", path)
		}
	}
}

// reporter is what check needs of a *testing.T: a fake one tests check.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// checkList holds the bugs the binary knows to the files of bugs/.
func checkList(t *testing.T, bin string, specs []bugSpec) {
	t.Helper()
	out, err := exec.Command(bin, "-list").Output()
	if err != nil {
		t.Fatalf("bugs -list: %v", err)
	}
	known := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, cat, _ := strings.Cut(line, "\t")
		known[name] = cat
		if _, err := os.Stat(filepath.Join("bugs", name+".go")); err != nil {
			t.Errorf("the binary has a bug %q with no file bugs/%s.go: its sites would go unread", name, name)
		}
	}
	for i, s := range specs {
		cat, ok := known[s.name]
		if !ok {
			t.Fatalf("bugs/%s.go: the binary has no bug %q: a bug registers under its file's name", s.name, s.name)
		}
		specs[i].category = cat
	}
}

// check asserts what the default run holds to: where the target serves the
// goroutineleak profile (Go 1.27), every bug it proves is named at all of
// its sites, but for the known misses; every bug of the corpus is proven
// there, else the program does not reproduce its bug; and no finding names
// anything but the bug, on any Go.
func check(t reporter, r *result) {
	t.Helper()
	id := r.goName + "/" + r.key()
	if r.err != nil {
		t.Errorf("%s: %v", id, r.err)
		return
	}
	for _, f := range r.falseFindings {
		t.Errorf("%s: a finding names no line of the bug's file, nor where it starts: %s", id, f)
	}
	if len(r.named) > 0 && r.exitCode != 1 {
		t.Errorf("%s: inspect-cli diagnose exited %d, though a warning named %v: a warning is exit status 1", id, r.exitCode, r.named)
	}
	if len(r.partial) > 0 {
		t.Logf("%s: inspect-cli read the target in part: %s", id, strings.Join(r.partial, "; "))
	}
	if len(r.leakOther) > 0 {
		t.Errorf("%s: the goroutineleak profile lists goroutines of the bug at %v, which are not marked // want: stuck", id, r.leakOther)
	}
	if !r.leakServed {
		return // no proof to hold the findings to
	}
	if !r.proven() {
		t.Errorf("%s: the goroutineleak profile listed %d of the %d sites %v within %s: the program does not reproduce its bug",
			id, len(r.leakAt), len(r.bug.sites), r.bug.sites, *flagWait)
		return
	}
	reason, known := knownMisses[r.key()]
	switch {
	case r.detected() && known && *flagCopies > 1:
		t.Logf("%s: caught with %d copies, in %s (alone: %s)", id, *flagCopies, r.reportTime().Round(100*time.Millisecond), reason)
	case r.detected() && known:
		t.Logf("%s: caught now, in %s: take it off knownMisses (%s)", id, r.reportTime().Round(100*time.Millisecond), reason)
	case !r.detected() && known:
		t.Logf("%s: known miss, sites %v not named: %s", id, r.missing(), reason)
	case !r.detected():
		found := "none"
		if len(r.findings) > 0 {
			found = "\n\t" + strings.Join(r.findings, "\n\t")
		}
		t.Errorf("%s: the goroutineleak profile proved the bug at %v in %s, but no warning names %v; findings: %s",
			id, r.bug.sites, r.leakTime().Round(100*time.Millisecond), r.missing(), found)
	}
}

// renderTable writes the results as markdown: a summary by Go and mode, a
// row per bug, and the false findings.
func renderTable(results []*result, toolchains []toolchain, specs []bugSpec) string {
	var b strings.Builder
	type cfg struct{ goName, mode string }
	var cfgs []cfg
	for _, tc := range toolchains {
		cfgs = append(cfgs, cfg{tc.name, "once"}, cfg{tc.name, "repeat"})
	}
	byCfg := map[cfg][]*result{}
	cell := map[string]*result{}
	for _, r := range results {
		c := cfg{r.goName, r.mode}
		byCfg[c] = append(byCfg[c], r)
		cell[r.goName+"/"+r.key()] = r
	}
	fmt.Fprintf(&b, "| target | bug runs | detected (every site named) | some sites named | time to report, median / max | false findings | goroutineleak profile proves | its time, median / max |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range cfgs {
		rs := byCfg[c]
		var det, some, proven, falseN, failed int
		var times, leakTimes []time.Duration
		for _, r := range rs {
			if r.err != nil {
				failed++
				continue
			}
			if r.detected() {
				det++
				times = append(times, r.reportTime())
			} else if len(r.named) > 0 {
				some++
			}
			if r.proven() {
				proven++
				leakTimes = append(leakTimes, r.leakTime())
			}
			falseN += len(r.falseFindings)
		}
		n := len(rs) - failed
		leak := "no profile"
		leakT := "-"
		if proven > 0 || slices.ContainsFunc(rs, func(r *result) bool { return r.leakServed }) {
			leak = fmt.Sprintf("%d of %d", proven, n)
			leakT = medMax(leakTimes)
		}
		runs := strconv.Itoa(n)
		if failed > 0 {
			runs += fmt.Sprintf(" (+%d failed)", failed)
		}
		fmt.Fprintf(&b, "| %s, %s | %s | %d of %d | %d | %s | %d | %s | %s |\n", c.goName, c.mode, runs, det, n, some, medMax(times), falseN, leak, leakT)
	}
	fmt.Fprintf(&b, "\nPer bug: the time to report every site, or the sites named of all; in brackets, the goroutineleak profile's.\n\n")
	fmt.Fprintf(&b, "| bug | category | sites |")
	for _, c := range cfgs {
		fmt.Fprintf(&b, " %s %s |", c.goName, c.mode)
	}
	fmt.Fprintf(&b, "\n| --- | --- | --- |%s\n", strings.Repeat(" --- |", len(cfgs)))
	for _, s := range specs {
		fmt.Fprintf(&b, "| %s | %s | %d |", s.name, s.category, len(s.sites))
		for _, c := range cfgs {
			r := cell[c.goName+"/"+s.name+"/"+c.mode]
			switch {
			case r == nil:
				b.WriteString(" |")
				continue
			case r.err != nil:
				b.WriteString(" failed")
			case r.detected():
				fmt.Fprintf(&b, " %s", secs(r.reportTime()))
			default:
				fmt.Fprintf(&b, " %d of %d", len(r.named), len(s.sites))
			}
			if r.err == nil && r.leakServed {
				if r.proven() {
					fmt.Fprintf(&b, " (%s)", secs(r.leakTime()))
				} else {
					fmt.Fprintf(&b, " (%d of %d)", len(r.leakAt), len(s.sites))
				}
			}
			if r.err == nil && len(r.falseFindings) > 0 {
				fmt.Fprintf(&b, " +%d false", len(r.falseFindings))
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	var falses []string
	for _, r := range results {
		for _, f := range r.falseFindings {
			falses = append(falses, fmt.Sprintf("- %s/%s: %s", r.goName, r.key(), f))
		}
	}
	if len(falses) > 0 {
		fmt.Fprintf(&b, "\nFalse findings (naming no line of the bug's file, nor where it starts):\n\n%s\n", strings.Join(falses, "\n"))
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func medMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	return secs(ds[len(ds)/2]) + " / " + secs(ds[len(ds)-1])
}
