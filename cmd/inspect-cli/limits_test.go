package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// endless answers every request with 200 and a body without end (at least
// until it has sent stopAfter bytes, so that a test whose cap failed ends):
// a hostile or broken target.
//
//	random     random bytes (as updates of an event stream on /api/v1/watch)
//	raw        random bytes, on every path
//	json       {"tasks":[ then tasks that look real, one after the other
//	empty      {"tasks":[ then {}, {}, ...: few bytes, a struct each
//	string     {"target":" then one endless string
//	pprof      net/http/pprof only (404 on the inspection API), whose
//	           endpoints send random bytes, or "go 1.27 trace" and random
//	           bytes for the trace
//	events     a watch stream whose first update never ends
func endless(t *testing.T, mode string, stopAfter int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var head, unit []byte
		switch mode {
		case "random", "raw":
			w.Header().Set("Content-Type", "application/octet-stream")
		case "json":
			head, unit = []byte(`{"tasks":[`), []byte(`{"id":12345,"name":"main.worker","state":"waiting","wait_reason":"chan receive","location":{"function":"main.worker","file":"/src/main.go","line":42},"stats":{"total_ns":1000,"idle_ns":1000}},`)
		case "empty":
			head, unit = []byte(`{"tasks":[`), []byte(`{},`)
		case "map":
			head = []byte(`{"tasks":[{"labels":{`)
		case "ints":
			head, unit = []byte(`{"tasks":[{"warnings":[`), []byte(`"",`)
		case "string":
			head, unit = []byte(`{"target":"`), []byte(`abcdefgh`)
		case "events":
			w.Header().Set("Content-Type", "text/event-stream")
			head, unit = []byte("event: update\ndata: {\"full\":true,\"tasks\":["), []byte(`{},`)
		case "pprof":
			if strings.HasPrefix(r.URL.Path, "/api/") {
				http.NotFound(w, r)
				return
			}
			if r.URL.Path == "/debug/pprof/goroutine" && r.URL.Query().Get("debug") == "1" {
				// What stacks reads first: a count that allows a dump.
				w.Write([]byte("goroutine profile: total 10\n"))
				return
			}
			if r.URL.Path == "/debug/pprof/trace" {
				head = []byte("go 1.27 trace\x00\x00\x00")
			} else {
				head = []byte{0x1f, 0x8b} // as a profile starts
			}
		}
		if strings.HasSuffix(r.URL.Path, "/api/v1/watch") && mode != "events" && mode != "raw" {
			w.Header().Set("Content-Type", "text/event-stream")
			head = append([]byte("event: update\ndata: "), head...)
		}
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 0, 256<<10)
		buf = append(buf, head...)
		sent := int64(0)
		for sent < stopAfter {
			if mode == "map" {
				for len(buf)+24 <= cap(buf) {
					buf = fmt.Appendf(buf, `"%x":"",`, rand.Uint64())
				}
			} else if unit == nil {
				n := len(buf)
				buf = buf[:cap(buf)]
				for i := n; i+8 <= len(buf); i += 8 {
					binary.LittleEndian.PutUint64(buf[i:], rand.Uint64())
				}
			} else {
				for len(buf)+len(unit) <= cap(buf) {
					buf = append(buf, unit...)
				}
			}
			k, err := w.Write(buf)
			sent += int64(k)
			if err != nil {
				return
			}
			buf = buf[:0]
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// plainBin is the inspect-cli binary built without the race detector,
// whose shadow memory would multiply the peak RSS that
// TestBoundedAgainstEndlessAnswers bounds: under -race it is built apart.
var plainBin struct {
	once      sync.Once
	dir, path string
	err       error
}

func plainBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return cliBinary(t)
	}
	plainBin.once.Do(func() {
		plainBin.dir, plainBin.err = os.MkdirTemp("", "inspect-cli-plain")
		if plainBin.err != nil {
			return
		}
		plainBin.path = filepath.Join(plainBin.dir, "inspect-cli")
		if out, err := exec.Command("go", "build", "-o", plainBin.path, ".").CombinedOutput(); err != nil {
			plainBin.err = &buildError{err, out}
		}
	})
	if plainBin.err != nil {
		t.Fatal(plainBin.err)
	}
	return plainBin.path
}

// runBounded runs the CLI binary and returns its output, exit code and
// peak RSS in bytes.
func runBounded(t *testing.T, dir string, args ...string) (stdout, stderr string, code int, rss int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.CommandContext(ctx, self, append([]string{plainBinary(t)}, args...)...)
	cmd.Env = append(os.Environ(), rssWrapEnv+"="+rssFile)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("inspect-cli %s: still running after 3 minutes", strings.Join(args, " "))
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("inspect-cli %s: %v", strings.Join(args, " "), err)
	}
	b, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("inspect-cli %s: its peak RSS: %v (stderr: %s)", strings.Join(args, " "), err, errb.String())
	}
	rss, err = strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		t.Fatalf("inspect-cli %s: its peak RSS: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code, rss
}

