package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
)

// The rules outside the lab: testdata/buggy is a small service, not one of
// inspectd's workloads, that serves only net/http/pprof and runs one bug.
// Built with the machine's older Go when there is one (Go 1.26: no labels in
// dumps, no goroutineleak profile), inspect-cli diagnose must still name
// the bug and the line, marked "bug: RULE" in its source.

var (
	buggyOnce sync.Once
	buggyBin  string
	buggyGo   string
	buggyErr  error
)

func buildBuggy(t *testing.T) string {
	t.Helper()
	buggyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "buggy")
		if err != nil {
			buggyErr = err
			return
		}
		src, err := os.ReadFile("testdata/buggy/main.go")
		if err != nil {
			buggyErr = err
			return
		}
		os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644)
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module buggy\n\ngo 1.22\n"), 0o644)
		buggyBin = filepath.Join(dir, "buggy")
		goTool, env := "go", os.Environ()
		buggyGo = runtime.Version()
		if old, v := olderGoTool(); old != "" {
			goTool, env, buggyGo = old, withLocalToolchain(), v
		}
		build := exec.Command(goTool, "build", "-o", buggyBin, ".")
		build.Dir = dir
		build.Env = append(env, "GOFLAGS=", "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			buggyErr = fmt.Errorf("building testdata/buggy with %s: %v\n%s", goTool, err, out)
		}
	})
	if buggyErr != nil {
		t.Fatal(buggyErr)
	}
	return buggyBin
}

// olderGoTool finds a go command older than 1.27 on this machine.
func olderGoTool() (string, string) {
	for _, dir := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/local/go/bin") {
		p := filepath.Join(dir, "go")
		if dir == "" || dir == filepath.Join(runtime.GOROOT(), "bin") {
			continue
		}
		cmd := exec.Command(p, "env", "GOVERSION")
		cmd.Env = withLocalToolchain()
		out, err := cmd.Output()
		v := strings.TrimSpace(string(out))
		var major, minor int
		if err == nil && strings.HasPrefix(v, "go1.") {
			if _, err := fmt.Sscanf(v, "go%d.%d", &major, &minor); err == nil && major == 1 && minor < 27 {
				return p, v
			}
		}
	}
	return "", ""
}

// withLocalToolchain is the environment for another go command, using its
// own toolchain rather than the one running the tests.
func withLocalToolchain() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOROOT=") && !strings.HasPrefix(kv, "GOTOOLCHAIN=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOTOOLCHAIN=local")
}

// startBuggy runs testdata/buggy with one bug and returns its URL.
func startBuggy(t *testing.T, bug string) string {
	t.Helper()
	cmd := exec.Command(buildBuggy(t), "-bug", bug)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("buggy -bug %s printed %q, %v", bug, line, err)
	}
	return "http://" + addr
}

// bugLines are the lines of testdata/buggy marked "bug: rule".
func bugLines(t *testing.T, rule string) []int {
	b, err := os.ReadFile("testdata/buggy/main.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(l, "// bug: "+rule) || strings.Contains(l, "// bug: "+rule+" ") {
			lines = append(lines, i+1)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("testdata/buggy marks no line for %s", rule)
	}
	return lines
}

func TestDiagnoseOutsideTheLab(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a program per bug until its finding (at most 2m each)")
	}
	buildBuggy(t)
	t.Logf("testdata/buggy built with %s", buggyGo)
	sem := make(chan struct{}, 2)
	for _, rule := range diagnose.Rules() {
		t.Run(rule, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			url := startBuggy(t, rule)
			var stdout, stderr bytes.Buffer
			began := time.Now()
			// A deadline, which --fail-fast ends at the first warning: under
			// -race, and more on a loaded machine, the CLI parses a spinning
			// program's trace slowly (its first snapshot took over 40s beside
			// two CPU burners).
			args, wantCode := []string{"diagnose", url, "--wait", "2m", "--window", "1s", "--fail-fast", "--output", "json"}, 1
			if rule == "leak-suspect" {
				// A suspicion is information, which neither ends the watch
				// early nor fails the run: watched for a while, with the
				// bar lowered so that a while is enough.
				args, wantCode = []string{"diagnose", url, "--wait", "20s", "--window", "1s", "--threshold", "leak-suspect.stuck_for=3s", "--output", "json"}, 0
			}
			code := run(context.Background(), args, &stdout, &stderr)
			took := time.Since(began)
			if code != wantCode {
				t.Fatalf("diagnose exit %d after %v, want %d; stderr: %s; stdout: %s", code, took, wantCode, stderr.String(), stdout.String())
			}
			var fl api.FindingList
			if err := json.Unmarshal(stdout.Bytes(), &fl); err != nil {
				t.Fatal(err)
			}
			var got *api.Finding
			for i, f := range fl.Findings {
				if f.Rule == rule {
					got = &fl.Findings[i]
				} else if diagnose.AtLeastWarning(f) {
					t.Errorf("another warning fired: %s: %s", f.Rule, f.Title)
				}
			}
			if got == nil {
				t.Fatalf("rule %s did not fire; findings: %+v", rule, fl.Findings)
			}
			want := bugLines(t, rule)
			found := false
			for _, s := range got.Evidence.Sites {
				for _, l := range want {
					found = found || filepath.Base(s.File) == "main.go" && s.Line == l
				}
			}
			if !found {
				t.Errorf("%s: %q points at %+v, want main.go:%v", rule, got.Title, got.Evidence.Sites, want)
			}
			t.Logf("%s after %v: %s (missing: %v)", rule, took.Round(100*time.Millisecond), got.Title, got.Evidence.Missing)
		})
	}
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		sem <- struct{}{}
		defer func() { <-sem }()
		url := startBuggy(t, "none")
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"diagnose", url, "--wait", "6s", "--window", "1s"}, &stdout, &stderr); code != 0 {
			t.Errorf("a program without a bug: exit %d, want 0; %s%s", code, stdout.String(), stderr.String())
		}
		// Snapshots of the 1s window asked, or longer: a loaded target
		// traces for longer than it is asked.
		if !strings.Contains(stdout.String(), "no findings for "+url) || !regexp.MustCompile(`snapshots of [1-9][\d.]*s \(net/http/pprof\)`).MatchString(stdout.String()) {
			t.Errorf("output %q", stdout.String())
		}
	})
}

// Against the daemon, diagnose reads the daemon's own findings; bad flags
// and thresholds are usage errors.
func TestDiagnoseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"diagnose", "--threshold", "deadlock.nope=1", "127.0.0.1:1"}, `has no threshold "nope"`},
		{[]string{"diagnose", "--deny", "nope", "127.0.0.1:1"}, `no rule "nope"`},
		{[]string{"diagnose", "--threshold", "deadlock", "127.0.0.1:1"}, "want rule.name=value"},
		{[]string{"diagnose", "--wait", "-1s", "127.0.0.1:1"}, "--wait -1s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