// TestBoundedAgainstEndlessAnswers runs every command that reads from a
// target against targets that answer without end, and checks that each
// stops at a cap (one line, exit 2, nothing kept) within 512 MB.
func TestBoundedAgainstEndlessAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("streams hundreds of MB")
	}
	const rssBound = 512 << 20
	// Twice the largest cap (a trace's 128 MiB a second): a test whose cap
	// failed ends all the same.
	stop := int64(256 << 20)
	cases := []struct {
		mode string
		args []string
		want string // in the error line
	}{
		{"json", []string{"tasks"}, "--max-bytes snapshot="},
		{"empty", []string{"tasks", "--limit", "0"}, "--max-bytes snapshot="},
		{"string", []string{"tasks"}, "--max-bytes snapshot="},
		{"map", []string{"tasks"}, "--max-bytes snapshot="},
		{"ints", []string{"tasks"}, "--max-bytes snapshot="},
		{"empty", []string{"diagnose", "--wait", "0"}, "--max-bytes snapshot="},
		{"events", []string{"record", "-o", "rec.jsonl.gz"}, "--max-bytes event="},
		{"json", []string{"record", "-o", "rec.jsonl.gz"}, "--max-bytes event="},
		{"pprof", []string{"trace", "--seconds", "1", "-o", "t.out"}, "--max-bytes trace="},
		{"random", []string{"trace", "--seconds", "1", "-o", "t.out"}, "not a Go execution trace"},
		{"random", []string{"profile", "goroutine", "-o", "g.pb.gz"}, "not a pprof profile (gzipped protobuf): nothing kept"},
		{"pprof", []string{"profile", "goroutine", "-o", "g.pb.gz"}, "--max-bytes profile="},
		{"pprof", []string{"tasks", "--window", "1s"}, "--max-bytes profile="},
		{"pprof", []string{"diagnose", "--wait", "0", "--window", "1s"}, "--max-bytes profile="},
		{"pprof", []string{"stacks", "--force"}, "--max-bytes dump="},
		{"random", []string{"tasks"}, "not with the inspection API's JSON"},
	}
	for _, c := range cases {
		name := c.mode + "/" + strings.Join(c.args, "_")
		t.Run(name, func(t *testing.T) {
			url := endless(t, c.mode, stop)
			dir := t.TempDir()
			args := append(append([]string{}, c.args...), url)
			began := time.Now()
			out, errs, code, rss := runBounded(t, dir, args...)
			t.Logf("%s: exit %d in %s, peak RSS %d MB: %s", strings.Join(args[:len(args)-1], " "), code, time.Since(began).Round(time.Millisecond), rss>>20, strings.TrimSpace(errs))
			if code != 2 {
				t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
			// One error line, the last; a download may have said before
			// that it was under way.
			lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
			last := lines[len(lines)-1]
			if strings.Count(errs, "inspect-cli:") != 1 || !strings.HasPrefix(last, "inspect-cli:") || !strings.Contains(last, c.want) {
				t.Errorf("stderr: want one line naming %q, got:\n%s", c.want, errs)
			}
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "fetching ") {
					t.Errorf("stderr: a line besides the error and progress: %q", l)
				}
			}
			if strings.Contains(errs, "cannot reach") {
				t.Errorf("a target that answered is said to be out of reach: %s", errs)
			}
			if rss > rssBound {
				t.Errorf("peak RSS %d MB, want at most %d MB", rss>>20, rssBound>>20)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("kept %v after a failed download", names)
			}
		})
	}
}

// A target that answered, with something else than was asked, is told
// from one that cannot be reached.
func TestAnsweredVersusUnreachable(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><title>Sign in</title></head><body>sign in</body></html>"))
	}))
	t.Cleanup(page.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	garbage := endless(t, "random", 256<<20)
	raw := endless(t, "raw", 256<<20)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "-o", filepath.Join(t.TempDir(), "r.gz"), garbage}, "answered /api/v1/watch with an event stream whose updates are not the inspection API's JSON"},
		{[]string{"record", "-o", filepath.Join(t.TempDir(), "r.gz"), raw}, "answered /api/v1/watch with application/octet-stream, not an event stream"},
		{[]string{"record", "-o", filepath.Join(t.TempDir(), "r.gz"), page.URL}, "answered /api/v1/watch with text/html, not an event stream"},
		{[]string{"tasks", page.URL}, "answered /api/v1/snapshot, but not with the inspection API's JSON"},
		{[]string{"diagnose", "--wait", "0", garbage}, "answered /api/v1/findings, but not with the inspection API's JSON"},
		{[]string{"tasks", closed}, "cannot reach " + closed},
		{[]string{"record", "-o", filepath.Join(t.TempDir(), "r.gz"), closed}, "cannot reach " + closed},
	} {
		_, errs, code := cli(t, c.args...)
		if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", strings.Join(c.args, " "), code, errs, c.want)
		}
	}
}
